-- post_ndjson's batch of 100 events (bench/wrk/ndjson_events.lua) from 10,000 clients (via a trusted proxy) with
-- 1,000 real user agents, Zipf-like (bench/wrk/varied.lua).
dofile("bench/wrk/varied.lua")
dofile("bench/wrk/ndjson_events.lua")
function request()
  return varied_request("POST", "/e", { ["Content-Type"] = "application/x-ndjson" }, ndjson_body)
end
dofile("bench/wrk/report.lua")
