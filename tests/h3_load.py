"""An HTTP/3 load client for the crash and ack-order trials (tests/crash.rs, tests/ack_order.rs), written with
aioquic's sans-IO QuicConnection and H3Connection over a plain UDP socket: one connection keeps STREAMS requests
in flight — GET /e?id=… and NDJSON POSTs of three events, alternately — and prints the ids of every request
answered 200 on stdout, one per line, as soon as the answer's HEADERS arrive, until the connection ends or it
has sent LIMIT requests.

  h3_load.py ADDR CA TAG STREAMS LIMIT [--pause-at-first-answer]

With --pause-at-first-answer it completes the handshake, opens STREAMS streams, and once the socket is readable
(the server's first datagram after the requests arrived, none taken) prints `first` and waits for a line on
stdin (the trial freezes the server meanwhile); then it reads what had arrived, prints the ids answered 200 in
it, and `done N` (N: the answers it read).
"""

import select
import socket
import sys
import time

from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, StreamReset


class Client:
    def __init__(self, addr, ca, tag):
        host, port = addr.rsplit(":", 1)
        self.addr = (host, int(port))
        configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost",
                                          idle_timeout=3.0)
        configuration.load_verify_locations(ca)
        self.quic = QuicConnection(configuration=configuration)
        self.http = H3Connection(self.quic)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(self.addr)
        self.tag, self.sent, self.in_flight, self.answered = tag, 0, {}, 0
        self.connected, self.ended = False, False
        self.quic.connect(self.addr, now=time.monotonic())

    def open_one(self):
        stream = self.quic.get_next_available_stream_id()
        n = self.sent
        self.sent += 1
        common = [(b":scheme", b"https"), (b":authority", b"localhost")]
        if n % 2 == 0:
            ids = [f"{self.tag}-{n}"]
            headers = [(b":method", b"GET"), (b":path", f"/e?id={ids[0]}".encode())] + common
            self.http.send_headers(stream, headers, end_stream=True)
        else:
            ids = [f"{self.tag}-{n}-{k}" for k in range(3)]
            body = "".join(f'{{"id":"{i}"}}\n' for i in ids).encode()
            headers = [(b":method", b"POST"), (b":path", b"/e")] + common
            headers += [(b"content-type", b"application/x-ndjson"), (b"content-length", str(len(body)).encode())]
            self.http.send_headers(stream, headers)
            self.http.send_data(stream, body, end_stream=True)
        self.in_flight[stream] = ids

    def flush(self):
        for data, _ in self.quic.datagrams_to_send(now=time.monotonic()):
            try:
                self.sock.send(data)
            except OSError:
                pass

    def wait(self, timeout):
        """Waits for a datagram or the connection's timer; True if the socket is readable."""
        timer = self.quic.get_timer()
        if timer is not None:
            timeout = max(0.0, min(timeout, timer - time.monotonic()))
        readable, _, _ = select.select([self.sock], [], [], timeout)
        if not readable and timer is not None and time.monotonic() >= timer:
            self.quic.handle_timer(now=time.monotonic())
        return bool(readable)

    def take_waiting(self, out):
        """Handles every datagram waiting; returns how many streams ended (each may be replaced)."""
        ended = 0
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except OSError:
                break
            self.quic.receive_datagram(data, self.addr, now=time.monotonic())
        while True:
            event = self.quic.next_event()
            if event is None:
                break
            if isinstance(event, HandshakeCompleted):
                self.connected = True
            elif isinstance(event, ConnectionTerminated):
                self.ended = True
            elif isinstance(event, StreamReset):
                if self.in_flight.pop(event.stream_id, None) is not None:
                    ended += 1
            for h3 in self.http.handle_event(event):
                if isinstance(h3, HeadersReceived):
                    status = dict(h3.headers).get(b":status")
                    ids = self.in_flight.get(h3.stream_id, [])
                    self.answered += 1
                    if status == b"200":
                        out.write("".join(f"{i}\n" for i in ids))
                if getattr(h3, "stream_ended", False) and self.in_flight.pop(h3.stream_id, None) is not None:
                    ended += 1
        return ended


def main():
    addr, ca, tag, streams, limit, *flags = sys.argv[1:]
    streams, limit, pause = int(streams), int(limit), "--pause-at-first-answer" in flags
    out = sys.stdout
    client = Client(addr, ca, tag)
    client.flush()
    deadline = time.monotonic() + 30
    while not client.connected and not client.ended and time.monotonic() < deadline:
        client.wait(1.0)
        client.take_waiting(out)
        client.flush()
    if not client.connected:
        return
    if pause:
        # Whatever the handshake left to read is taken first, so the next datagram the server sends follows
        # the requests.
        while client.wait(0.2):
            client.take_waiting(out)
            client.flush()
        for _ in range(streams):
            client.open_one()
        client.flush()
        select.select([client.sock], [], [], 30)
        print("first", flush=True)
        sys.stdin.readline()
        client.take_waiting(out)
        print(f"done {client.answered}", flush=True)
        return
    for _ in range(streams):
        client.open_one()
    client.flush()
    while not client.ended and client.in_flight:
        # Events come from datagrams and from timers (an idle timeout ends the connection once the server is
        # gone), so they are taken after every wait.
        client.wait(1.0)
        for _ in range(client.take_waiting(out)):
            if client.sent < limit:
                client.open_one()
        out.flush()
        client.flush()
    out.flush()


if __name__ == "__main__":
    main()
