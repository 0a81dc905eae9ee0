-- wrk script for bench/scaleout.py: POSTs exceptions, one wrk thread per server process.
--
-- Environment (set by bench/scaleout.py):
--   SCALEOUT_PORTS    comma-separated ports, one per process; thread i talks to port i
--   SCALEOUT_TOKEN    the bearer token
--   SCALEOUT_OUT      a path prefix: thread i appends "<status> <run_id>" per 2xx answer to <prefix><i>
--   SCALEOUT_KIND     "pipeline" (payment.failed, one in ten pauses) or "tool" (bench.tool_call)
--   SCALEOUT_TAG      makes source ids unique across phases
-- Every request carries a unique source_id, so duplicated runs show as two runs with one source_id.

local threads = {}
local next_index = 0

function setup(thread)
  local ports = {}
  for port in string.gmatch(os.getenv("SCALEOUT_PORTS"), "%d+") do
    table.insert(ports, port)
  end
  local port = ports[(next_index % #ports) + 1]
  thread.addr = wrk.lookup("127.0.0.1", port)[1]
  thread:set("index", next_index)
  next_index = next_index + 1
  table.insert(threads, thread)
end

local counter, out, prefix, kind, headers
accepted = 0  -- a global, so done() can read it with thread:get
local deadline = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 6 * 3600)

function init(args)
  counter, accepted = 0, 0
  kind = os.getenv("SCALEOUT_KIND") or "pipeline"
  prefix = (os.getenv("SCALEOUT_TAG") or "s") .. "-" .. index .. "-"
  out = assert(io.open(os.getenv("SCALEOUT_OUT") .. index, "w"))
  out:setvbuf("line")  -- wrk never closes a thread's files: each line reaches the file as it is written
  headers = {
    ["Authorization"] = "Bearer " .. os.getenv("SCALEOUT_TOKEN"),
    ["Content-Type"] = "application/json",
  }
end

function request()
  counter = counter + 1
  local body
  if kind == "tool" then
    body = string.format(
      '{"source":"bench","source_id":"%s%d","domain":"bench","type":"bench.tool_call","code":"slow",' ..
      '"sla_deadline":"%s","context":{}}', prefix, counter, deadline)
  else
    local amount = (counter % 10 == 0) and "20000.00" or "40.00"
    body = string.format(
      '{"source":"stripe","source_id":"%s%d","domain":"payments","type":"payment.failed",' ..
      '"code":"card_declined","amount":"%s","currency":"USD","sla_deadline":"%s",' ..
      '"context":{"customer_email":"bench@example.com"}}', prefix, counter, amount, deadline)
  end
  return wrk.format("POST", "/api/v1/exceptions", headers, body)
end

function response(status, _, body)
  if status >= 200 and status < 300 then
    accepted = accepted + 1
    local run_id = string.match(body, '"run_id"%s*:%s*"([^"]+)"')
    out:write(status, " ", run_id or "-", "\n")
  end
end

function done(summary, latency, _)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("accepted") or 0)
  end
  io.write(string.format(
    'SCALEOUT {"requests":%d,"accepted":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, total, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
