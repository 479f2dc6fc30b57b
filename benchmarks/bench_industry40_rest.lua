-- wrk script for benchmarks/bench_industry40_rest.py: POST /orders with a valid body and a unique
-- Idempotency-Key per request (so every request creates an order), and the result as one JSON line.
--
--   wrk -t1 -c16 -d10s -s benchmarks/bench_industry40_rest.lua http://127.0.0.1:PORT -- 2030-01-31T12:00:00Z
--
-- The argument after "--" is the orders' deadline (default: 2099-12-31T00:00:00Z).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_no", #threads)
end

local body
local prefix
local count = 0
local headers = {["Content-Type"] = "application/json"}

function init(args)
  local deadline = args[1] or "2099-12-31T00:00:00Z"
  body = '{"product_type":"widget","quantity":3,"deadline":"' .. deadline .. '"}'
  -- unique across threads (thread_no) and runs (time and a random number)
  math.randomseed(os.time() + (thread_no or 0) * 7919)
  prefix = string.format("wrk-%d-%d-%d-", os.time(), thread_no or 0, math.random(1, 2147483647))
end

function request()
  count = count + 1
  headers["Idempotency-Key"] = prefix .. count
  return wrk.format("POST", "/orders", headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "errors": {"connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d}, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
