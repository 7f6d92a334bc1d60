"""An HTTP/3 client for the tests, on aioquic (a QUIC and HTTP/3 implementation from PyPI, independent of plutos).

    python h3_client.py HOST PORT CA_FILE < requests.json

`requests.json` is a list of requests sent on one connection, all at once (each on its own stream):
    [{"method": "GET", "path": "/e?a=1", "headers": [["user-agent", "x"]], "body": "..."}]
Prints one JSON line: {"alpn": ..., "responses": [{"status": 200, "headers": [[k, v]...], "body": "..."}, ...]} in
the order of the requests. Options (environment): H3_RETRY_EXPECTED=1 fails unless the server sent a Retry;
H3_SEQUENTIAL=1 sends each request once the one before was answered.
"""

import asyncio
import json
import os
import sys

from aioquic.asyncio import connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ProtocolNegotiated, QuicEvent


class Client(QuicConnectionProtocol):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.http = H3Connection(self._quic)
        self.responses = {}
        self.waiters = {}
        self.alpn = None

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


async def main():
    host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    requests = json.load(sys.stdin)
    configuration = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name="localhost")
    configuration.load_verify_locations(ca)
    async with connect(host, port, configuration=configuration, create_protocol=Client) as client:
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
        print(json.dumps({"alpn": client.alpn, "retried": retried, "responses": responses}))


asyncio.run(main())
