-- A load of one fixed request: a GET of the URL's path, or a POST of BENCH_BODY (JSON) to it.
-- No response() callback: wrk then skips parsing bodies, the cheapest load it can generate;
-- errors are what wrk counts itself (socket errors, timeouts, statuses above 399).
local summary = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "summary.lua")

local body = os.getenv("BENCH_BODY")
if body ~= nil then
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function done(result, latency)
  summary.done(threads, result, latency)
end
