"""HTTP/2 clients for tests/http2.rs, written with hyper-h2 (PyPI `h2`) and its frame and HPACK libraries.

Each case opens its own connection to plutos, does one thing, and prints one JSON object with what it saw:
  streams ADDR TLS CA N      N requests multiplexed on one connection (GETs and POSTs interleaved)
  rapid_reset ADDR N         N streams each opened and reset at once (CVE-2023-44487)
  continuation ADDR N        one header block continued by up to N CONTINUATION frames, never ended
  stalled ADDR               a POST whose body never comes
  zero_window ADDR           a client whose stream window is 0 and never opened, asking for /metrics
  ping_flood ADDR N          N PINGs sent without reading the answers
  settings_flood ADDR N      N SETTINGS frames sent without reading their acks
  drain ADDR                 one GET answered ("answered" printed), then what the server sends as it shuts down
ADDR is host:port; TLS is 1 for h2 by ALPN (CA: the certificate to trust), 0 for h2c.
"""

import json
import socket
import ssl
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import ContinuationFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def connect(addr, tls=False, ca=None):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    if tls:
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2", "http/1.1"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
        assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
    return sock


def request_headers(method, path, authority="localhost", extra=()):
    return [(":method", method), (":scheme", "https"), (":path", path), (":authority", authority)] + list(extra)


def streams(addr, tls, ca, n):
    """N requests on one connection, all sent before any answer is read; every stream's status and body."""
    sock = connect(addr, tls == "1", ca)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    tags = {}
    for i in range(n):
        stream = conn.get_next_available_stream_id()
        if i % 2 == 0:
            tag = f"h2-get-{i}"
            conn.send_headers(stream, request_headers("GET", f"/e?tag={tag}"), end_stream=True)
        else:
            tag = f"h2-post-{i}"
            body = json.dumps({"tag": tag}).encode()
            extra = [("content-type", "application/json"), ("content-length", str(len(body)))]
            conn.send_headers(stream, request_headers("POST", "/e", extra=extra))
            conn.send_data(stream, body, end_stream=True)
        tags[stream] = tag
        sock.sendall(conn.data_to_send())
    answers, bodies, ended = {}, {}, set()
    settings = {}
    while len(ended) < n:
        data = sock.recv(65536)
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.RemoteSettingsChanged):
                settings.update({int(k): v.new_value for k, v in event.changed_settings.items()})
            elif isinstance(event, h2.events.ResponseReceived):
                answers[tags[event.stream_id]] = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.DataReceived):
                bodies[tags[event.stream_id]] = bodies.get(tags[event.stream_id], b"") + event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, h2.events.StreamEnded):
                ended.add(event.stream_id)
        sock.sendall(conn.data_to_send())
    conn.close_connection()
    sock.sendall(conn.data_to_send())
    sock.close()
    return {
        "statuses": answers,
        "bodies": {k: v.decode() for k, v in bodies.items()},
        "max_concurrent_streams": settings.get(3),
        "initial_window": settings.get(4),
    }


def raw(addr, settings=b""):
    """A connection with the preface and SETTINGS sent; frames are written by hand from here."""
    sock = connect(addr)
    sock.sendall(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())
    return sock


def read_until_closed(sock, seconds, done=lambda seen: False):
    """Reads frames until the server closes, `seconds` pass or `done(seen)` holds: the GOAWAY error code,
    RST_STREAM codes, answers (HEADERS frames), PING acks, bytes."""
    sock.settimeout(0.2)
    deadline = time.monotonic() + seconds
    buf, seen = b"", {"goaway": None, "resets": [], "statuses": 0, "closed": False, "bytes": 0, "pings": 0,
                      "settings_acks": 0}
    while time.monotonic() < deadline and not done(seen):
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            seen["closed"] = True
            break
        if not data:
            seen["closed"] = True
            break
        seen["bytes"] += len(data)
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, flags, payload = buf[3], buf[4], buf[9 : 9 + length]
            if kind == 7:
                seen["goaway"] = int.from_bytes(payload[4:8], "big")
            elif kind == 3:
                seen["resets"].append(int.from_bytes(payload[:4], "big"))
            elif kind == 6 and flags & 1:
                seen["pings"] += 1
            elif kind == 4 and flags & 1:
                seen["settings_acks"] += 1
            elif kind == 1:
                seen["statuses"] += 1
            buf = buf[9 + length :]
    return seen


