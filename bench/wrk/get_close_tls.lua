-- get_close over HTTPS: a TLS handshake per request (wrk offers the previous session, so a server with tickets
-- or a session cache resumes; the nginx log's `reused` field counts how many did).
dofile("bench/wrk/get_close.lua")
