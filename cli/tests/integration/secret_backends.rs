//! Secret backends end to end with the real binary: `migrate secrets` killed mid-way and resumed
//! against an in-test OpenBao, and a full `serve` run whose every output is searched for a secret
//! value (none may appear).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::fake_openbao::FakeBao;
use crate::{text, Env};

/// A fresh identity from `age-keygen`: (file, recipient).
fn keygen(dir: &Path) -> (PathBuf, String) {
    let identity = dir.join("identity.txt");
    let out = Command::new("age-keygen").arg("-o").arg(&identity).output().expect("age-keygen (Debian package age)");
    assert!(out.status.success());
    (identity, String::from_utf8_lossy(&out.stderr).split_whitespace().last().unwrap().to_string())
}

/// `value` encrypted by the `age` CLI, armored, as a YAML block scalar indented by 6.
fn sealed(recipient: &str, value: &str) -> String {
    use std::io::Write;
    let mut age = Command::new("age").args(["-r", recipient, "-a"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    age.stdin.take().unwrap().write_all(value.as_bytes()).unwrap();
    let armored = String::from_utf8(age.wait_with_output().unwrap().stdout).unwrap();
    let body: String = armored.lines().map(|l| format!("      {l}\n")).collect();
    format!("|\n{body}")
}

fn secret(name: &str, key: &str, recipient: &str, value: &str) -> String {
    format!("apiVersion: mcpctl.io/v1\nkind: Secret\nmetadata: {{name: {name}}}\nspec:\n  data:\n    {key}: {}---\n", sealed(recipient, value))
}

fn backends(bao_url: &str) -> String {
    format!(
        "apiVersion: mcpctl.io/v1\nkind: SecretBackend\nmetadata: {{name: git}}\nspec: {{type: plaintext, isDefault: true}}\n---\n\
         apiVersion: mcpctl.io/v1\nkind: SecretBackend\nmetadata: {{name: bao}}\nspec: {{type: openbao, openbao: {{url: '{bao_url}', tokenSecretRef: {{name: bao-token, key: token}}}}}}\n---\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_migration_killed_midway_finishes_on_rerun_and_skips_what_moved() {
    let env = Env::new();
    let (identity, recipient) = keygen(env.dir.path());
    let bao = FakeBao::start(&["root-token"]);
    let repo = env.dir.path().join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    let mut yaml = backends(&bao.url) + &secret("bao-token", "token", &recipient, "root-token");
    for i in 1..=5 {
        yaml += &secret(&format!("s{i}"), "v", &recipient, &format!("value-{i}"));
    }
    std::fs::write(repo.join("secrets.yaml"), yaml).unwrap();
    let o = env.run(&repo, &["apply", "--auto-approve"]);
    assert!(o.status.success(), "{}", text(&o));

    let o = env.run(&repo, &["migrate", "secrets", "--from", "git", "--to", "bao", "--dry-run", "--age-identity", identity.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("would move s3 from git to bao") && text(&o).contains("skip bao-token: it holds the token of backend bao"), "{}", text(&o));
    assert!(bao.state.lock().unwrap().requests.is_empty(), "a dry run talks to no backend");

    // The third write never answers; kill the process while it waits (SIGKILL, no cleanup).
    bao.state.lock().unwrap().hang_after_writes = Some(2);
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .arg("-C")
        .arg(&repo)
        .args(["migrate", "secrets", "--from", "git", "--to", "bao", "--age-identity"])
        .arg(&identity)
        .env("MCPCTL_DATABASE_URL", env.db_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut attempted = 0;
    for _ in 0..300 {
        attempted = bao.state.lock().unwrap().requests.iter().filter(|r| r.0 == "POST").count();
        if attempted == 3 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(attempted, 3, "the migration never reached its third write");
    child.kill().unwrap();
    let first = child.wait_with_output().unwrap();
    let first = text(&first);
    assert!(first.contains("moved s1 from git to bao") && first.contains("moved s2 from git to bao") && !first.contains("moved s3"), "{first}");
    assert_eq!(bao.get("mcpctl/_global/s3"), None);

    // The rerun skips s1 and s2, redoes s3, moves s4 and s5.
    bao.state.lock().unwrap().hang_after_writes = None;
    let o = env.run(&repo, &["migrate", "secrets", "--from", "git", "--to", "bao", "--age-identity", identity.to_str().unwrap()]);
    let out = text(&o);
    assert!(o.status.success(), "{out}");
    for i in 1..=2 {
        assert!(out.contains(&format!("skip s{i}: already on bao")) && !out.contains(&format!("moved s{i} ")), "{out}");
    }
    for i in 3..=5 {
        assert!(out.contains(&format!("moved s{i} from git to bao")), "{out}");
    }
    assert!(out.contains("3 secret(s) moved from git to bao; 2 skipped") && out.contains("externalRef: mcpctl/_global/s3"), "{out}");
    for i in 1..=5 {
        let got = bao.get(&format!("mcpctl/_global/s{i}")).unwrap_or_default();
        assert_eq!(got.get("v").map(String::as_str), Some(format!("value-{i}").as_str()));
    }
    assert_eq!(bao.get("mcpctl/_global/bao-token"), None, "the token never goes to OpenBao");
    for out in [&first, &out] {
        assert!(!out.contains("value-") && !out.contains("root-token"), "a value was printed: {out}");
    }
    let store = reconciler::Store::connect_existing(&env.db_url()).await.unwrap();
    let locations = store.secret_locations().await.unwrap();
    assert_eq!(locations.values().filter(|b| *b == "bao").count(), 5, "{locations:?}");

    // And back, with the values sealed into the database for this installation.
    let o = env.run(&repo, &["migrate", "secrets", "--from", "bao", "--to", "git", "--names", "s1,s2", "--age-identity", identity.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(bao.get("mcpctl/_global/s1"), None);
    assert!(store.secret_values("Secret/s1").await.unwrap()["v"].contains("BEGIN AGE ENCRYPTED FILE"));
    let o = env.run(&repo, &["migrate", "secrets", "--from", "git", "--to", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no SecretBackend `nope`"), "{}", text(&o));
}
