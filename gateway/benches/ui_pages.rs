//! Server time of each web UI page with 10,000 resources and 1,000,000 audit events.
//!
//!     cargo bench -p mcpctl-gateway --bench ui_pages                          # SQLite
//!     MCPCTL_BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/uibench \
//!       cargo bench -p mcpctl-gateway --bench ui_pages                        # an empty Postgres database
//!
//! The store gets one project with 20 served servers, 9,998 servers in all, a viewer McpToken
//! (`view` on everything, `audit`), and 1,000,000 audit events over the last 24 hours (20
//! servers, 3 tokens, 1 % errors) written through `Store::insert_audit` (so the per-minute
//! aggregates are maintained as in production). The gateway serves on 127.0.0.1; each page is
//! fetched [`N`] times one after another with the token as a bearer, and the p50 and max of the
//! request time (loopback HTTP included) are printed. `BENCH_EVENTS` overrides the event count.

use std::time::{Duration, Instant};

use mcpctl_gateway::AppState;
use reconciler::audit::AuditEvent;
use reconciler::{plan, DeployMeta, Store};

const N: usize = 30;
const TOKEN: &str = "mcpctl_pat_bench_0123456789abcdef";
const SERVERS: usize = 9_998;
const SERVED: usize = 20;
const BATCH: usize = 5_000;

fn yaml() -> String {
    let served: Vec<String> = (0..SERVED).map(|i| format!("srv-{i:05}")).collect();
    let mut y = format!(
        "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {{name: lab}}\nspec: {{description: bench, servers: [{}]}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: McpToken\nmetadata: {{name: viewer, project: lab}}\nspec:\n  hash: \"{}\"\n  prefix: mcpctl_pat_b\n  bindings: [{{role: view, resource: \"*\"}}, {{role: run, action: audit}}]\n",
        served.join(", "),
        mcpctl_gateway::auth::token_hash(TOKEN)
    );
    for i in 0..SERVERS {
        y += &format!(
            "---\napiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: srv-{i:05}, project: lab}}\nspec: {{description: \"bench server {i}\", command: npx, args: [\"-y\", \"pkg-{i}\"]}}\n"
        );
    }
    y
}

fn events(from: usize, n: usize, total: usize) -> Vec<AuditEvent> {
    let now = chrono::Utc::now();
    (from..from + n)
        .map(|i| {
            let back = 86_400.0 * (1.0 - i as f64 / total as f64);
            AuditEvent {
                id: 0,
                at: (now - chrono::Duration::milliseconds((back * 1000.0) as i64)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                project: "lab".into(),
                token: ["viewer", "ci", "alice"][i % 3].into(),
                token_prefix: "0123456789ab".into(),
                session: "-".into(),
                method: "tools/call".into(),
                server: format!("srv-{:05}", i % SERVED),
                target: format!("tool-{}", i % 7),
                duration_us: 300 + (i % 97) as i64 * 150,
                outcome: if i % 100 == 0 { "error".into() } else { "ok".into() },
                error: (i % 100 == 0).then(|| "upstream failed".to_string()),
                revision: "bench".into(),
                thread: None,
            }
        })
        .collect()
}

fn main() {
    let total: usize = std::env::var("BENCH_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = std::env::var("MCPCTL_BENCH_DATABASE_URL").unwrap_or_else(|_| reconciler::store::sqlite_url(&dir.path().join("b.db")));
    rt.block_on(async move {
        let store = Store::connect(&url).await.unwrap();
        let t = Instant::now();
        let desired = schema::check(&[schema::SourceFile::new("bench.yaml", yaml())]).expect("valid bench repo");
        let p = plan(&desired, &store.resources().await.unwrap(), "bench");
        store
            .apply(&p, &DeployMeta { revision: "bench".into(), actor: "bench".into(), message: None, commit: None }, &|_, _| {})
            .await
            .unwrap();
        println!("applied {} resources in {:.1} s", desired.len(), t.elapsed().as_secs_f64());
        let t = Instant::now();
        for from in (0..total).step_by(BATCH) {
            store.insert_audit(&events(from, BATCH.min(total - from), total)).await.unwrap();
        }
        println!("inserted {total} audit events in {:.1} s ({:.0}/s)", t.elapsed().as_secs_f64(), total as f64 / t.elapsed().as_secs_f64());
        let mid = store.audit_events(&reconciler::audit::AuditFilter { limit: 1, ..Default::default() }).await.unwrap()[0].id / 2;

        let state = AppState::new(store.clone());
        state.reload().await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(mcpctl_gateway::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().unwrap();
        let pages = [
            "/ui".to_string(),
            "/ui/deploys".into(),
            "/ui/resources?kind=servers".into(),
            "/ui/resources?kind=servers&q=srv-0999".into(),
            "/ui/resources?kind=servers&start=9000".into(),
            "/ui/resources/servers/srv-04242?project=lab".into(),
            "/ui/projects".into(),
            "/ui/projects/lab".into(),
            "/ui/projects/lab?window=1440".into(),
            "/ui/agents".into(),
            "/ui/tokens".into(),
            "/ui/audit".into(),
            "/ui/audit?outcome=error".into(),
            "/ui/audit?server=srv-00003&tool=tool-3".into(),
            "/ui/audit?token=alice&outcome=error".into(),
            format!("/ui/audit?before={mid}"),
            "/ui/threads".into(),
        ];
        println!("{:<48} {:>9} {:>9} {:>9}", "page", "p50 ms", "max ms", "KiB");
        for page in &pages {
            let mut times = Vec::with_capacity(N);
            let mut size = 0;
            for _ in 0..N {
                let t = Instant::now();
                let r = http.get(format!("{base}{page}")).bearer_auth(TOKEN).send().await.unwrap();
                assert_eq!(r.status(), 200, "{page}");
                size = r.bytes().await.unwrap().len();
                times.push(t.elapsed());
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!("{page:<48} {:>9.1} {:>9.1} {:>9.0}", ms(times[N / 2]), ms(times[N - 1]), size as f64 / 1024.0);
        }
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    });
}
