//! Builders and real databases for the reconciler's integration tests.

use mcpctl_reconciler::Store;
use schema::{DesiredState, SourceFile};

/// YAML of a resource, built from parts (kind, name, optional project, spec as flow YAML).
pub fn doc(kind: &str, name: &str, project: Option<&str>, spec: &str) -> String {
    let project = project.map(|p| format!(", project: {p}")).unwrap_or_default();
    format!("apiVersion: mcpctl.io/v1\nkind: {kind}\nmetadata: {{name: {name}{project}}}\nspec: {spec}\n---\n")
}

/// Validate YAML text as a one-file repo.
pub fn state(yaml: &str) -> DesiredState {
    schema::check(&[SourceFile::new("repo.yaml", yaml)]).unwrap_or_else(|d| panic!("{d}\n{yaml}"))
}

/// A fresh SQLite database in a temp dir (kept alive by the returned guard).
pub async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = mcpctl_reconciler::store::sqlite_url(&dir.path().join("test.db"));
    (Store::connect(&url).await.unwrap(), dir)
}

/// A fresh Postgres database when `MCPCTL_TEST_DATABASE_URL` is set (else `None`: the test is
/// skipped with a note on stderr).
pub async fn postgres() -> Option<Store> {
    let Ok(base) = std::env::var("MCPCTL_TEST_DATABASE_URL") else {
        eprintln!("MCPCTL_TEST_DATABASE_URL not set: skipping the Postgres half of this test");
        return None;
    };
    use sqlx::Connection;
    let name = format!("mcpctl_test_{}", std::process::id() as u64 * 1000 + rand_suffix());
    let mut admin = sqlx::PgConnection::connect(&base).await.expect("connect to MCPCTL_TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let (prefix, _) = base.rsplit_once('/').expect("URL has a database");
    Some(Store::connect(&format!("{prefix}/{name}")).await.unwrap())
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::SeqCst) + std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() as u64 % 997
}

/// Every store available here: SQLite always, Postgres when configured.
pub async fn stores() -> Vec<(Store, Option<tempfile::TempDir>)> {
    let (s, d) = sqlite().await;
    let mut v = vec![(s, Some(d))];
    if let Some(pg) = postgres().await {
        v.push((pg, None));
    }
    v
}
