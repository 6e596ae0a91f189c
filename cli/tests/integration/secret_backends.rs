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
    format!(
        "apiVersion: mcpctl.io/v1\nkind: Secret\nmetadata: {{name: {name}}}\nspec:\n  data:\n    {key}: {}---\n",
        sealed(recipient, value)
    )
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

    let o =
        env.run(&repo, &["migrate", "secrets", "--from", "git", "--to", "bao", "--dry-run", "--age-identity", identity.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("would move s3 from git to bao") && text(&o).contains("skip bao-token: it holds the token of backend bao"),
        "{}",
        text(&o)
    );
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
    assert!(
        first.contains("moved s1 from git to bao") && first.contains("moved s2 from git to bao") && !first.contains("moved s3"),
        "{first}"
    );
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
    let o = env.run(
        &repo,
        &["migrate", "secrets", "--from", "bao", "--to", "git", "--names", "s1,s2", "--age-identity", identity.to_str().unwrap()],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(bao.get("mcpctl/_global/s1"), None);
    assert!(store.secret_values("Secret/s1").await.unwrap()["v"].contains("BEGIN AGE ENCRYPTED FILE"));
    let o = env.run(&repo, &["migrate", "secrets", "--from", "git", "--to", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("no SecretBackend `nope`"), "{}", text(&o));
}

const VALUE_GIT: &str = "sk-SENTINEL-from-git-7f3a9c";
const VALUE_BAO: &str = "SENTINEL-from-openbao-41d2e8";
const BAO_TOKEN: &str = "hvs.SENTINEL-token-0c5b77";

fn sha256_hex(s: &str) -> String {
    use std::io::Write;
    let mut c = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    String::from_utf8(c.wait_with_output().unwrap().stdout).unwrap().split_whitespace().next().unwrap().to_string()
}

/// Every file under `dir`, as (path, bytes).
fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if let Ok(b) = std::fs::read(&p) {
            out.push((p, b));
        }
    }
    out
}

