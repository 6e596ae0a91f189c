#!/usr/bin/env bash
# A slow upstream (mcp-server-time, Python, stdio) with `replicas: 2` vs one process alone, through
# one `mcpctl serve`, in the same run: wrk with many concurrent HTTP clients sending stateless
# 2026-07-28 tools/call (gateway/benches/replicas.lua), alternating the two projects.
#
#   source .ci/peers.sh && cargo build --release -p mcpctl && gateway/benches/replicas.sh
#
# Env: MCPCTL (binary, default target/release/mcpctl), CONNS (64), SECS (10), ROUNDS (2).
# `--rate-limit off`: the default per-token limit (50/s) would answer most calls with 429.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
mcpctl="${MCPCTL:-${CARGO_TARGET_DIR:-$here/../../target}/release/mcpctl}"
conns="${CONNS:-64}" secs="${SECS:-10}" rounds="${ROUNDS:-2}"
: "${MCPCTL_PEER_TIME:?run source .ci/peers.sh first}"
work="$(mktemp -d)"
token_one="mcpctl_pat_bench_one_0123456789abcdef" token_two="mcpctl_pat_bench_two_0123456789abcdef"
hash_one="sha256:$(printf %s "$token_one" | sha256sum | cut -d' ' -f1)" hash_two="sha256:$(printf %s "$token_two" | sha256sum | cut -d' ' -f1)"
mkdir -p "$work/repo"
cat > "$work/repo/bench.yaml" <<YAML
apiVersion: mcpctl.io/v1
kind: Server
metadata: {name: time1}
spec: {command: "$MCPCTL_PEER_TIME"}
---
apiVersion: mcpctl.io/v1
kind: Server
metadata: {name: time2}
spec: {command: "$MCPCTL_PEER_TIME", replicas: 2}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {name: one}
spec: {servers: [time1], prefixTools: false}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {name: two}
spec: {servers: [time2], prefixTools: false}
---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {name: bench, project: one}
spec: {hash: "$hash_one", prefix: mcpctl_pat_b, bindings: [{role: run, resource: servers}]}
---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {name: bench, project: two}
spec: {hash: "$hash_two", prefix: mcpctl_pat_b, bindings: [{role: run, resource: servers}]}
YAML
git -C "$work/repo" init -q -b main && git -C "$work/repo" add -A && git -C "$work/repo" -c user.name=b -c user.email=b@b commit -qm bench
port=$((20000 + RANDOM % 20000))
MCPCTL_LOG_DIR="$work/logs" "$mcpctl" serve -C "$work/repo" --database-url "sqlite://$work/s.db" --listen "127.0.0.1:$port" --cache-dir "$work/cache" \
  --rate-limit off > "$work/serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null; wait $serve 2>/dev/null; rm -rf "$work"' EXIT
tok() { if [ "$1" = one ]; then echo "$token_one"; else echo "$token_two"; fi; }
call() {
  curl -s -X POST "http://127.0.0.1:$port/projects/$1/mcp" -H "authorization: Bearer $(tok "$1")" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: get_current_time' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_current_time","arguments":{"timezone":"UTC"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}'
}
# Ready: both projects answer, and both replicas of time2 are connected.
for _ in $(seq 120); do
  if call one | grep -q '"result"' && call two | grep -q '"result"' \
     && curl -s -H "authorization: Bearer $token_two" "http://127.0.0.1:$port/api/v1/status" | grep -q '"replicas":\[{"replica":0,"connected":true[^]]*"replica":1,"connected":true'; then
    break
  fi
  sleep 0.5
done
echo "date: $(date -u +%FT%TZ)  connections: $conns  duration: ${secs}s x $rounds rounds per project  cores: $(nproc)"
for r in $(seq "$rounds"); do
  for p in one two; do
    out="$(MCPCTL_BENCH_TOKEN="$(tok "$p")" wrk -t2 -c"$conns" -d"${secs}s" --latency -s "$here/replicas.lua" "http://127.0.0.1:$port/projects/$p/mcp")"
    rps="$(awk '/Requests\/sec/ {print $2}' <<<"$out")"
    p50="$(awk '$1=="50%" {print $2}' <<<"$out")"
    mcp="$(grep mcp_ok <<<"$out")"
    echo "round $r project $p: $rps req/s  p50 $p50  $mcp"
  done
done
curl -s -H "authorization: Bearer $token_two" "http://127.0.0.1:$port/api/v1/status" | python3 -c 'import json,sys; d=json.load(sys.stdin); [print(u["server"], u["health"], [(r["replica"], r["connected"]) for r in u.get("replicas", [])]) for u in d["upstreams"]]'
