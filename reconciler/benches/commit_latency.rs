//! Benchmark: commit-to-applied latency of the reconcile loop, 1,000 and 10,000 resources in
//! files of 100 resources; each commit changes one resource, so one file.
//!
//! Two modes: a local repository watched with notify, and a remote (bare repository over
//! `file://`) whose push is followed by a webhook-style poke. The poll interval is one hour, so
//! only the watcher or the poke can trigger. `cargo bench -p mcpctl-reconciler --bench commit_latency`
//! (`-- --quick` for fewer commits). Prints p50 / p99 / max.

use std::path::Path;
use std::time::{Duration, Instant};

use mcpctl_reconciler::{controller, Reconciler, RepoSource, Settings, Store};

/// Resources per file.
const PER_FILE: usize = 100;

fn git(dir: &Path, args: &[&str]) -> String {
    let o = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .unwrap();
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Write file number `file` of the repo, where resource `changed` (if in it) has `version`.
fn write_file(work: &Path, file: usize, changed: usize, version: usize) {
    let mut s = String::new();
    for i in file * PER_FILE..(file + 1) * PER_FILE {
        let v = if i == changed { version } else { 0 };
        s += &format!(
            "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {{name: user-{i}}}\nspec: {{email: \"u{i}-{v}@example.com\"}}\n---\n"
        );
    }
    std::fs::write(work.join(format!("users/{file:04}.yaml")), s).unwrap();
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn wait_deployed(store: &Store, sha: &str) {
    loop {
        if store.last_good_deploy().await.unwrap().is_some_and(|d| d.revision == sha) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn measure(remote: bool, resources: usize, commits: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir_all(work.join("users")).unwrap();
    git(&work, &["init", "-q", "-b", "main"]);
    for f in 0..resources / PER_FILE {
        write_file(&work, f, usize::MAX, 0);
    }
    git(&work, &["add", "-A"]);
    git(&work, &["commit", "-q", "-m", "initial"]);
    let source = if remote {
        let bare = dir.path().join("bare.git");
        git(dir.path(), &["clone", "-q", "--bare", work.to_str().unwrap(), bare.to_str().unwrap()]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        RepoSource::Remote(format!("file://{}", bare.display()))
    } else {
        RepoSource::Local(work.clone())
    };
    let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join("state.db"));
    let store = Store::connect(&url).await.unwrap();
    let settings = Settings {
        source,
        branch: "main".into(),
        cache_dir: dir.path().join("cache"),
        interval: Duration::from_secs(3600),
        self_heal: true,
        allowed_signers: None,
        allow_empty: false,
    };
    let r = Reconciler::new(store.clone(), settings).await.unwrap();
    let (handle, pokes) = controller::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(r.run(pokes, async move {
        let _ = stopped.await;
    }));
    let first = git(&work, &["rev-parse", "HEAD"]);
    wait_deployed(&store, &first).await;
    let mut samples = Vec::new();
    for i in 1..=commits {
        // A different resource (so file) each time, spread over the repo.
        let changed = (i * 7919) % resources;
        write_file(&work, changed / PER_FILE, changed, i);
        git(&work, &["add", "-A"]);
        git(&work, &["commit", "-q", "-m", &format!("change {i}")]);
        if remote {
            git(&work, &["push", "-q", "origin", "main"]);
        }
        let sha = git(&work, &["rev-parse", "HEAD"]);
        let t = Instant::now();
        if remote {
            handle.poke();
        }
        wait_deployed(&store, &sha).await;
        samples.push(t.elapsed());
    }
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    samples.sort();
    samples
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let commits = if quick { 10 } else { 50 };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("| trigger ({commits} commits, one file of {PER_FILE} resources changed each) | resources | p50 | p99 | max |");
    println!("|---|---|---|---|---|");
    for resources in [1_000, 10_000] {
        for (name, remote) in [("local repo, notify watcher", false), ("remote (file://), push + poke", true)] {
            let s = rt.block_on(measure(remote, resources, commits));
            let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1e3);
            println!("| {name} | {resources} | {} | {} | {} |", ms(percentile(&s, 0.5)), ms(percentile(&s, 0.99)), ms(*s.last().unwrap()));
        }
    }
}
