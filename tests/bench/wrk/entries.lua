-- POST /api/entries, a fresh message each (a second row with one message is a duplicate), and
-- the id of every 202 written to a file per thread (each wrk thread is a Lua state of its own),
-- for the reconciliation with the rows. Settings, from the environment (load.ts):
--   BENCH_AUTHOR   the author of every entry, so the run's rows can be found
--   BENCH_IDS      path prefix of the id files (<prefix>.<thread>)
--   BENCH_RATE     optional: requests per second for the whole load, paced by delay()
--   BENCH_THREADS  wrk's -t, to split the rate between the threads
local summary = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")
local ffi = require("ffi")

ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock, bench_timespec *now);
]])
local CLOCK_MONOTONIC = 1
local now_spec = ffi.new("bench_timespec")
local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, now_spec)
  return tonumber(now_spec.tv_sec) * 1000 + tonumber(now_spec.tv_nsec) / 1e6
end

local author = os.getenv("BENCH_AUTHOR")
local ids_prefix = os.getenv("BENCH_IDS")
local rate = tonumber(os.getenv("BENCH_RATE") or "")
local thread_total = tonumber(os.getenv("BENCH_THREADS") or "1")
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

function init()
  statuses = {}
  sent = 0
  ids = io.open(ids_prefix .. "." .. thread_number, "w")
  -- stdio buffers the ids; wrk's exit flushes them.
  wrk.headers["Content-Type"] = "application/json"
  started_ms = now_ms()
end

function request()
  sent = sent + 1
  local body = string.format('{"author":"%s","message":"benchmark entry %d-%d"}', author, thread_number, sent)
  return wrk.format("POST", nil, nil, body)
end

function response(status, _, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 202 then
    local id = body:match('"id":"([0-9a-f-]+)"')
    if id ~= nil then ids:write(id, "\n") end
  end
end

-- Paced loads: each thread keeps its share of the rate on a schedule from its start, so a slow
-- answer does not lower the rate (as a fixed pause per connection would).
if rate ~= nil then
  function delay()
    local share = rate / thread_total
    local due_ms = started_ms + (sent / share) * 1000
    return math.max(0, math.floor(due_ms - now_ms()))
  end
end

function done(result, latency)
  summary.done(threads, result, latency)
end
