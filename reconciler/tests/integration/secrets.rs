//! Secret backends against real things: the OpenBao driver against an in-test KV v2 server,
//! secrets moved between the plaintext backend and OpenBao on real SQLite (and Postgres), values
//! sealed for the database checked with the `age` CLI.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use mcpctl_reconciler::secrets::openbao::{OpenBao, OpenBaoError};
use mcpctl_reconciler::secrets::{Backends, SecretResolver};
use schema::spec::SecretKeyRef;
use schema::{Kind, ResourceKey};

use crate::common::fake_openbao::FakeBao;
use crate::common::{doc, state, stores};

/// A fresh identity from `age-keygen`: (file, recipient).
fn keygen(dir: &Path) -> (PathBuf, String) {
    let identity = dir.join(format!("id-{}.txt", std::process::id()));
    let out = std::process::Command::new("age-keygen").arg("-o").arg(&identity).output().expect("age-keygen (Debian package age)");
    assert!(out.status.success());
    (identity, String::from_utf8_lossy(&out.stderr).split_whitespace().last().unwrap().to_string())
}

/// `value` encrypted by the `age` CLI, armored.
fn age_encrypt(recipient: &str, value: &str) -> String {
    use std::io::Write;
    let mut age = std::process::Command::new("age")
        .args(["-r", recipient, "-a"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    age.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    String::from_utf8(age.wait_with_output().unwrap().stdout).unwrap()
}

fn client(bao: &FakeBao) -> OpenBao {
    OpenBao::new(&bao.url, "secret").with_retry_pause(Duration::from_millis(1))
}

fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn openbao_driver_reads_writes_deletes_renews_its_token_on_403_and_retries_5xx() {
    let bao = FakeBao::start(&["tok-a"]);
    let c = client(&bao);
    let current = Mutex::new("tok-a".to_string());
    let reads = Mutex::new(0);
    let token = || {
        *reads.lock().unwrap() += 1;
        Ok(current.lock().unwrap().clone())
    };

    assert_eq!(c.read("app/db", &token).await.unwrap(), None);
    assert!(!c.exists("app/db", &token).await.unwrap());
    c.write("app/db", &values(&[("password", "pw-1")]), &token).await.unwrap();
    assert_eq!(bao.get("app/db"), Some(values(&[("password", "pw-1")])));
    assert_eq!(c.read("app/db", &token).await.unwrap(), Some(values(&[("password", "pw-1")])));
    assert!(c.exists("app/db", &token).await.unwrap());
    assert_eq!(*reads.lock().unwrap(), 1, "the token is read once and cached");

    // The token expires (403); the source now holds a new one: read again, retried once.
    {
        let mut s = bao.state.lock().unwrap();
        s.tokens.clear();
        s.tokens.insert("tok-b".into());
        s.requests.clear();
    }
    *current.lock().unwrap() = "tok-b".into();
    assert_eq!(c.read("app/db", &token).await.unwrap(), Some(values(&[("password", "pw-1")])));
    assert_eq!(bao.statuses(), vec![403, 200]);
    assert_eq!(*reads.lock().unwrap(), 2);

    // Two 503s, then success: retried.
    bao.state.lock().unwrap().requests.clear();
    bao.state.lock().unwrap().fail_next = 2;
    assert!(c.read("app/db", &token).await.unwrap().is_some());
    assert_eq!(bao.statuses(), vec![503, 503, 200]);

    // Always 503: gives up after 1 + RETRIES attempts, naming the status, never a value.
    bao.state.lock().unwrap().requests.clear();
    bao.state.lock().unwrap().fail_next = 100;
    let e = c.read("app/db", &token).await.unwrap_err();
    assert!(matches!(e, OpenBaoError::Server { status: 503, attempts: 4, .. }), "{e:?}");
    assert_eq!(bao.statuses().len(), 4);
    assert!(!e.to_string().contains("pw-1") && !e.to_string().contains("tok-b"), "{e}");
    bao.state.lock().unwrap().fail_next = 0;

    // A token the server never accepts: read again once, then refused.
    bao.state.lock().unwrap().requests.clear();
    *current.lock().unwrap() = "tok-wrong".into();
    bao.state.lock().unwrap().tokens.clear();
    let e = c.read("app/db", &token).await.unwrap_err();
    assert!(matches!(e, OpenBaoError::Denied { .. }), "{e:?}");
    assert_eq!(bao.statuses(), vec![403, 403]);
    assert!(!e.to_string().contains("tok-wrong"));

    // Delete (metadata route): gone, and deleting again is success.
    bao.state.lock().unwrap().tokens.insert("tok-wrong".into());
    c.delete("app/db", &token).await.unwrap();
    assert_eq!(bao.get("app/db"), None);
    c.delete("app/db", &token).await.unwrap();
    assert_eq!(c.read("app/db", &token).await.unwrap(), None);
}

/// A repo with a default plaintext backend `git`, an OpenBao backend `bao` whose token is a
/// plaintext-backed Secret, a Secret `api` in git and a Secret `ext` naming an OpenBao path.
fn repo(bao_url: &str, recipient: &str, openai: &str) -> String {
    doc("SecretBackend", "git", None, "{type: plaintext, isDefault: true}")
        + &doc(
            "SecretBackend",
            "bao",
            None,
            &format!("{{type: openbao, openbao: {{url: '{bao_url}', tokenSecretRef: {{name: bao-token, key: token}}}}}}"),
        )
        + &doc("Secret", "bao-token", None, &format!("{{data: {{token: {:?}}}}}", age_encrypt(recipient, "tok-a\n")))
        + &doc("Secret", "api", None, &format!("{{data: {{openai: {:?}}}}}", age_encrypt(recipient, openai)))
        + &doc("Secret", "ext", None, "{backend: bao, externalRef: team/search}")
}

#[tokio::test]
async fn secrets_move_between_plaintext_and_openbao_and_resolve_from_where_they_live() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = keygen(dir.path());
    for (store, tmp) in stores().await {
        let bao = FakeBao::start(&["tok-a"]);
        bao.state.lock().unwrap().kv.insert("team/search".into(), values(&[("key", "search-value")]));
        let desired = state(&repo(&bao.url, &recipient, "sk-openai-value"));
        let resolver = SecretResolver::from_file(&identity).unwrap();
        resolver.set_client("bao", client(&bao));
        let backends = Backends::new(&desired, &store, &resolver).await.unwrap();
        let api = desired.get(&ResourceKey::new(Kind::Secret, None, "api")).unwrap();
        let openai = SecretKeyRef { name: "api".into(), key: "openai".into() };
        let ext = SecretKeyRef { name: "ext".into(), key: "key".into() };

        // Before any fetch: git values decrypt, the external one is not there yet.
        assert_eq!(resolver.resolve(&desired, None, &openai).unwrap(), "sk-openai-value");
        assert!(resolver.resolve(&desired, None, &ext).unwrap_err().to_string().contains("not fetched"));
        assert!(resolver.prefetch(&desired, &store).await);
        assert_eq!(resolver.resolve(&desired, None, &ext).unwrap(), "search-value");

        // git → bao: written under mcpctl/_global/api, location flipped; the git copy is noted.
        assert_eq!(backends.location(api).as_deref(), Some("git"));
        let notes = backends.move_secret(api, "git", "bao", false).await.unwrap();
        assert_eq!(bao.get("mcpctl/_global/api"), Some(values(&[("openai", "sk-openai-value")])));
        assert!(notes.iter().any(|n| n.contains("stays in git")), "{notes:?}");
        assert_eq!(store.secret_locations().await.unwrap().get("Secret/api").map(String::as_str), Some("bao"));
        // Served from OpenBao now: change it there and the next fetch hands out the new value.
        bao.state.lock().unwrap().kv.insert("mcpctl/_global/api".into(), values(&[("openai", "rotated-in-bao")]));
        resolver.prefetch(&desired, &store).await;
        assert_eq!(resolver.resolve(&desired, None, &openai).unwrap(), "rotated-in-bao");

        // bao → git: sealed into the database for the installation, deleted in OpenBao.
        let backends = Backends::new(&desired, &store, &resolver).await.unwrap();
        assert_eq!(backends.location(api).as_deref(), Some("bao"));
        backends.move_secret(api, "bao", "git", false).await.unwrap();
        assert_eq!(bao.get("mcpctl/_global/api"), None);
        let held = store.secret_values("Secret/api").await.unwrap();
        let sealed = held.get("openai").unwrap();
        assert!(schema::validate::is_age_armor(sealed) && !sealed.contains("rotated"), "{sealed}");
        let out = std::process::Command::new("age")
            .arg("-d")
            .arg("-i")
            .arg(&identity)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(sealed.as_bytes())?;
                c.wait_with_output()
            });
        assert_eq!(String::from_utf8(out.unwrap().stdout).unwrap(), "rotated-in-bao", "age -d reads what the plaintext backend sealed");
        resolver.prefetch(&desired, &store).await;
        assert_eq!(resolver.resolve(&desired, None, &openai).unwrap(), "rotated-in-bao");

        // The database file holds no plaintext value.
        drop(backends);
        if let Some(tmp) = &tmp {
            store.pool().close().await;
            for f in std::fs::read_dir(tmp.path()).unwrap() {
                let bytes = std::fs::read(f.unwrap().path()).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(!text.contains("rotated-in-bao") && !text.contains("sk-openai-value") && !text.contains("search-value"));
            }
        }
    }
}

