-- post_ndjson's batch of 100 events from 10,000 clients (via a trusted proxy) with 1,000 real user agents,
-- Zipf-like (bench/wrk/varied.lua).
dofile("bench/wrk/varied.lua")
events_per_request = 100
local lines = {}
for i = 1, events_per_request do
  lines[i] = string.format(
    '{"event":"impression","ad_id":"ad-%05d","user_id":"u-8f14e45fceea167a5a36","slot":"top-%d","ts":%d}',
    i, i % 4, 1764124014084 + i)
end
local body = table.concat(lines, "\n") .. "\n"
function request()
  return varied_request("POST", "/e", { ["Content-Type"] = "application/x-ndjson" }, body)
end
dofile("bench/wrk/report.lua")
