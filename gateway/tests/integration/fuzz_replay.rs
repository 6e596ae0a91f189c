//! The fuzz targets' seeds replayed as a normal test: every seed of `fuzz/corpus/<target>/` (and,
//! for the YAML loader, every YAML file of `examples/` and `schema/tests/fixtures/`) goes
//! through the same target function the fuzzer runs (`fuzz/targets/*.rs`), oracles included.
//! Crashes the fuzzer finds are added to the corpus, so they stay fixed.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/targets/jsonrpc.rs"]
mod jsonrpc;
#[path = "../../../fuzz/targets/token.rs"]
mod token;
#[path = "../../../fuzz/targets/webhook.rs"]
mod webhook;
#[path = "../../../fuzz/targets/yaml_load.rs"]
mod yaml_load;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file under `dir` (recursively) whose name ends with one of `ends` (any: `&[]`).
fn files_under(dir: &Path, ends: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files_under(&p, ends, out);
        } else if ends.is_empty() || ends.iter().any(|x| p.to_string_lossy().ends_with(x)) {
            out.push(p);
        }
    }
}

fn replay(target: &str, run: fn(&[u8]), extra: &[(&str, &[&str])]) -> usize {
    let mut seeds = Vec::new();
    files_under(&root().join("fuzz/corpus").join(target), &[], &mut seeds);
    for (dir, ends) in extra {
        files_under(&root().join(dir), ends, &mut seeds);
    }
    for s in &seeds {
        let bytes = std::fs::read(s).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "fuzz target {target} fails on seed {}", s.display());
    }
    seeds.len()
}

#[test]
fn every_fuzz_seed_passes_its_target() {
    let yaml = replay("yaml_load", yaml_load::run, &[("examples", &[".yaml", ".yml"]), ("schema/tests/fixtures", &[".yaml", ".yml"])]);
    let counts = [
        ("yaml_load", yaml),
        ("jsonrpc", replay("jsonrpc", jsonrpc::run, &[])),
        ("token", replay("token", token::run, &[])),
        ("webhook", replay("webhook", webhook::run, &[])),
    ];
    for (target, n) in counts {
        assert!(n >= 5, "target {target} has only {n} seeds");
    }
    assert!(yaml >= 20, "the YAML loader replays only {yaml} seeds");
}