#[tokio::test]
async fn an_unreachable_backend_fails_only_the_secrets_on_it_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = keygen(dir.path());
    let (store, _tmp) = crate::common::sqlite().await;
    let bao = FakeBao::start(&["tok-a"]);
    bao.state.lock().unwrap().fail_next = 100;
    let desired = state(&repo(&bao.url, &recipient, "sk-openai-value"));
    let resolver = SecretResolver::from_file(&identity).unwrap();
    resolver.set_client("bao", client(&bao));
    assert!(!resolver.prefetch(&desired, &store).await, "an incomplete fetch is reported, so it is retried");
    let e = resolver.resolve(&desired, None, &SecretKeyRef { name: "ext".into(), key: "key".into() }).unwrap_err().to_string();
    assert!(e.contains("Secret `ext` on backend `bao`") && e.contains("503"), "{e}");
    assert_eq!(resolver.resolve(&desired, None, &SecretKeyRef { name: "api".into(), key: "openai".into() }).unwrap(), "sk-openai-value");
}

/// A repo where `api-keys/openai` feeds servers `fetch` and `search` (project `home`), the LLM
/// `gpt` and through it agent `assistant`; `api-keys/other` feeds nothing.
fn users_repo(openai: &str, other: &str) -> String {
    let armor = |v: &str| format!("\"-----BEGIN AGE ENCRYPTED FILE-----\\n{v}\\n-----END AGE ENCRYPTED FILE-----\"");
    let env = "env: [{name: KEY, valueFrom: {secretRef: {name: api-keys, key: openai}}}]";
    doc("Secret", "api-keys", None, &format!("{{data: {{openai: {}, other: {}}}}}", armor(openai), armor(other)))
        + &doc("Server", "fetch", None, &format!("{{command: fetch-mcp, {env}}}"))
        + &doc("Server", "search", Some("home"), &format!("{{command: search-mcp, {env}}}"))
        + &doc("Server", "time", None, "{command: time-mcp}")
        + &doc("Project", "home", None, "{servers: [time, search]}")
        + &doc("Project", "lab", None, "{servers: [time]}")
        + &doc("Llm", "gpt", None, "{provider: openai, model: gpt-4o-mini, apiKey: {secretRef: {name: api-keys, key: openai}}}")
        + &doc("Agent", "assistant", Some("lab"), "{llm: gpt}")
        + &doc("Agent", "helper", Some("home"), "{llm: other-llm}")
        + &doc("Llm", "other-llm", None, "{provider: openai, model: small}")
}

