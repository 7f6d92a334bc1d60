-- POST /e with the 100 events of post_segment_batch.lua as NDJSON, one per line: the same events through plutos's
-- own path, so the two scenarios side by side show what the Segment protocol itself costs.
events_per_request = 100
local messages = {}
for i = 1, events_per_request do
  messages[i] = string.format(
    '{"integrations": {}, "anonymousId": null, "properties": {"total": %d.5, "currency": "EUR", "sku": "sku-%05d"}, '
      .. '"timestamp": "2026-12-02T14:37:%02d.%03d+00:00", "context": {"ip": "203.0.113.%d", "library": '
      .. '{"name": "analytics-python", "version": "2.4.0"}}, "userId": "user-%d", "type": "track", '
      .. '"event": "Order Completed", "messageId": "5756802d-b09a-4dbc-ba08-%012d"}',
    i, i, i % 60, i, i % 250, i % 17, i)
end
wrk.method = "POST"
wrk.path = "/e"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = table.concat(messages, "\n") .. "\n"
dofile("bench/wrk/report.lua")
