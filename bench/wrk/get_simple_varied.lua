-- get_simple's request from 10,000 clients (via a trusted proxy) with 1,000 real user agents, Zipf-like
-- (bench/wrk/varied.lua): the traffic enrichment is measured on.
dofile("bench/wrk/varied.lua")
function request()
  return varied_request("GET", "/e?test=me")
end
dofile("bench/wrk/report.lua")
