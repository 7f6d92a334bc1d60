-- POST /e with an NDJSON batch of 100 events (bench/wrk/ndjson_events.lua).
dofile("bench/wrk/ndjson_events.lua")
wrk.method = "POST"
wrk.path = "/e"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = ndjson_body
dofile("bench/wrk/report.lua")
