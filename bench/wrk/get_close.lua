-- GET /e?test=me with Connection: close: one request per connection, the shape of browsers and SDKs that do
-- not reuse connections (every request pays the TCP handshake and teardown).
wrk.method = "GET"
wrk.path = "/e?test=me"
wrk.headers["Connection"] = "close"
dofile("bench/wrk/report.lua")
