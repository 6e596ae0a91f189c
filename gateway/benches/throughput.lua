-- wrk script: stateless (2026-07-28) tools/call of server-everything's `echo` through
-- `mcpctl serve`; counts anything but an HTTP 200 JSON-RPC result as a failure.
-- Token from $MCPCTL_BENCH_TOKEN. Used by gateway/benches/throughput.sh.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, text/event-stream"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("MCPCTL_BENCH_TOKEN")
wrk.headers["MCP-Protocol-Version"] = "2026-07-28"
wrk.headers["Mcp-Method"] = "tools/call"
wrk.headers["Mcp-Name"] = "echo"
-- $MCPCTL_BENCH_ORIGIN (an allowed browser origin) sends the call through rmcp's service instead
-- of the gateway's direct stateless answer (gateway/src/mcp/stateless.rs), for comparison.
-- $MCPCTL_BENCH_EXPECT: the text a JSON-RPC error answer must contain instead (a refused call).
expect = os.getenv("MCPCTL_BENCH_EXPECT") or ""
local origin = os.getenv("MCPCTL_BENCH_ORIGIN")
if origin and origin ~= "" then
  wrk.headers["Origin"] = origin
end
wrk.body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},'
  .. '"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},'
  .. '"io.modelcontextprotocol/clientInfo":{"name":"wrk","version":"4"}}}}'

local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  failed = 0
  ok = 0
end

function response(status, headers, body)
  if expect ~= "" then
    if status == 200 and string.find(body, expect, 1, true) then
      ok = ok + 1
    else
      failed = failed + 1
    end
  elseif status == 200 and string.find(body, '"Echo: hi"', 1, true) and not string.find(body, '"isError":true', 1, true) then
    ok = ok + 1
  else
    failed = failed + 1
    if failed == 1 then
      io.stderr:write("first failure: HTTP " .. status .. " " .. string.sub(body, 1, 300) .. "\n")
    end
  end
end

function done(summary, latency, requests)
  local o, f = 0, 0
  for _, t in ipairs(threads) do
    o = o + t:get("ok")
    f = f + t:get("failed")
  end
  io.write(string.format("mcp_ok %d mcp_failed %d\n", o, f))
end
