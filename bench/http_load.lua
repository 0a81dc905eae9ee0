-- wrk script for bench/http.py: one kind of request per load, and a one-line JSON summary.
--
-- Environment (set by bench/http.py):
--   HTTP_MODE   "ingest": POST a payment.failed exception (one in ten over acme's approval amount, so it pauses)
--               "llm":    POST an exception no triage rule knows, so the server asks the model
--               "ids":    GET HTTP_PATH with its "%s" replaced by a run id drawn at random from the file HTTP_IDS
--               "get":    GET HTTP_PATH
--   HTTP_PATH   where the requests go
--   HTTP_TOKEN  the bearer token
--   HTTP_TAG    makes source ids unique across loads
-- Every POST carries a unique source_id.

local mode, path, prefix, ids, fixed, get_headers, post_headers
local counter = 0
local deadline = os.date("!%Y-%m-%dT%H:%M:%SZ", os.time() + 6 * 3600)

function init(_)
  mode = os.getenv("HTTP_MODE") or "get"
  path = os.getenv("HTTP_PATH") or "/"
  prefix = os.getenv("HTTP_TAG") or "h"
  get_headers = {["Authorization"] = "Bearer " .. (os.getenv("HTTP_TOKEN") or "")}
  post_headers = {["Authorization"] = get_headers["Authorization"], ["Content-Type"] = "application/json"}
  if mode == "ids" then
    ids = {}
    for line in io.lines(os.getenv("HTTP_IDS")) do
      ids[#ids + 1] = line
    end
    math.randomseed(os.time())
  elseif mode == "get" then
    fixed = wrk.format("GET", path, get_headers)
  end
end

local function exception_body()
  counter = counter + 1
  if mode == "llm" then
    return string.format(
      '{"source":"wms","source_id":"%s-%d","domain":"orders","type":"warehouse.order_hold","code":"hold",' ..
      '"sla_deadline":"%s","context":{"warehouse":"AMS-1"}}', prefix, counter, deadline)
  end
  local amount = (counter % 10 == 0) and "20000.00" or "40.00"
  return string.format(
    '{"source":"stripe","source_id":"%s-%d","domain":"payments","type":"payment.failed",' ..
    '"code":"card_declined","amount":"%s","currency":"USD","sla_deadline":"%s",' ..
    '"context":{"customer_email":"bench@example.com"}}', prefix, counter, amount, deadline)
end

function request()
  if fixed then
    return fixed
  end
  if mode == "ids" then
    return wrk.format("GET", string.format(path, ids[math.random(#ids)]), get_headers)
  end
  return wrk.format("POST", path, post_headers, exception_body())
end

function done(summary, latency, _)
  io.write(string.format(
    'HTTPBENCH {"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"timeouts":%d,"non_2xx":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(99), latency.max))
end
