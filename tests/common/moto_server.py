"""An SQS API server for the tests: moto's server (PyPI moto[server], installed by scripts/moto.sh) on loopback,
on the port given (0: a free one), which it prints as its first line; it serves until its stdin closes (the test
that started it ends or dies), so no server outlives its test.

moto computes a queue's approximate message counts (a queue attribute) by walking every message, and reads
the attributes on every message sent, so sending gets slower with every message in the queue (150 ms per
batch of 10 with 300 queued, against 6 ms empty). The counts are approximate in SQS too and no test reads
them: here they are the queue's length, so a test can send thousands of events. Nothing else is changed."""

import sys

from moto.moto_server.threaded_moto_server import ThreadedMotoServer
from moto.sqs.models import Queue

Queue.approximate_number_of_messages = property(lambda queue: len(queue._messages))
Queue.approximate_number_of_messages_not_visible = property(lambda queue: 0)
Queue.approximate_number_of_messages_delayed = property(lambda queue: 0)

server = ThreadedMotoServer(ip_address="127.0.0.1", port=int(sys.argv[1]), verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
