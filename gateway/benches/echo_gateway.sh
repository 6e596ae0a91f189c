# Sourced by the gateway's load scripts (throughput.sh, soak.sh): starts one `mcpctl serve`
# (release build, SQLite, local runtime) in front of server-everything's `echo` over stdio, waits
# until a stateless 2026-07-28 tools/call answers, and sets `url`, `token` (and `token_denied`, which
# may not run `echo`), `serve` (its pid) and
# `work` (a temp dir removed on exit). Needs MCPCTL_PEER_EVERYTHING (source .ci/peers.sh).
# Env: MCPCTL (binary, default $CARGO_TARGET_DIR/release/mcpctl), RATE_LIMIT (off).
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mcpctl="${MCPCTL:-${CARGO_TARGET_DIR:-$here/../../target}/release/mcpctl}"
: "${MCPCTL_PEER_EVERYTHING:?run source .ci/peers.sh first}"
work="$(mktemp -d)"
token="mcpctl_pat_bench_echo_0123456789abcdef"
hash="sha256:$(printf %s "$token" | sha256sum | cut -d' ' -f1)"
# A token that may not run `echo`: its calls are refused by RBAC (audited), with no upstream hop.
token_denied="mcpctl_pat_bench_deny_0123456789abcdef"
hash_denied="sha256:$(printf %s "$token_denied" | sha256sum | cut -d' ' -f1)"
mkdir -p "$work/repo"
cat > "$work/repo/bench.yaml" <<YAML
apiVersion: mcpctl.io/v1
kind: Server
metadata: {name: everything}
spec: {command: node, args: ["$MCPCTL_PEER_EVERYTHING", stdio]}
---
apiVersion: mcpctl.io/v1
kind: Project
metadata: {name: bench}
spec: {servers: [everything], prefixTools: false}
---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {name: bench, project: bench}
spec: {hash: "$hash", prefix: mcpctl_pat_b, bindings: [{role: run, resource: servers}]}
---
apiVersion: mcpctl.io/v1
kind: McpToken
metadata: {name: bench-sum-only, project: bench}
spec: {hash: "$hash_denied", prefix: mcpctl_pat_b, bindings: [{role: run, resource: servers, name: everything/get-sum}]}
YAML
git -C "$work/repo" init -q -b main && git -C "$work/repo" add -A && git -C "$work/repo" -c user.name=b -c user.email=b@b commit -qm bench
port=$((20000 + RANDOM % 20000))
MCPCTL_LOG_DIR="$work/logs" "$mcpctl" serve -C "$work/repo" --database-url "sqlite://$work/s.db" --listen "127.0.0.1:$port" \
  --cache-dir "$work/cache" --rate-limit "${RATE_LIMIT:-off}" > "$work/serve.log" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null; wait $serve 2>/dev/null; rm -rf "$work"' EXIT
url="http://127.0.0.1:$port/projects/bench/mcp"
call() {
  curl -s -X POST "$url" -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' -H 'mcp-protocol-version: 2026-07-28' -H 'mcp-method: tools/call' -H 'mcp-name: echo' \
    -d '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"curl","version":"1"}}}}'
}
for _ in $(seq 120); do call | grep -q 'Echo: hi' && break; sleep 0.5; done
call | grep -q 'Echo: hi' || { echo "the gateway does not answer echo:"; call; cat "$work/serve.log"; exit 1; }
