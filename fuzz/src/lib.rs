//! The fuzz targets' bodies, one module per target (`fuzz/targets/*.rs`); the same files replay
//! their seed corpora as a normal test in the gateway's suite (`gateway/tests/integration/fuzz_replay.rs`).

#[path = "../targets/jsonrpc.rs"]
pub mod jsonrpc;
#[path = "../targets/token.rs"]
pub mod token;
#[path = "../targets/webhook.rs"]
pub mod webhook;
#[path = "../targets/yaml_load.rs"]
pub mod yaml_load;
