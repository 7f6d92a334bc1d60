"""An HTTP/2 load client for the crash and ack-order trials (tests/crash.rs, tests/ack_order.rs), written with
hyper-h2 (PyPI `h2`): one connection keeps STREAMS requests in flight — GET /e?id=… and NDJSON POSTs of three
events, alternately — and prints the ids of every request answered 200 on stdout, one per line, as soon as the
answer's HEADERS arrive, until the connection ends or it has sent LIMIT requests.

  h2_load.py ADDR TLS CA TAG STREAMS LIMIT [--pause-at-first-answer]

ADDR is host:port; TLS is 1 for h2 by ALPN (CA: the certificate to trust), 0 for h2c. With
--pause-at-first-answer it first waits for the server's SETTINGS and its ack of the client's, opens STREAMS streams,
and once the socket is readable (the first bytes of the answers arrived, none taken) prints `first` and waits for a
line on stdin (the trial freezes the server meanwhile); then it reads what had arrived, prints the ids answered
200 in it, and `done N` (N: the answers it read).
"""

import select
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.events
import h2.exceptions


def connect(addr, tls, ca):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=30)
    if tls:
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2"])
        sock = context.wrap_socket(sock, server_hostname="localhost")
    return sock


class Client:
    def __init__(self, sock, tag):
        self.sock, self.tag, self.sent, self.in_flight, self.answered = sock, tag, 0, {}, 0
        self.settings_seen, self.settings_acked = False, False
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.conn.initiate_connection()

    @property
    def settled(self):
        return self.settings_seen and self.settings_acked

    def open_one(self):
        stream = self.conn.get_next_available_stream_id()
        n = self.sent
        self.sent += 1
        authority = [(":scheme", "https"), (":authority", "localhost")]
        if n % 2 == 0:
            ids = [f"{self.tag}-{n}"]
            self.conn.send_headers(stream, [(":method", "GET"), (":path", f"/e?id={ids[0]}")] + authority, end_stream=True)
        else:
            ids = [f"{self.tag}-{n}-{k}" for k in range(3)]
            body = "".join(f'{{"id":"{i}"}}\n' for i in ids).encode()
            headers = [(":method", "POST"), (":path", "/e")] + authority
            headers += [("content-type", "application/x-ndjson"), ("content-length", str(len(body)))]
            self.conn.send_headers(stream, headers)
            self.conn.send_data(stream, body, end_stream=True)
        self.in_flight[stream] = ids

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def take(self, data, out):
        """Handles what arrived; returns how many streams ended (each may be replaced)."""
        ended = 0
        for event in self.conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                status = dict(event.headers).get(b":status")
                ids = self.in_flight.get(event.stream_id, [])
                self.answered += 1
                if status == b"200":
                    out.write("".join(f"{i}\n" for i in ids))
            elif isinstance(event, h2.events.DataReceived):
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                if self.in_flight.pop(event.stream_id, None) is not None:
                    ended += 1
            elif isinstance(event, h2.events.RemoteSettingsChanged):
                self.settings_seen = True
            elif isinstance(event, h2.events.SettingsAcknowledged):
                self.settings_acked = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                raise ConnectionError("GOAWAY")
        return ended


def main():
    addr, tls, ca, tag, streams, limit, *flags = sys.argv[1:]
    streams, limit, pause = int(streams), int(limit), "--pause-at-first-answer" in flags
    out = sys.stdout
    try:
        client = Client(connect(addr, tls == "1", ca), tag)
        client.flush()
        if pause:
            # The server's SETTINGS and its ack of ours first, so the next bytes it writes are its answers'.
            while not client.settled:
                client.take(client.sock.recv(65536), out)
            for _ in range(streams):
                client.open_one()
            client.flush()
            # Readable (nothing taken, so the server is stopped before more than its first write arrives whole).
            select.select([client.sock], [], [], 30)
            print("first", flush=True)
            sys.stdin.readline()
            client.sock.settimeout(0.5)
            while True:
                try:
                    data = client.sock.recv(65536)
                except socket.timeout:
                    break
                if not data:
                    break
                client.take(data, out)
            print(f"done {client.answered}", flush=True)
            return
        for _ in range(streams):
            client.open_one()
        client.flush()
        while True:
            data = client.sock.recv(65536)
            if not data:
                break
            for _ in range(client.take(data, out)):
                if client.sent < limit:
                    client.open_one()
            out.flush()
            client.flush()
            if not client.in_flight:
                break
    except (OSError, ConnectionError, h2.exceptions.ProtocolError):
        pass
    out.flush()


if __name__ == "__main__":
    main()
