-- Shared by the wrk scripts: random user ids, a bearer token, and one machine-readable summary line.
-- Every request comes as through a TLS-terminating proxy (X-Forwarded-Proto: https).
-- Environment: BENCH_USERS (ids 1..N), BENCH_TOKEN.
local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local token = os.getenv("BENCH_TOKEN") or ""
local threads = {}
local counter = 0

function bench_user()
  return math.random(1, users)
end

function bench_headers(extra)
  local headers = { ["Authorization"] = "Bearer " .. token, ["X-Forwarded-Proto"] = "https" }
  for k, v in pairs(extra or {}) do headers[k] = v end
  return headers
end

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + (tid or 0) * 7919)
  added, removed = 0, 0
end

function done(summary, latency, requests)
  local add_total, remove_total = 0, 0
  for _, thread in ipairs(threads) do
    add_total = add_total + (thread:get("added") or 0)
    remove_total = remove_total + (thread:get("removed") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "max_us": %d, '
      .. '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "added": %d, "removed": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout, add_total, remove_total))
end
