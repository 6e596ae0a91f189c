#!/usr/bin/env bash
# Soak: a bounded run of CONNS concurrent clients (wrk, stateless 2026-07-28 tools/call of
# server-everything's `echo`, every answer checked by throughput.lua) against one `mcpctl serve`
# (release build), sampling the gateway's RSS from /proc every SAMPLE seconds. After a WARMUP run
# (the allocator reaches its working set), the main run's RSS growth is measured from the first
# sample to the last; the run fails on any error or on RSS growth of 10 % or more.
#
#   source .ci/peers.sh && cargo build --release -p mcpctl && gateway/benches/soak.sh 600
#
# Argument: the duration in seconds (600). Env: CONNS (256), THREADS (wrk threads, 2),
# WARMUP (30 s), SAMPLE (10 s), MCPCTL, RATE_LIMIT (see echo_gateway.sh).
set -euo pipefail
secs="${1:-600}" conns="${CONNS:-256}" threads="${THREADS:-2}" warmup="${WARMUP:-30}" sample="${SAMPLE:-10}"
source "$(dirname "$0")/echo_gateway.sh"
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$serve/status"; }
ulimit -n 65536 2>/dev/null || true
echo "date: $(date -u +%FT%TZ)  duration: ${secs}s (+${warmup}s warm-up)  connections: $conns  wrk threads: $threads  cores: $(nproc)  load: $(cut -d' ' -f1-3 /proc/loadavg)"
MCPCTL_BENCH_TOKEN="$token" wrk -t"$threads" -c"$conns" -d"${warmup}s" -s "$here/throughput.lua" "$url" > "$work/warmup.txt"
echo "warm-up: $(grep mcp_ok "$work/warmup.txt")  RSS $(rss) kB"
: > "$work/rss.txt"
( while kill -0 "$serve" 2>/dev/null; do echo "$(date +%s) $(rss)" >> "$work/rss.txt"; sleep "$sample"; done ) &
sampler=$!
MCPCTL_BENCH_TOKEN="$token" wrk -t"$threads" -c"$conns" -d"${secs}s" --timeout 10s --latency -s "$here/throughput.lua" "$url" > "$work/run.txt" 2> "$work/run.err" || true
echo "$(date +%s) $(rss)" >> "$work/rss.txt"
kill "$sampler" 2>/dev/null || true
cat "$work/run.txt"
cat "$work/run.err" >&2
first="$(head -n1 "$work/rss.txt" | cut -d' ' -f2)" last="$(tail -n1 "$work/rss.txt" | cut -d' ' -f2)"
max="$(cut -d' ' -f2 "$work/rss.txt" | sort -n | tail -n1)" samples="$(wc -l < "$work/rss.txt")"
growth="$(awk -v a="$first" -v b="$last" 'BEGIN {printf "%.1f", 100 * (b - a) / a}')"
ok="$(awk '/^mcp_ok/ {print $2}' "$work/run.txt")" failed="$(awk '/^mcp_ok/ {print $4}' "$work/run.txt")"
sock="$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' "$work/run.txt")"
non2xx="$(awk '/Non-2xx/ {print $5}' "$work/run.txt")"
p50="$(awk '$1=="50%" {print $2}' "$work/run.txt")" p99="$(awk '$1=="99%" {print $2}' "$work/run.txt")"
rps="$(awk '/Requests\/sec/ {print $2}' "$work/run.txt")"
echo "soak: ${secs}s c=$conns  calls ok $ok failed $failed socket errors ${sock:-0} non-2xx ${non2xx:-0}  $rps calls/s  p50 $p50 p99 $p99  RSS first ${first} kB last ${last} kB max ${max} kB ($samples samples) growth ${growth} %"
[ "${failed:-1}" = 0 ] && [ "${sock:-0}" = 0 ] && [ -z "$non2xx" ] || { echo "soak FAILED: errors" >&2; exit 1; }
awk -v g="$growth" 'BEGIN {exit !(g < 10)}' || { echo "soak FAILED: RSS grew ${growth} %" >&2; exit 1; }
echo "soak passed"
