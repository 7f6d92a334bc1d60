"""Real gRPC and OpenTelemetry clients for tests/grpc.rs (PyPI: grpcio, grpcio-tools, the OpenTelemetry SDK and its
OTLP log exporters; installed by scripts/h2-clients.sh). Each case prints one JSON object with what it saw.

  send ADDR TLS CA KEY N GZIP   plutos.v1.Collector/Send with N events (stubs generated now from proto/ by
                                grpcio-tools); KEY: the x-write-key metadata ("-": none); GZIP: 1 to compress
  otlp_grpc ADDR N KEY          N log records through the SDK's OTLP/gRPC log exporter
  otlp_http ADDR N KEY          N log records through the SDK's OTLP/HTTP (protobuf) log exporter
ADDR is host:port; TLS is 1 for h2 over TLS (CA: the certificate to trust), 0 for h2c.
"""

import importlib
import json
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc

PROTO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "proto")


def stubs():
    """plutos/v1/collector.proto's messages and stub, generated from the repository's .proto files."""
    out = tempfile.mkdtemp()
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    for proto in ["plutos/v1/collector.proto", "opentelemetry/proto/common/v1/common.proto"]:
        code = protoc.main(["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--grpc_python_out={out}", proto])
        assert code == 0, proto
    sys.path.insert(0, out)
    return importlib.import_module("plutos.v1.collector_pb2"), importlib.import_module("plutos.v1.collector_pb2_grpc")


def channel(addr, tls, ca):
    if tls == "1":
        with open(ca, "rb") as f:
            credentials = grpc.ssl_channel_credentials(root_certificates=f.read())
        return grpc.secure_channel(addr, credentials, options=[("grpc.ssl_target_name_override", "localhost")])
    return grpc.insecure_channel(addr)


def send(addr, tls, ca, key, n, gzip):
    pb, pb_grpc = stubs()
    from opentelemetry.proto.common.v1 import common_pb2

    events = []
    for i in range(n):
        if i % 2 == 0:
            events.append(pb.Event(json=json.dumps({"tag": f"grpc-{i}", "n": i})))
        else:
            properties = [
                common_pb2.KeyValue(key="tag", value=common_pb2.AnyValue(string_value=f"grpc-{i}")),
                common_pb2.KeyValue(key="total", value=common_pb2.AnyValue(double_value=12.5)),
            ]
            events.append(
                pb.Event(
                    properties=properties,
                    event_name="Order Completed",
                    user_id=f"user-{i}",
                    event_type="track",
                    time_unix_nano=1_796_000_000_000_000_000,
                )
            )
    metadata = [] if key == "-" else [("x-write-key", key)]
    compression = grpc.Compression.Gzip if gzip == "1" else grpc.Compression.NoCompression
    with channel(addr, tls, ca) as ch:
        stub = pb_grpc.CollectorStub(ch)
        try:
            response = stub.Send(pb.SendRequest(events=events), metadata=metadata, timeout=10, compression=compression)
            return {"code": "OK", "accepted": response.accepted, "invalid": response.invalid}
        except grpc.RpcError as e:
            return {"code": e.code().name, "details": e.details()}


class Recording:
    """Wraps an exporter: every export's result is kept."""

    def __init__(self, exporter):
        self.exporter, self.results = exporter, []

    def export(self, batch):
        result = self.exporter.export(batch)
        self.results.append(result.name)
        return result

    def shutdown(self):
        self.exporter.shutdown()

    def force_flush(self, timeout_millis=30000):
        return True


def logs(exporter, n):
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    recording = Recording(exporter)
    provider = LoggerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_log_record_processor(SimpleLogRecordProcessor(recording))
    logger = provider.get_logger("shop.checkout", "1.0")
    for i in range(n):
        logger.emit(
            timestamp=1_796_000_000_123_456_789 + i,
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            body=f"checkout {i}",
            attributes={"tag": f"otel-{i}", "user.id": f"u-{i}", "cart.items": i},
            event_name="checkout.completed",
        )
    provider.shutdown()
    return {"results": recording.results}


def otlp_grpc(addr, n, key):
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    headers = None if key == "-" else {"x-write-key": key}
    return logs(OTLPLogExporter(endpoint=f"http://{addr}", insecure=True, headers=headers, timeout=10), n)


def otlp_http(addr, n, key):
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    headers = None if key == "-" else {"x-write-key": key}
    return logs(OTLPLogExporter(endpoint=f"http://{addr}/v1/logs", headers=headers, timeout=10), n)


def main():
    case, addr, *rest = sys.argv[1:]
    if case == "send":
        tls, ca, key, n, gzip = rest
        result = send(addr, tls, ca, key, int(n), gzip)
    elif case == "otlp_grpc":
        result = otlp_grpc(addr, int(rest[0]), rest[1])
    elif case == "otlp_http":
        result = otlp_http(addr, int(rest[0]), rest[1])
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
