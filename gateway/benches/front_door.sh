#!/usr/bin/env bash
# Memory of the gateway's front door under hostile callers (tracker issue 8, docs/security.md
# "Gateway front door"): RSS of a real `mcpctl serve` of examples/homelab before and after
# 20,000 requests with unknown tokens, after 1,000 tools/call with 1 MiB names (refused at the
# front door) and 1,000 with distinct unknown 500-byte names (audited, counted as `(unknown)`),
# and the size of /metrics after each step.
#
#   gateway/benches/front_door.sh [path/to/mcpctl]    # default: $CARGO_TARGET_DIR/debug/mcpctl
#
# Needs curl and python3. Runs `serve --runtime none` (no
# upstream processes) with `--rate-limit off` so every request reaches the code under test.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/mcpctl}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT

cp -r "$root/examples/homelab" "$tmp/repo"
git -C "$tmp/repo" init -q -b main && git -C "$tmp/repo" add -A && git -C "$tmp/repo" -c user.name=b -c user.email=b@b commit -qm homelab
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" -C "$tmp/repo" serve --database-url "sqlite://$tmp/db.sqlite" --runtime none --interval 1h \
  --listen "127.0.0.1:$port" --rate-limit off >"$tmp/serve.log" 2>&1 &
pid=$!
base="http://127.0.0.1:$port"
url="$base/projects/homelab/mcp"
for _ in $(seq 100); do curl -sf "$base/healthz" >/dev/null && break; sleep 0.2; done
rss() { awk '/VmRSS/ {printf "%.1f MB", $2/1024}' "/proc/$pid/status"; }
msize() { curl -s "$base/metrics" | wc -c | awk '{printf "%d bytes", $1}'; }
token=mcpctl_pat_demo_homelab_0123456789abcdef
hdr=(-H 'content-type: application/json' -H 'accept: application/json, text/event-stream')

# Warm up: one session, one known call path, one scrape.
sid=$(curl -s -D - -o /dev/null "${hdr[@]}" -H "authorization: Bearer $token" "$url" \
  -d '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"b","version":"1"}}}' \
  | awk -F': ' 'tolower($1)=="mcp-session-id" {print $2}' | tr -d '\r')
curl -s -o /dev/null "${hdr[@]}" -H "authorization: Bearer $token" -H "mcp-session-id: $sid" -H 'mcp-protocol-version: 2025-06-18' "$url" \
  -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
msize >/dev/null
echo "start:                                  RSS $(rss), /metrics $(msize)"

# The load: N requests on 4 keep-alive connections; KIND unknown (a new token each) or name
# (tools/call with a distinct LEN-byte name, in the demo token's session).
cat >"$tmp/load.py" <<'PY'
import http.client, os, sys, threading
port, path, n, kind = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
token, sid, size = os.environ.get("TOKEN"), os.environ.get("SID"), int(os.environ.get("LEN", "0"))
statuses = {}
def run(t):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(t, n, 4):
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if kind == "unknown":
            h["Authorization"] = f"Bearer mcpctl_pat_unknown_{i}"
            body = '{"jsonrpc":"2.0","id":1,"method":"tools/list"}'
        else:
            h.update({"Authorization": f"Bearer {token}", "Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-06-18"})
            name = ("x" * (size - 12)) + f"_{i:011d}"
            body = '{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"%s","arguments":{}}}' % (i, name)
        for attempt in range(3):
            try:
                c.request("POST", path, body, h)
                r = c.getresponse(); r.read()
                break
            except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
                # The gateway closes a connection whose body it refused without reading.
                c.close(); c = http.client.HTTPConnection("127.0.0.1", port)
        statuses[r.status] = statuses.get(r.status, 0) + 1
ts = [threading.Thread(target=run, args=(t,)) for t in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
print(" ".join(f"{k}x{v}" for k, v in sorted(statuses.items())))
PY
load() { python3 "$tmp/load.py" "$port" /projects/homelab/mcp "$@"; }

s1=$(load 20000 unknown)
echo "after 20,000 unknown tokens:            RSS $(rss), /metrics $(msize)   (HTTP $s1)"
s2=$(SID=$sid TOKEN=$token LEN=1048576 load 1000 name)
echo "after 1,000 calls with 1 MiB names:     RSS $(rss), /metrics $(msize)   (HTTP $s2)"
s3=$(SID=$sid TOKEN=$token LEN=500 load 1000 name)
sleep 1 # the auditor writes every 200 ms
echo "after 1,000 calls with unknown names:   RSS $(rss), /metrics $(msize)   (HTTP $s3)"
echo "audit rows: $("$bin" --database-url "sqlite://$tmp/db.sqlite" get auditevents --limit 100000 -o json | grep -c '"method"'), longest target: $("$bin" --database-url "sqlite://$tmp/db.sqlite" get auditevents --limit 100000 -o json | python3 -c 'import json,sys; print(max(len(e["target"]) for e in json.load(sys.stdin)))') bytes"
