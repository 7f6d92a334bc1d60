-- The 100 events of post_segment_batch.lua and post_ndjson_sdk_events.lua: track calls shaped as
-- segment-analytics-python 2.4.0 sends them (about 330 bytes each as sent). Loaded with dofile; sets `messages`.
events_per_request = 100
messages = {}
for i = 1, events_per_request do
  messages[i] = string.format(
    '{"integrations": {}, "anonymousId": null, "properties": {"total": %d.5, "currency": "EUR", "sku": "sku-%05d"}, '
      .. '"timestamp": "2026-12-02T14:37:%02d.%03d+00:00", "context": {"ip": "203.0.113.%d", "library": '
      .. '{"name": "analytics-python", "version": "2.4.0"}}, "userId": "user-%d", "type": "track", '
      .. '"event": "Order Completed", "messageId": "5756802d-b09a-4dbc-ba08-%012d"}',
    i, i, i % 60, i, i % 250, i % 17, i)
end
