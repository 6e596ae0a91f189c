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
set -euo pipefail
conns_list="${CONNS:-16 64}" secs="${SECS:-10}" rounds="${ROUNDS:-2}" threads="${THREADS:-2}"
source "$(dirname "$0")/echo_gateway.sh"
echo "date: $(date -u +%FT%TZ)  duration: ${secs}s  rounds: $rounds  wrk threads: $threads  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
audited() { sqlite3 "$work/s.db" "SELECT count(*) FROM audit_events WHERE method = 'tools/call'" 2>/dev/null || echo 0; }
audited_before="$(audited)" answered=0
for conns in $conns_list; do
  for r in $(seq "$rounds"); do
    alone="$(node "$here/stdio_pipelined.mjs" "$conns" "$secs" echo '{"message":"hi"}' -- node "$MCPCTL_PEER_EVERYTHING" stdio)"
    up="$(awk '{print $2}' <<<"$alone")"
    for via in ${VIA:-direct}; do
      origin="" as="$token" expect=""
      [ "$via" = rmcp ] && origin="http://127.0.0.1:9"
      [ "$via" = denied ] && as="$token_denied" expect="may not use"
      out="$(MCPCTL_BENCH_TOKEN="$as" MCPCTL_BENCH_ORIGIN="$origin" MCPCTL_BENCH_EXPECT="$expect" wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -s "$here/throughput.lua" "$url")"
      gw="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
      p50="$(awk '$1=="50%" {print $2}' <<<"$out")" p99="$(awk '$1=="99%" {print $2}' <<<"$out")"
      ratio="$(awk -v g="$gw" -v u="$up" 'BEGIN {printf "%.0f", 100 * g / u}')"
      answered=$((answered + $(awk '/mcp_ok/ {print $2 + $4}' <<<"$out")))
      echo "c=$conns round $r: upstream alone $alone | gateway ($via) $gw calls/s p50 $p50 p99 $p99 $(grep mcp_ok <<<"$out") | gateway/alone $ratio %"
    done
  done
done
sleep 1  # the audit writer batches for up to 200 ms
echo "audited tools/call: $(( $(audited) - audited_before )) of $answered answered (sqlite3 on the serve database)"
if [ -n "${PROFILE:-}" ]; then
  echo "serve pid $serve, url $url, token $token; Ctrl-C ends"
  wait $serve
fi
