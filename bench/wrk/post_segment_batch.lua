-- POST /v1/batch with a Segment batch of 100 events (bench/wrk/segment_messages.lua), with the batch's sentAt and
-- writeKey.
dofile("bench/wrk/segment_messages.lua")
wrk.method = "POST"
wrk.path = "/v1/batch"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"batch": [' .. table.concat(messages, ", ")
  .. '], "sentAt": "2026-12-02T14:37:05.671623+00:00", "writeKey": "bench-key"}'
dofile("bench/wrk/report.lua")
