//! Benchmark: load + validate + plan 10,000 resources against a store holding them with 1%
//! changed, and applying 10,000 creates to a fresh SQLite file.
//!
//! `cargo bench -p mcpctl-reconciler --bench plan_apply` (add `-- --quick` for fewer rounds).
//! Prints the median and min of each measurement.

use std::time::{Duration, Instant};

use mcpctl_reconciler::{plan, DeployMeta, Store};
use schema::SourceFile;

const RESOURCES: usize = 10_000;

/// A repo of `RESOURCES` resources in 100 files: one project, servers, users, prompts.
/// `variant` changes the spec of every 100th resource (1%).
fn repo(variant: u32) -> Vec<SourceFile> {
    let mut files = vec![String::new(); 100];
    let mut push = |i: usize, kind: &str, name: String, project: Option<&str>, spec: String| {
        let project = project.map(|p| format!("\n  project: {p}")).unwrap_or_default();
        files[i % 100] += &format!(
            "apiVersion: mcpctl.io/v1\nkind: {kind}\nmetadata:\n  name: {name}{project}\n  labels: {{tier: bench}}\nspec:\n{spec}---\n"
        );
    };
    push(0, "Project", "bench".into(), None, "  description: benchmark\n".into());
    for i in 1..RESOURCES {
        let v = if i % 100 == 0 { variant } else { 0 };
        match i % 3 {
            0 => push(
                i,
                "Server",
                format!("srv-{i}"),
                None,
                format!("  command: npx\n  args: [\"-y\", \"pkg-{i}\", \"--v{v}\"]\n  env:\n    - {{name: LOG, value: info}}\n"),
            ),
            1 => push(i, "User", format!("user-{i}"), None, format!("  email: user{i}-{v}@example.com\n  displayName: User {i}\n")),
            _ => push(
                i,
                "Prompt",
                format!("prompt-{i}"),
                Some("bench"),
                format!("  content: |\n    Rule {i} version {v}.\n    Be careful.\n  priority: {}\n", i % 7),
            ),
        }
    }
    files.into_iter().enumerate().map(|(i, t)| SourceFile::new(format!("f{i:03}.yaml"), t)).collect()
}

fn stats(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (samples[samples.len() / 2], samples[0])
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let rounds = if quick { 3 } else { 10 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let meta = DeployMeta { revision: "bench".into(), actor: "bench".into(), message: None, commit: None };

    // Apply 10,000 creates to a fresh SQLite file.
    let base = schema::check(&repo(0)).expect("bench repo is valid");
    assert_eq!(base.len(), RESOURCES);
    let mut apply_samples = Vec::new();
    for round in 0..rounds.min(5) {
        let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join(format!("apply-{round}.db")));
        let store = rt.block_on(Store::connect(&url)).unwrap();
        let p = plan(&base, &[], "bench");
        let t = Instant::now();
        rt.block_on(store.apply(&p, &meta, &|_, _| {})).unwrap();
        apply_samples.push(t.elapsed());
    }

    // Store holding the repo with 1% different.
    let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join("plan.db"));
    let store = rt.block_on(Store::connect(&url)).unwrap();
    let p = plan(&schema::check(&repo(1)).unwrap(), &[], "old");
    rt.block_on(store.apply(&p, &meta, &|_, _| {})).unwrap();
    let files = repo(0);
    let mut plan_samples = Vec::new();
    let mut changes = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        let desired = schema::check(&files).unwrap();
        let stored = rt.block_on(store.resources()).unwrap();
        let p = plan(&desired, &stored, "new");
        plan_samples.push(t.elapsed());
        changes = p.changes.len();
    }
    assert_eq!(changes, (1..RESOURCES).filter(|i| i % 100 == 0).count(), "1% changed");

    let (pm, pmin) = stats(plan_samples);
    let (am, amin) = stats(apply_samples);
    println!("| measurement | median | min | target |");
    println!("|---|---|---|---|");
    println!(
        "| load + validate + plan, {RESOURCES} resources, {changes} changed (SQLite) | {:.1} ms | {:.1} ms | < 300 ms |",
        pm.as_secs_f64() * 1e3,
        pmin.as_secs_f64() * 1e3
    );
    println!(
        "| apply {RESOURCES} creates (SQLite file, one transaction) | {:.1} ms | {:.1} ms | < 2000 ms |",
        am.as_secs_f64() * 1e3,
        amin.as_secs_f64() * 1e3
    );
}
