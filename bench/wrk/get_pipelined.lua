-- GET /e?test=me pipelined 16 deep: one write carries 16 requests.
local depth = 16
local batch
function init(args)
  local one = wrk.format("GET", "/e?test=me")
  batch = string.rep(one, depth)
end
function request()
  return batch
end
dofile("bench/wrk/report.lua")
