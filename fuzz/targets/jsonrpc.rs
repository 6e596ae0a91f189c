//! Fuzz target: the gateway's front-door checks of a JSON-RPC POST body (`gateway/src/mcp/shape.rs`
//! and the endpoint's tree-based check). Oracle: no panic, and whatever the fast look accepts the
//! tree-based check accepts too (the guarantee of `shape`).

/// One body through both checks.
pub fn run(data: &[u8]) {
    let (fast, tree) = mcpctl_gateway::mcp::body_checks(data);
    assert!(!fast || tree, "the fast look accepted a body the tree check refuses: {:?}", String::from_utf8_lossy(data));
}
