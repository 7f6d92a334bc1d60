-- POST /e with the 100 events of otlp_export_100 (examples/grpc_bodies.rs) as NDJSON: each line the raw_data an
-- OTLP log record of that export is stored with (body, severity, attributes, resource, scope). The OTLP scenario's
-- like for like: the same information to compress, without OTLP's Protobuf and gRPC.
events_per_request = 100
local lines = {}
for i = 1, events_per_request do
  lines[i] = string.format(
    '{"body":"impression","severity_text":"INFO","severity_number":9,"attributes":{"ad_id":"ad-%05d",' ..
    '"user.id":"u-8f14e45fceea167a5a36","slot":"top-%d","ts":%d},"resource":{"service.name":"ads"},' ..
    '"scope":{"name":"ads.impressions"}}',
    i, i % 4, 1764124014084 + i)
end
wrk.method = "POST"
wrk.path = "/e"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = table.concat(lines, "\n") .. "\n"
dofile("bench/wrk/report.lua")
