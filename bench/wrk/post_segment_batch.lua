-- POST /v1/batch with a Segment batch of 100 events, each shaped as segment-analytics-python 2.4.0 sends a
-- track call (about 330 bytes as sent), with the batch's sentAt and writeKey.
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
wrk.path = "/v1/batch"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"batch": [' .. table.concat(messages, ", ")
  .. '], "sentAt": "2026-12-02T14:37:05.671623+00:00", "writeKey": "bench-key"}'
dofile("bench/wrk/report.lua")
