-- POST /e with the 100 events of post_segment_batch.lua as NDJSON, one per line: the same events through plutos's
-- own path, so the two scenarios side by side show what the Segment protocol itself costs.
dofile("bench/wrk/segment_messages.lua")
wrk.method = "POST"
wrk.path = "/e"
wrk.headers["Content-Type"] = "application/x-ndjson"
wrk.body = table.concat(messages, "\n") .. "\n"
dofile("bench/wrk/report.lua")
