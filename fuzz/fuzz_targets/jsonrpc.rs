//! libFuzzer entry of the `jsonrpc` target (body in `fuzz/targets/jsonrpc.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpctl_fuzz::jsonrpc::run(data));
