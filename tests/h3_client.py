"""An HTTP/3 client for the tests, on aioquic (a QUIC and HTTP/3 implementation from PyPI, independent of plutos).

    python h3_client.py HOST PORT CA_FILE < requests.json

`requests.json` is a list of requests sent on one connection, all at once (each on its own stream):
    [{"method": "GET", "path": "/e?a=1", "headers": [["user-agent", "x"]], "body": "..."}]
Prints one JSON line: {"alpn": ..., "responses": [{"status": 200, "headers": [[k, v]...], "body": "..."}, ...]} in
the order of the requests. Options (environment): H3_RETRY_EXPECTED=1 fails unless the server sent a Retry;
H3_SEQUENTIAL=1 sends each request once the one before was answered; H3_TICKET=FILE resumes the TLS session
whose ticket FILE holds (if it exists) and keeps the ticket the server sends there ("resumed" and the ticket's
"max_early_data" are printed); H3_WAIT_CLOSE=1 prints `answered` once the answers arrived, then waits for the
server to end the connection and prints the GOAWAY it sent on its control stream and the close's code.
"""

import asyncio
import json
import os
import pickle
import sys

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, ProtocolNegotiated, QuicEvent, StreamDataReceived


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.responses = {}
        self.waiters = {}
        self.alpn = None
        # The server's unidirectional streams' bytes (its control stream), and how the connection ended.
        self.server_streams = {}
        self.terminated = None

    async def request(self, method, path, authority, headers, body):
        stream = self._quic.get_next_available_stream_id()
        fields = [(b":method", method.encode()), (b":scheme", b"https"), (b":authority", authority.encode()),
                  (b":path", path.encode())]
        fields += [(k.encode(), v.encode()) for k, v in headers]
        self.http.send_headers(stream, fields, end_stream=not body)
        if body:
            self.http.send_data(stream, body.encode(), end_stream=True)
        waiter = self._loop.create_future()
        self.waiters[stream] = waiter
        self.responses[stream] = {"status": None, "headers": [], "body": b""}
        self.transmit()
        await asyncio.wait_for(waiter, 30)
        response = self.responses.pop(stream)
        response["body"] = response["body"].decode("utf-8", "replace")
        return response

    def quic_event_received(self, event: QuicEvent):
        if isinstance(event, ProtocolNegotiated):
            self.alpn = event.alpn_protocol
        if isinstance(event, StreamDataReceived) and event.stream_id % 4 == 3:
            self.server_streams[event.stream_id] = self.server_streams.get(event.stream_id, b"") + event.data
        if isinstance(event, ConnectionTerminated):
            self.terminated = {"error_code": event.error_code, "reason": event.reason_phrase}
        for http_event in self.http.handle_event(event):
            response = self.responses.get(http_event.stream_id)
            if response is None:
                continue
            if isinstance(http_event, HeadersReceived):
                for k, v in http_event.headers:
                    if k == b":status":
                        response["status"] = int(v)
                    else:
                        response["headers"].append([k.decode(), v.decode()])
            elif isinstance(http_event, DataReceived):
                response["body"] += http_event.data
            if getattr(http_event, "stream_ended", False):
                waiter = self.waiters.pop(http_event.stream_id)
                if not waiter.done():
                    waiter.set_result(None)


def varint(data, at):
    """A QUIC variable-length integer at `at`: its value and the next position."""
    length = 1 << (data[at] >> 6)
    value = data[at] & 0x3F
    for b in data[at + 1:at + length]:
        value = (value << 8) | b
    return value, at + length


def goaway(streams):
    """The stream id of the last GOAWAY frame on the server's control stream (type 0), or None."""
    for data in streams.values():
        if not data or data[0] != 0:
            continue
        at, last = 1, None
        while at < len(data):
            kind, at = varint(data, at)
            length, at = varint(data, at)
            if kind == 0x07:
                last, _ = varint(data, at)
            at += length
        return last
    return None


async def main():
    host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    requests = json.load(sys.stdin)
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    configuration.load_verify_locations(ca)
    tickets = []
    ticket_file = os.environ.get("H3_TICKET")
    if ticket_file and os.path.exists(ticket_file):
        with open(ticket_file, "rb") as f:
            configuration.session_ticket = pickle.load(f)
    async with connect(host, port, configuration=configuration, create_protocol=Client,
                       session_ticket_handler=tickets.append) as client:
        def send(r):
            return client.request(r.get("method", "GET"), r["path"], f"localhost:{port}", r.get("headers", []),
                                  r.get("body", ""))
        if os.environ.get("H3_SEQUENTIAL") == "1":
            responses = [await send(r) for r in requests]
        else:
            responses = await asyncio.gather(*(send(r) for r in requests))
        retried = client._quic._retry_count > 0
        if os.environ.get("H3_RETRY_EXPECTED") == "1" and not retried:
            raise SystemExit("the server sent no Retry")
        result = {"alpn": client.alpn, "retried": retried, "responses": responses,
                  "resumed": client._quic.tls.session_resumed}
        if os.environ.get("H3_WAIT_CLOSE") == "1":
            print("answered", flush=True)
            await asyncio.wait_for(client.wait_closed(), 30)
            result["goaway"] = goaway(client.server_streams)
            result["closed"] = client.terminated
        if ticket_file:
            # The ticket arrives after the handshake, with the answers or soon after.
            for _ in range(100):
                if tickets:
                    break
                await asyncio.sleep(0.01)
            if tickets:
                result["max_early_data"] = tickets[-1].max_early_data_size
                with open(ticket_file, "wb") as f:
                    pickle.dump(tickets[-1], f)
        print(json.dumps(result))


asyncio.run(main())
