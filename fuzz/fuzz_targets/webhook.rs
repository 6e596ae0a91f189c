//! libFuzzer entry of the `webhook` target (body in `fuzz/targets/webhook.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpctl_fuzz::webhook::run(data));
