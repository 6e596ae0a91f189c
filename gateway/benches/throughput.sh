#!/usr/bin/env bash
# Gateway throughput as a share of the upstream's own capacity, in the same run (tracker issue 9):
# server-everything (`echo`, stdio) alone — one stdio session with CONNS calls pipelined
# (gateway/benches/stdio_pipelined.mjs) — then through one `mcpctl serve` (release build, SQLite,
# local runtime), driven by wrk with CONNS connections sending stateless 2026-07-28 tools/call
# (gateway/benches/throughput.lua, every answer checked). Alternating, ROUNDS times; prints each
# figure, p50/p99, and gateway ÷ upstream-alone per round.
#
#   source .ci/peers.sh && cargo build --release -p mcpctl && gateway/benches/throughput.sh
#
# Env: MCPCTL (binary, default $CARGO_TARGET_DIR/release/mcpctl), CONNS (space-separated list,
# default "16 64"), SECS (10), ROUNDS (2), THREADS (wrk threads, 2), RATE_LIMIT (off),
# VIA ("direct"; or a list of: direct, rmcp — through rmcp's per-request service, forced by an
# allowed `Origin` header —, denied — a token that may not run `echo`: the gateway's whole path
# but the upstream hop, a ceiling for this machine — in the same round).
# PROFILE=1 keeps serve running after the rounds and prints its pid (for perf/callgrind).
# Each figure also gets its CPU cost per call (user + system, from /proc/PID/stat, the client's
# own usage and /usr/bin/time): alone, the pipelining client and the server; through the gateway,
# `mcpctl serve`, its upstream process and wrk. On a machine whose cores all of them share,
# these bound the ratio: through the gateway a call costs the sum of its three parts.
set -euo pipefail
conns_list="${CONNS:-16 64}" secs="${SECS:-10}" rounds="${ROUNDS:-2}" threads="${THREADS:-2}"
source "$(dirname "$0")/echo_gateway.sh"
echo "date: $(date -u +%FT%TZ)  duration: ${secs}s  rounds: $rounds  wrk threads: $threads  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
# CPU seconds (user + system) used so far by the given processes and their descendants.
tree_pids() { echo "$1"; local c; for c in $(pgrep -P "$1"); do tree_pids "$c"; done; }
cpu_secs() {
  local ticks=0 p root
  for p in $(for root in "$@"; do tree_pids "$root"; done); do
    ticks=$((ticks + $(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}' || echo 0)))
  done
  awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.3f", t / hz}'
}
# Microseconds of CPU per call: CPU seconds, calls per second, seconds.
per_call() { awk -v c="$1" -v r="$2" -v s="$3" 'BEGIN {printf "%.0f", 1e6 * c / (r * s)}'; }
audited() { sqlite3 "$work/s.db" "SELECT count(*) FROM audit_events WHERE method = 'tools/call'" 2>/dev/null || echo 0; }
audited_before="$(audited)" answered=0
for conns in $conns_list; do
  for r in $(seq "$rounds"); do
    alone="$(node "$here/stdio_pipelined.mjs" "$conns" "$secs" echo '{"message":"hi"}' -- node "$MCPCTL_PEER_EVERYTHING" stdio)"
    up="$(awk '{print $2}' <<<"$alone")"
    alone_cpu="$(awk -v hz="$(getconf CLK_TCK)" '{for (i = 1; i < NF; i++) {if ($i == "calls") n = $(i+1); if ($i == "client_us") c = $(i+1); if ($i == "server_ticks") s = $(i+1)}}
      END {printf "client %.0f, server %.0f", c / n, 1e6 * s / hz / n}' <<<"$alone")"
    for via in ${VIA:-direct}; do
      origin="" as="$token" expect=""
      [ "$via" = rmcp ] && origin="http://127.0.0.1:9"
      [ "$via" = denied ] && as="$token_denied" expect="may not use"
      upstream_pids="$(pgrep -P "$serve" | tr '\n' ' ')"
      # shellcheck disable=SC2086 # a list of pids
      serve_before="$(cpu_secs "$serve")" up_before="$(cpu_secs $upstream_pids)"
      out="$(MCPCTL_BENCH_TOKEN="$as" MCPCTL_BENCH_ORIGIN="$origin" MCPCTL_BENCH_EXPECT="$expect" /usr/bin/time -f "%U %S" -o "$work/wrk.cpu" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$here/throughput.lua" "$url")"
      # shellcheck disable=SC2086
      serve_after="$(cpu_secs "$serve")" up_after="$(cpu_secs $upstream_pids)"
      gw="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
      up_cpu="$(awk -v a="$up_before" -v b="$up_after" 'BEGIN {print b - a}')"
      serve_cpu="$(awk -v a="$serve_before" -v b="$serve_after" -v u="$up_cpu" 'BEGIN {print b - a - u}')"
      cpu="CPU µs/call: alone: $alone_cpu; via gateway: serve $(per_call "$serve_cpu" "$gw" "$secs"), upstream $(per_call "$up_cpu" "$gw" "$secs"), wrk $(per_call "$(awk '{print $1 + $2}' "$work/wrk.cpu")" "$gw" "$secs")"
      p50="$(awk '$1=="50%" {print $2}' <<<"$out")" p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
      ratio="$(awk -v g="$gw" -v u="$up" 'BEGIN {printf "%.0f", 100 * g / u}')"
      answered=$((answered + $(awk '/mcp_ok/ {print $2 + $4}' <<<"$out")))
      echo "c=$conns round $r: upstream alone $alone | gateway ($via) $gw calls/s p50 $p50 p99 $p99 $(grep mcp_ok <<<"$out") | gateway/alone $ratio % | $cpu"
    done
  done
done
sleep 1  # the audit writer batches for up to 200 ms
echo "audited tools/call: $(( $(audited) - audited_before )) of $answered answered (sqlite3 on the serve database)"
if [ -n "${PROFILE:-}" ]; then
  echo "serve pid $serve, url $url, token $token; Ctrl-C ends"
  wait $serve
fi