#[tokio::test]
async fn a_changed_secret_value_lists_what_it_restarts_and_who_uses_it() {
    let (store, _tmp) = crate::common::sqlite().await;
    let before = state(&users_repo("QUFBQQ", "Q0NDQw"));
    let p = mcpctl_reconciler::plan(&before, &[], "r1");
    store
        .apply(&p, &mcpctl_reconciler::DeployMeta { revision: "r1".into(), actor: "t".into(), message: None, commit: None }, &|_, _| {})
        .await
        .unwrap();
    assert!(p.changes.iter().all(|c| c.effects.is_empty()), "creates have no effects");

    let p = mcpctl_reconciler::plan(&state(&users_repo("QkJCQg", "Q0NDQw")), &store.resources().await.unwrap(), "r2");
    assert_eq!(p.changes.len(), 1);
    assert_eq!(p.changes[0].effects, vec!["value of api-keys/openai changed → restarts servers fetch, home/search; LLM gpt uses it; agents home/helper, lab/assistant use it".to_string()]);

    let p = mcpctl_reconciler::plan(&state(&users_repo("QUFBQQ", "RERERA")), &store.resources().await.unwrap(), "r3");
    assert_eq!(p.changes[0].effects, vec!["value of api-keys/other changed → used by nothing".to_string()]);
}

#[tokio::test]
async fn a_secret_deleted_from_the_repo_loses_its_location_and_held_values() {
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = keygen(dir.path());
    for (store, _tmp) in stores().await {
        let bao = FakeBao::start(&["tok-a"]);
        bao.state.lock().unwrap().kv.insert("team/search".into(), values(&[("key", "v")]));
        let yaml = repo(&bao.url, &recipient, "sk-openai-value");
        let desired = state(&yaml);
        let resolver = SecretResolver::from_file(&identity).unwrap();
        resolver.set_client("bao", client(&bao));
        let api = desired.get(&ResourceKey::new(Kind::Secret, None, "api")).unwrap();
        let backends = Backends::new(&desired, &store, &resolver).await.unwrap();
        backends.move_secret(api, "git", "bao", true).await.unwrap();
        backends.move_secret(api, "bao", "git", true).await.unwrap();
        assert_eq!(store.secret_values("Secret/api").await.unwrap().len(), 1);
        // Still in the repo: kept.
        resolver.prefetch(&desired, &store).await;
        assert!(store.secret_locations().await.unwrap().contains_key("Secret/api"));
        // Deleted from the repo: row and sealed values go.
        let without: String = yaml.split("---\n").filter(|d| !d.contains("name: api}")).collect::<Vec<_>>().join("---\n");
        resolver.prefetch(&state(&without), &store).await;
        assert!(store.secret_locations().await.unwrap().is_empty());
        assert!(store.secret_values("Secret/api").await.unwrap().is_empty());
    }
}
