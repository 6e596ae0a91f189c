//! What recording token usage adds to a request: `UsageRecorder::touch` against
//! `TokenIndex::authenticate` (the lookup every authenticated request already pays), one thread
//! and two threads touching the same token, with the writer task running.
//!
//!   cargo bench -p mcpctl-gateway --bench token_usage

use std::sync::Arc;
use std::time::Instant;

use mcpctl_gateway::auth::{token_hash, TokenIndex};
use mcpctl_gateway::usage::UsageRecorder;

const N: u32 = 1_000_000;

fn main() {
    let raw = "mcpctl_pat_bench_0123456789abcdef";
    let yaml = format!(
        "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{}}\n---\napiVersion: mcpctl.io/v1\nkind: McpToken\nmetadata: {{name: bench, project: lab}}\nspec:\n  hash: \"{}\"\n  prefix: mcpctl_pat_b\n  bindings: [{{role: run, resource: servers}}]\n",
        token_hash(raw)
    );
    let state = schema::check(&[schema::SourceFile::new("b.yaml", yaml)]).expect("valid");
    let index = TokenIndex::build(&state);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(reconciler::Store::connect(&reconciler::store::sqlite_url(&dir.path().join("b.db")))).unwrap();
    let rec = rt.block_on(async { UsageRecorder::start(store.clone()) });
    let caller = index.authenticate(Some(raw)).unwrap();

    let t = Instant::now();
    for _ in 0..N {
        std::hint::black_box(index.authenticate(std::hint::black_box(Some(raw))).unwrap());
    }
    let auth_ns = t.elapsed().as_nanos() as f64 / f64::from(N);

    let t = Instant::now();
    for _ in 0..N {
        rec.touch(std::hint::black_box(&caller));
    }
    let touch_ns = t.elapsed().as_nanos() as f64 / f64::from(N);

    let shared = Arc::new(caller);
    let t = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (rec, c) = (rec.clone(), shared.clone());
            std::thread::spawn(move || (0..N / 2).for_each(|_| rec.touch(&c)))
        })
        .collect();
    threads.into_iter().for_each(|h| h.join().unwrap());
    let contended_ns = t.elapsed().as_nanos() as f64 / f64::from(N);

    rt.block_on(rec.flush());
    let uses = rt.block_on(store.token_usage()).unwrap()[&token_hash(raw)].uses;
    println!("authenticate (per request, before this change): {auth_ns:.0} ns");
    println!("touch, 1 thread: {touch_ns:.0} ns");
    println!("touch, 2 threads on one token: {contended_ns:.0} ns per touch (wall time / touches)");
    println!("uses written: {uses} (expected {})", 2 * N);
}
