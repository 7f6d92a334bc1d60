-- POST /com.snowplowanalytics.snowplow/tp2 with a tracker's payload_data batch of 100 events: 50 page views and 50
-- link clicks (a self-describing event, `ue_pr`), each with the web_page context (`co`), as Snowplow's JS tracker
-- sends them without base64. With SCHEMAS_DIR every event's parts are validated: the envelopes, the link click
-- against link_click 1-0-1, each context against web_page 1-0-0 (all valid).
events_per_request = 100
local events = {}
local context = '{\\"schema\\":\\"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0\\",\\"data\\":'
  .. '[{\\"schema\\":\\"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0\\",\\"data\\":'
  .. '{\\"id\\":\\"0d3d4a4a-3b3c-4e5f-9a6b-%012d\\"}}]}'
for i = 1, events_per_request do
  local common = string.format(
    '"aid":"shop","p":"web","tv":"js-3.24.0","eid":"8e1f4a2c-6b7d-4e3f-9a1b-%012d","dtm":"17650%08d",'
      .. '"stm":"17650%08d","duid":"4f6a2b1c-%04d","vid":"1","sid":"9c3b2a1d-5e4f","url":"https://shop.example/p/%d",'
      .. '"co":"' .. context .. '"',
    i, i, i + 5, i % 97, i, i)
  if i % 2 == 1 then
    events[i] = '{"e":"pv","page":"Product ' .. i .. '",' .. common .. '}'
  else
    events[i] = '{"e":"ue",' .. common .. ',"ue_pr":"{\\"schema\\":\\"iglu:com.snowplowanalytics.snowplow/'
      .. 'unstruct_event/jsonschema/1-0-0\\",\\"data\\":{\\"schema\\":\\"iglu:com.snowplowanalytics.snowplow/'
      .. 'link_click/jsonschema/1-0-1\\",\\"data\\":{\\"targetUrl\\":\\"https://shop.example/cart\\",'
      .. '\\"elementId\\":\\"buy-' .. i .. '\\"}}}"}'
  end
end
wrk.method = "POST"
wrk.path = "/com.snowplowanalytics.snowplow/tp2"
wrk.headers["Content-Type"] = "application/json; charset=utf-8"
wrk.body = '{"schema":"iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4","data":['
  .. table.concat(events, ",") .. ']}'
dofile("bench/wrk/report.lua")