#[test]
fn no_secret_value_appears_in_any_output_of_a_serve_run() {
    let env = Env::new();
    let (identity, recipient) = keygen(env.dir.path());
    let bao = FakeBao::start(&[BAO_TOKEN]);
    bao.state.lock().unwrap().kv.insert("team/ext".into(), [("key".to_string(), VALUE_BAO.to_string())].into());
    let repo = env.dir.path().join("repo");
    let marks = env.dir.path().join("marks");
    std::fs::create_dir_all(&marks).unwrap();
    crate::copy_dir(&crate::homelab().join("access"), &repo.join("access"));
    // Each server proves it got its value by writing the value's SHA-256 (never the value).
    let server = |name: &str, secret: &str, key: &str| {
        format!(
            "apiVersion: mcpctl.io/v1\nkind: Server\nmetadata: {{name: {name}}}\nspec:\n  command: sh\n  args: [-c, 'printf %s \"$KEY\" | sha256sum > {}/{name}.sum; exec sleep 600']\n  env: [{{name: KEY, valueFrom: {{secretRef: {{name: {secret}, key: {key}}}}}}}]\n---\n",
            marks.display()
        )
    };
    let yaml = backends(&bao.url)
        + &secret("bao-token", "token", &recipient, BAO_TOKEN)
        + &secret("api-keys", "openai", &recipient, VALUE_GIT)
        + "apiVersion: mcpctl.io/v1\nkind: Secret\nmetadata: {name: ext}\nspec: {backend: bao, externalRef: team/ext}\n---\n"
        + &server("probe", "api-keys", "openai")
        + &server("vaulted", "ext", "key")
        + "apiVersion: mcpctl.io/v1\nkind: Project\nmetadata: {name: homelab}\nspec: {servers: [probe, vaulted]}\n";
    std::fs::write(repo.join("repo.yaml"), yaml).unwrap();
    crate::git(&repo, &["init", "-q", "-b", "main"]);
    crate::git(&repo, &["add", "-A"]);
    crate::git(&repo, &["commit", "-q", "-m", "secrets"]);

    let logs = env.dir.path().join("logs");
    let stderr_file = env.dir.path().join("serve.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .arg("-C")
        .arg(&repo)
        .args(["serve", "--listen", "127.0.0.1:0", "--interval", "1h", "--runtime", "local", "--age-identity"])
        .arg(&identity)
        .arg("--cache-dir")
        .arg(env.dir.path().join("cache"))
        .env("MCPCTL_DATABASE_URL", env.db_url())
        .env("MCPCTL_LOG_DIR", &logs)
        .env("MCPCTL_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let (addr, mut printed) = crate::listening(&mut child);

    // Both servers start with the decrypted env: the git value and the OpenBao one.
    let mut started = false;
    for _ in 0..300 {
        let sum = |n: &str| std::fs::read_to_string(marks.join(format!("{n}.sum"))).unwrap_or_default();
        if sum("probe").starts_with(&sha256_hex(VALUE_GIT)) && sum("vaulted").starts_with(&sha256_hex(VALUE_BAO)) {
            started = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    // Everything a user can read while it runs.
    let auth = ("Authorization", "Bearer mcpctl_pat_demo_homelab_0123456789abcdef");
    let mut answers = Vec::new();
    for path in [
        "/api/v1/secrets",
        "/api/v1/secrets/api-keys",
        "/api/v1/secrets/ext",
        "/api/v1/secretbackends",
        "/api/v1/servers",
        "/api/v1/status",
        "/api/v1/deploys",
        "/metrics",
        "/readyz",
    ] {
        let (status, body) = crate::http(&addr, "GET", path, &[auth], "");
        answers.push(format!("GET {path} → {status}\n{body}"));
    }
    for args in [
        &["describe", "secret", "api-keys"][..],
        &["describe", "secret", "ext"],
        &["describe", "server", "probe"],
        &["get", "all", "-o", "yaml"],
        &["get", "secrets", "-o", "json"],
        &["status", "-o", "json"],
        &["history"],
        &["plan"],
    ] {
        let o = env.run(&repo, args);
        answers.push(format!("mcpctl {args:?}\n{}", text(&o)));
    }
    assert!(answers[0].starts_with("GET /api/v1/secrets → 200") && answers[0].contains("api-keys"), "{}", answers[0]);
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let status = child.wait().unwrap();
    {
        use std::io::Read;
        let mut rest = String::new();
        child.stdout.take().map(|mut s| s.read_to_string(&mut rest));
        printed.push(rest);
    }
    assert!(started, "servers did not get their values; stderr:\n{}", std::fs::read_to_string(&stderr_file).unwrap_or_default());
    assert!(status.success() || status.code().is_none(), "serve exited with {status}");

    // A positive control: the same search finds the values where they are meant to be shown.
    let shown = env.run(&repo, &["describe", "secret", "api-keys", "--show-values", "--age-identity", identity.to_str().unwrap()]);
    assert!(text(&shown).contains(VALUE_GIT), "{}", text(&shown));
    let shown = env.run(&repo, &["describe", "secret", "ext", "--show-values", "--age-identity", identity.to_str().unwrap()]);
    assert!(text(&shown).contains(VALUE_BAO) && text(&shown).contains("Location:  bao"), "{}", text(&shown));

    // Nowhere else: serve's stdout and stderr (debug logs), server logs, every REST and CLI
    // answer, the database files, the repo cache.
    let mut haystacks: Vec<(String, Vec<u8>)> =
        vec![("serve stdout".into(), printed.join("\n").into_bytes()), ("serve stderr".into(), std::fs::read(&stderr_file).unwrap())];
    haystacks.extend(answers.iter().map(|a| (a.lines().next().unwrap_or_default().to_string(), a.clone().into_bytes())));
    for dir in [&logs, &env.dir.path().join("cache")] {
        haystacks.extend(files(dir).into_iter().map(|(p, b)| (p.display().to_string(), b)));
    }
    haystacks.extend(
        files(env.dir.path())
            .into_iter()
            .filter(|(p, _)| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with("state.db")))
            .map(|(p, b)| (p.display().to_string(), b)),
    );
    assert!(
        haystacks.iter().any(|(n, _)| n.contains("state.db")) && haystacks.len() > 15,
        "{:?}",
        haystacks.iter().map(|h| &h.0).collect::<Vec<_>>()
    );
    assert!(std::fs::metadata(&stderr_file).unwrap().len() > 0, "debug logging produced nothing to search");
    for (name, bytes) in &haystacks {
        let hay = String::from_utf8_lossy(bytes);
        for v in [VALUE_GIT, VALUE_BAO, BAO_TOKEN] {
            assert!(!hay.contains(v), "{v} found in {name}");
        }
    }
}
