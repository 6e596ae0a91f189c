//! libFuzzer entry of the `token` target (body in `fuzz/targets/token.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpctl_fuzz::token::run(data));
