-- POST /e with an NDJSON batch of 100 events (about 150 bytes each).
events_per_request = 100
local lines = {}
for i = 1, events_per_request do
  lines[i] = string.format(
    '{"event":"impression","ad_id":"ad-%05d","user_id":"u-8f14e45fceea167a5a36","slot":"top-%d","ts":%d}',
    i, i % 4, 1764124014084 + i)
end
wrk.method = "POST"
wrk.path = "/e"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = table.concat(lines, "\n") .. "\n"
dofile("bench/wrk/report.lua")
