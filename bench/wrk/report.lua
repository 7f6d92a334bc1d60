-- Shared wrk `done` hook: one machine-readable line with latency percentiles and error counts.
-- Loaded by every scenario with dofile("bench/wrk/report.lua"); bench.sh parses the REPORT line.
events_per_request = events_per_request or 1

function done(summary, latency, requests)
  local non2xx = summary.errors.status
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "REPORT requests=%d duration_us=%d events_per_request=%d p50_us=%d p90_us=%d p99_us=%d non2xx=%d socket_errors=%d\n",
    summary.requests, summary.duration, events_per_request,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), non2xx, socket_errors))
end
