-- The 100 events of post_ndjson.lua and post_ndjson_varied.lua, about 100 bytes each, as one NDJSON body. Loaded
-- with dofile; sets `events_per_request` and `ndjson_body`.
events_per_request = 100
local lines = {}
for i = 1, events_per_request do
  lines[i] = string.format(
    '{"event":"impression","ad_id":"ad-%05d","user_id":"u-8f14e45fceea167a5a36","slot":"top-%d","ts":%d}',
    i, i % 4, 1764124014084 + i)
end
ndjson_body = table.concat(lines, "\n") .. "\n"
