//! `protogen OUT_DIR`: the prost types of plutos's gRPC service and of OTLP's logs, from the repository's
//! `proto/` (parsed by protox, so no `protoc` is needed), written to OUT_DIR one file per package.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::args().nth(1).expect("usage: protogen OUT_DIR"));
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = ["plutos/v1/collector.proto", "opentelemetry/proto/collector/logs/v1/logs_service.proto"];
    let descriptors = protox::compile(files, [&root]).expect("the .proto files compile");
    std::fs::create_dir_all(&out).expect("OUT_DIR can be made");
    prost_build::Config::new()
        .out_dir(&out)
        .compile_fds(descriptors)
        .expect("prost-build writes the types");
}
