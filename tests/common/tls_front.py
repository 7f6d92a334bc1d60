"""A TLS front for a plaintext TCP server (the Kafka tests put it before tansu, whose own TLS listener cannot be
configured in 0.6.0): listens on 127.0.0.1:0 with the given certificate, prints the port it got, and pipes each
connection to 127.0.0.1:BACKEND_PORT until either side closes.

usage: tls_front.py CERT KEY BACKEND_PORT
"""
import asyncio
import ssl
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


async def main(cert, key, backend_port):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)

    async def serve(client_reader, client_writer):
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend_port)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(pipe(client_reader, backend_writer), pipe(backend_reader, client_writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
