//! libFuzzer entry of the `yaml_load` target (body in `fuzz/targets/yaml_load.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mcpctl_fuzz::yaml_load::run(data));
