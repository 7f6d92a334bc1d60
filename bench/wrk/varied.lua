-- Realistic variety for the enrichment scenarios: each request comes from one of 10,000 client addresses (an
-- X-Forwarded-For from the trusted proxy 127.0.0.1) with one of 1,000 real user agents (bench/wrk/user_agents.txt,
-- most common first), each drawn Zipf-like (rank r with weight 1/r), as real traffic repeats its visitors and
-- browsers. Loaded with dofile; defines varied_request(method, path, headers, body), for a scenario's request().

local function zipf_sampler(n)
  local cumulative, total = {}, 0
  for r = 1, n do
    total = total + 1 / r
    cumulative[r] = total
  end
  return function()
    local u = math.random() * total
    local lo, hi = 1, n
    while lo < hi do
      local mid = math.floor((lo + hi) / 2)
      if cumulative[mid] < u then lo = mid + 1 else hi = mid end
    end
    return lo
  end
end

-- Public IPv4 addresses from a fixed generator (Park-Miller: exact in LuaJIT's doubles), skipping private,
-- loopback, shared, link-local and multicast ranges.
local addresses, state = {}, 12345
local function next_byte(n)
  state = (state * 16807) % 2147483647
  return state % n
end
while #addresses < 10000 do
  local a, b = next_byte(223) + 1, next_byte(256)
  local private = a == 10 or a == 127 or (a == 172 and b >= 16 and b < 32) or (a == 192 and b == 168)
    or (a == 100 and b >= 64 and b < 128) or (a == 169 and b == 254)
  if not private then
    addresses[#addresses + 1] = string.format("%d.%d.%d.%d", a, b, next_byte(256), next_byte(254) + 1)
  end
end

local agents = {}
for line in io.lines("bench/wrk/user_agents.txt") do
  agents[#agents + 1] = line
end

local pick_address, pick_agent = zipf_sampler(#addresses), zipf_sampler(#agents)

function varied_request(method, path, headers, body)
  headers = headers or {}
  headers["X-Forwarded-For"] = addresses[pick_address()]
  headers["User-Agent"] = agents[pick_agent()]
  return wrk.format(method, path, headers, body)
end
