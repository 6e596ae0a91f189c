// The upstream alone: one MCP stdio session with WINDOW tools/call requests kept in flight
// (pipelined over the one pipe, as the gateway's client does), for SECS seconds after a 1 s
// warm-up. Prints `calls/s`, p50 and p99, the CPU each side used in the measured window (the
// client's own in µs, the server's in clock ticks of /proc/PID/stat), and fails on any JSON-RPC
// error answer.
//
//   node gateway/benches/stdio_pipelined.mjs WINDOW SECS TOOL ARGS_JSON -- COMMAND [ARG...]
//   e.g. node stdio_pipelined.mjs 64 10 echo '{"message":"hi"}' -- node "$MCPCTL_PEER_EVERYTHING" stdio
//
// Used by gateway/benches/throughput.sh, which measures the gateway in the same run.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createInterface } from "node:readline";

const sep = process.argv.indexOf("--");
const [window, secs, tool, args] = process.argv.slice(2, sep);
const [cmd, ...cmdArgs] = process.argv.slice(sep + 1);
const WINDOW = Number(window), SECS = Number(secs), ARGS = JSON.parse(args);

const child = spawn(cmd, cmdArgs, { stdio: ["pipe", "pipe", "ignore"] });
const lines = createInterface({ input: child.stdout });
const pending = new Map();
let nextId = 1;

function send(method, params) {
  const id = nextId++;
  child.stdin.write(JSON.stringify({ jsonrpc: "2.0", id, method, params }) + "\n");
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject, at: process.hrtime.bigint() }));
}

lines.on("line", (line) => {
  const msg = JSON.parse(line);
  if (msg.id === undefined || !pending.has(msg.id)) return; // notifications
  const p = pending.get(msg.id);
  pending.delete(msg.id);
  if (msg.error || msg.result?.isError) p.reject(new Error(JSON.stringify(msg.error ?? msg.result)));
  else p.resolve(Number(process.hrtime.bigint() - p.at) / 1e3);
});

await send("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "bench", version: "1" } });
child.stdin.write(JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }) + "\n");

// WINDOW loops, each sending its next call when the previous one is answered.
let measuring = false, stop = false, done = 0;
const latencies = [];
async function loop() {
  while (!stop) {
    const us = await send("tools/call", { name: tool, arguments: ARGS });
    if (measuring && !stop) {
      done++;
      latencies.push(us);
    }
  }
}
const loops = Array.from({ length: WINDOW }, loop);
await new Promise((r) => setTimeout(r, 1000));
// utime + stime of a process, in clock ticks (fields 14 and 15 of /proc/PID/stat).
const ticks = (pid) => {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[11]) + Number(rest[12]);
};
measuring = true;
const t0 = process.hrtime.bigint();
const cpu0 = process.cpuUsage(), server0 = ticks(child.pid);
await new Promise((r) => setTimeout(r, SECS * 1000));
stop = true;
const cpu = process.cpuUsage(cpu0), serverTicks = ticks(child.pid) - server0;
const elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
await Promise.all(loops);
latencies.sort((a, b) => a - b);
const q = (f) => (latencies[Math.floor(latencies.length * f)] / 1000).toFixed(2) + "ms";
console.log(`calls/s ${(done / elapsed).toFixed(0)}  p50 ${q(0.5)}  p99 ${q(0.99)}  calls ${done}  client_us ${cpu.user + cpu.system}  server_ticks ${serverTicks}`);
child.kill();
process.exit(0);
