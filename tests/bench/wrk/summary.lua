-- The end of every benchmark load: done() prints one line, "wrk-summary {json}", that load.ts
-- reads. Loaded by the load scripts (dofile), which may set `statuses_of(thread)` to add the
-- statuses their response() counted.
local summary = {}

-- This process's CPU time (every thread's, user and system) in clock ticks, from /proc/self/stat:
-- the load generator's own cost, set beside the machine's by load.ts.
local function cpu_ticks()
  local file = io.open("/proc/self/stat", "r")
  if file == nil then return 0 end
  local stat = file:read("*a")
  file:close()
  -- After the command name in parentheses: state is field 3, utime 14, stime 15.
  local fields = {}
  for field in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = field end
  return tonumber(fields[12]) + tonumber(fields[13])
end

-- The whole machine's busy time in clock ticks (/proc/stat: every state but idle and iowait; the
-- kernel's, shared by every container), read when the script loads and when the load is done.
local function machine_ticks()
  local file = io.open("/proc/stat", "r")
  if file == nil then return 0 end
  local line = file:read("*l")
  file:close()
  local fields = {}
  for field in line:gmatch("%d+") do fields[#fields + 1] = tonumber(field) end
  -- user nice system idle iowait irq softirq steal
  return fields[1] + fields[2] + fields[3] + fields[6] + fields[7] + fields[8]
end
local machine_start = machine_ticks()

local function object(entries)
  local parts = {}
  for key, value in pairs(entries) do parts[#parts + 1] = string.format('"%s":%s', key, value) end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- `threads`: the thread objects setup() saw; their `statuses` tables, when they counted any.
function summary.done(threads, result, latency)
  local statuses = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses") or {}) do
      statuses[tostring(status)] = (statuses[tostring(status)] or 0) + count
    end
  end
  local errors = result.errors
  io.write("wrk-summary ", object({
    requests = result.requests,
    durationUs = result.duration,
    statuses = object(statuses),
    errors = object({ connect = errors.connect, read = errors.read, write = errors.write, timeout = errors.timeout, status = errors.status }),
    latencyUs = object({ p50 = latency:percentile(50), p90 = latency:percentile(90), p99 = latency:percentile(99), max = latency.max }),
    cpuTicks = cpu_ticks(),
    machineTicks = machine_ticks() - machine_start,
  }), "\n")
end

return summary
