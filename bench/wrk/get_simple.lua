-- The article's request: GET /e?test=me.
wrk.method = "GET"
wrk.path = "/e?test=me"
dofile("bench/wrk/report.lua")