def rapid_reset(addr, n):
    sock = raw(addr)
    encoder = hpack.Encoder()
    sent = 0
    try:
        for i in range(n):
            stream = 2 * i + 1
            block = encoder.encode(request_headers("GET", f"/e?tag=rr-{i}"))
            frames = HeadersFrame(stream, block, flags=["END_HEADERS", "END_STREAM"]).serialize()
            frames += RstStreamFrame(stream, error_code=8).serialize()
            sock.sendall(frames)
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    seen = read_until_closed(sock, 5)
    seen["sent"] = sent
    return seen


def continuation(addr, n):
    sock = raw(addr)
    encoder = hpack.Encoder()
    block = encoder.encode(request_headers("POST", "/e"))
    sock.sendall(HeadersFrame(1, block).serialize())
    pad = encoder.encode([("x-pad", "a" * 1000)])
    sent = 0
    try:
        for _ in range(n):
            sock.sendall(ContinuationFrame(1, pad).serialize())
            sent += 1
    except (BrokenPipeError, ConnectionResetError):
        pass
    seen = read_until_closed(sock, 5)
    seen["sent"] = sent
    return seen


def stalled(addr):
    sock = raw(addr)
    block = hpack.Encoder().encode(request_headers("POST", "/e", extra=[("content-type", "application/json")]))
    start = time.monotonic()
    sock.sendall(HeadersFrame(1, block, flags=["END_HEADERS"]).serialize())
    sock.settimeout(30)
    buf = b""
    while True:
        data = sock.recv(65536)
        if not data:
            return {"status": None, "seconds": time.monotonic() - start}
        buf += data
        while len(buf) >= 9:
            length = int.from_bytes(buf[:3], "big")
            if len(buf) < 9 + length:
                break
            kind, payload = buf[3], buf[9 : 9 + length]
            buf = buf[9 + length :]
            if kind == 1:
                headers = dict(hpack.Decoder().decode(payload))
                return {"status": int(headers[":status"]), "seconds": time.monotonic() - start}


def zero_window(addr):
    # SETTINGS_INITIAL_WINDOW_SIZE = 0: no stream of ours may be sent a byte of DATA until we open it; we never do.
    sock = raw(addr, settings={4: 0})
    block = hpack.Encoder().encode(request_headers("GET", "/metrics"))
    start = time.monotonic()
    sock.sendall(HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    seen = read_until_closed(sock, 20)
    seen["seconds"] = time.monotonic() - start
    return seen


def ping_flood(addr, n, kind="ping"):
    sock = raw(addr)
    if kind == "ping":
        frames = b"".join(PingFrame(0, opaque_data=i.to_bytes(8, "big")).serialize() for i in range(n))
    else:
        frames = SettingsFrame(0, settings={4: 65535}).serialize() * n
    sent = 0
    sock.settimeout(5)
    try:
        view = memoryview(frames)
        while sent < len(frames):
            sent += sock.send(view[sent : sent + 65536])
    except (socket.timeout, BrokenPipeError, ConnectionResetError):
        pass
    seen = read_until_closed(sock, 3)
    seen["sent_bytes"] = sent
    return seen


def drain(addr):
    sock = raw(addr)
    block = hpack.Encoder().encode(request_headers("GET", "/e?tag=before-drain"))
    sock.sendall(HeadersFrame(1, block, flags=["END_HEADERS", "END_STREAM"]).serialize())
    first = read_until_closed(sock, 10, done=lambda seen: seen["statuses"] >= 1)
    print("answered", flush=True)
    seen = read_until_closed(sock, 20)
    seen["statuses"] += first["statuses"]
    return seen


def main():
    case, addr, *rest = sys.argv[1:]
    if case == "streams":
        result = streams(addr, rest[0], rest[1], int(rest[2]))
    elif case == "rapid_reset":
        result = rapid_reset(addr, int(rest[0]))
    elif case == "continuation":
        result = continuation(addr, int(rest[0]))
    elif case == "stalled":
        result = stalled(addr)
    elif case == "zero_window":
        result = zero_window(addr)
    elif case == "ping_flood":
        result = ping_flood(addr, int(rest[0]))
    elif case == "settings_flood":
        result = ping_flood(addr, int(rest[0]), kind="settings")
    elif case == "drain":
        result = drain(addr)
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
