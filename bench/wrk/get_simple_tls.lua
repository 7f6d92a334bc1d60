-- get_simple over HTTPS: keep-alive connections, one TLS handshake each, then GET /e?test=me.
dofile("bench/wrk/get_simple.lua")
