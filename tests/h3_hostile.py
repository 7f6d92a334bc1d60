"""Hostile QUIC clients for tests/http3.rs, built on aioquic's sans-IO connection (PyPI):

  h3_hostile.py flood HOST PORT N        N real Initial packets (each a new connection's ClientHello), each from
                                         its own loopback address (127.1.x.y), never followed up: spoofed sources
  h3_hostile.py garbage HOST PORT N SEED N datagrams of random bytes and sizes, and short-header packets that look
                                         like plutos's connection ids
  h3_hostile.py stall HOST PORT          one Initial, then silence: a handshake that never ends
  h3_hostile.py idle-streams HOST PORT CA N
                                         a connection that opens N request streams, sends each a HEADERS frame
                                         announcing a body, and never sends the body; prints the statuses answered

Prints one JSON line.
"""

import json
import random
import select
import socket
import sys
import time

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection


def configuration(ca=None):
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    if ca:
        config.load_verify_locations(ca)
    return config


def first_initial(addr):
    """The first datagram of a new connection: an Initial packet with a ClientHello, padded to 1200 bytes."""
    conn = QuicConnection(configuration=configuration())
    conn.connect(addr, now=time.monotonic())
    return conn.datagrams_to_send(now=time.monotonic())[0][0]


def flood(addr, n):
    sent = 0
    for i in range(n):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.1.{i // 250}.{i % 250 + 1}", 0))
        sock.sendto(first_initial(addr), addr)
        sock.close()
        sent += 1
    return {"sent": sent}


def garbage(addr, n, seed):
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(n):
        if i % 2:
            # A short header and nine bytes of connection id, as plutos's are, then noise.
            size = rng.randrange(10, 1400)
            data = bytes([0x40 | rng.randrange(0, 64)]) + rng.randbytes(size - 1)
        else:
            data = rng.randbytes(rng.randrange(1, 1500))
        sock.sendto(data, addr)
    return {"sent": n}


def stall(addr):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.sendto(first_initial(addr), addr)
    return {"sent": 1}


def idle_streams(addr, ca, n):
    conn = QuicConnection(configuration=configuration(ca))
    http = H3Connection(conn)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(addr)
    conn.connect(addr, now=time.monotonic())
    statuses, streams, connected = {}, [], False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not connected or len(statuses) < n):
        for data, _ in conn.datagrams_to_send(now=time.monotonic()):
            sock.send(data)
        timer = conn.get_timer()
        timeout = 0.5 if timer is None else max(0.0, min(0.5, timer - time.monotonic()))
        if select.select([sock], [], [], timeout)[0]:
            conn.receive_datagram(sock.recv(65536), addr, now=time.monotonic())
        elif timer is not None and time.monotonic() >= timer:
            conn.handle_timer(now=time.monotonic())
        while (event := conn.next_event()) is not None:
            if type(event).__name__ == "HandshakeCompleted":
                connected = True
                for _ in range(n):
                    stream = conn.get_next_available_stream_id()
                    headers = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"localhost"),
                               (b":path", b"/e"), (b"content-type", b"application/json"), (b"content-length", b"10")]
                    http.send_headers(stream, headers, end_stream=False)
                    streams.append(stream)
            for h3 in http.handle_event(event):
                if isinstance(h3, HeadersReceived):
                    statuses[h3.stream_id] = int(dict(h3.headers)[b":status"])
    return {"statuses": [statuses.get(s) for s in streams]}


def main():
    case, host, port, *rest = sys.argv[1:]
    addr = (host, int(port))
    if case == "flood":
        result = flood(addr, int(rest[0]))
    elif case == "garbage":
        result = garbage(addr, int(rest[0]), int(rest[1]))
    elif case == "stall":
        result = stall(addr)
    else:
        result = idle_streams(addr, rest[0], int(rest[1]))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
