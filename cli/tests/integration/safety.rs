//! CLI safety: the mass-deletion guard, read commands that never create a database, saved plans
//! re-validated, rollback over a dirty tree, what `push` stages, the webhook secret, and control
//! characters in the audit table. Real binary, real SQLite file, real git.

use std::path::Path;
use std::process::Command;

use super::{git, homelab, remote_and_work, text, Env};

#[test]
fn read_commands_never_create_a_database() {
    let env = Env::new();
    let db = env.dir.path().join("state.db");
    for cmd in [
        &["get", "all"][..],
        &["get", "servers", "-o", "json"],
        &["describe", "server", "time"],
        &["status"],
        &["history"],
        &["get", "auditevents"],
    ] {
        let o = env.run(&homelab(), cmd);
        assert_eq!(o.status.code(), Some(1), "{cmd:?}: {}", text(&o));
        assert!(text(&o).contains(&format!("no database at {}: run `mcpctl apply` first", db.display())), "{cmd:?}: {}", text(&o));
        assert!(!db.exists(), "{cmd:?} created {}", db.display());
    }
    // Once applied, they read it.
    assert!(env.run(&homelab(), &["apply"]).status.success());
    assert!(env.run(&homelab(), &["get", "all"]).status.success());
    assert!(env.run(&homelab(), &["status"]).status.success());
}

#[test]
fn apply_refuses_to_empty_the_store_unless_allowed() {
    let env = Env::new();
    assert!(env.run(&homelab(), &["apply"]).status.success());
    let before = env.run(&homelab(), &["get", "all", "-o", "json"]).stdout;
    let count = serde_json::from_slice::<serde_json::Value>(&before).unwrap().as_array().unwrap().len();
    let empty = env.dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();

    // A wrong -C (stdin is not a terminal here, so nothing is asked: the guard alone decides).
    let o = env.run(&empty, &["apply"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("has no resources, so applying it would delete all {count} resources in the store")),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("--allow-empty"), "{}", text(&o));
    assert_eq!(env.run(&homelab(), &["get", "all", "-o", "json"]).stdout, before, "the store changed");

    // A saved plan that deletes everything is refused the same way.
    let plan = env.dir.path().join("empty-plan.json");
    assert!(env.run(&empty, &["plan", "-o", plan.to_str().unwrap()]).status.success());
    let o = env.run(&empty, &["apply", plan.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&format!("deletes all {count} resources in the store")), "{}", text(&o));
    assert_eq!(env.run(&homelab(), &["get", "all", "-o", "json"]).stdout, before, "the store changed");

    // Explicitly allowed: it is applied (no terminal, so no question either).
    let o = env.run(&empty, &["apply", "--allow-empty", plan.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let after: serde_json::Value = serde_json::from_slice(&env.run(&homelab(), &["get", "all", "-o", "json"]).stdout).unwrap();
    assert_eq!(after, serde_json::json!([]));
}

#[test]
fn a_tampered_saved_plan_is_validated_again_before_apply() {
    let env = Env::new();
    let path = env.dir.path().join("plan.json");
    assert!(env.run(&homelab(), &["plan", "-o", path.to_str().unwrap()]).status.success());
    let mut plan: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let secret = plan["changes"].as_array_mut().unwrap().iter_mut().find(|c| c["kind"] == "Secret").unwrap();
    secret["desired"]["spec"]["data"]["openai"] = "sk-plaintext-key".into();
    std::fs::write(&path, plan.to_string()).unwrap();

    let o = env.run(&homelab(), &["apply", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains(&format!("{}: Secret/api-keys: spec.data.openai: value is not age ciphertext", path.display())), "{out}");
    assert!(out.contains("applying this plan would leave an invalid state; nothing was changed"), "{out}");
    assert!(!out.contains("sk-plaintext-key"), "the plaintext was echoed: {out}");
    let o = env.run(&homelab(), &["get", "all", "-o", "json"]);
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap(), serde_json::json!([]), "{}", text(&o));
}

#[test]
fn rollback_refuses_a_dirty_work_tree_unless_forced() {
    let env = Env::new();
    let repo = env.copy(&homelab(), "repo");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "homelab"]);
    let first = git(&repo, &["rev-parse", "HEAD"]);
    std::fs::write(repo.join("users.yaml"), "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: bob}\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "bob"]);
    // Uncommitted: an edit of a tracked file, and a new file at a path the old tree does not have.
    let edited = "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: bob}\nspec: {email: bob@example.com}\n";
    std::fs::write(repo.join("users.yaml"), edited).unwrap();
    std::fs::write(repo.join("notes.txt"), "mine").unwrap();

    let o = env.run(&repo, &["rollback", &first, "--no-push"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("uncommitted changes that rollback would discard: users.yaml; commit or stash them, or pass --force"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read_to_string(repo.join("users.yaml")).unwrap(), edited, "the edit was discarded");
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "2");

    let o = env.run(&repo, &["rollback", &first, "--no-push", "--force"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!repo.join("users.yaml").exists());
    assert_eq!(git(&repo, &["rev-list", "--count", "HEAD"]), "3");
}

#[test]
fn push_stages_only_resource_files_and_never_a_private_key() {
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, Some(&homelab()));
    // Beside the repo's files: an age identity at the top, a key hidden in a .yaml, an SSH key,
    // and (tracked, then edited) a resource file that now holds a key.
    std::fs::write(
        work.join("key.txt"),
        "# created: 2026-01-01\nAGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n",
    )
    .unwrap();
    std::fs::write(work.join("identity.yaml"), "# AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ\n").unwrap();
    std::fs::write(
        work.join("id_ed25519"),
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
    )
    .unwrap();
    let o = env.run(&work, &["push", "-m", "homelab"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for (file, why) in [
        ("key.txt", "not a resource file"),
        ("identity.yaml", "holds a private key"),
        ("id_ed25519", "not a resource file"),
        ("README.md", "not a resource file"),
        (".mcpctl/demo-age-identity.txt", "not a resource file"),
    ] {
        assert!(out.contains(&format!("left out {file}: {why}")), "{file}: {out}");
    }
    let pushed = git(&bare, &["ls-tree", "-r", "--name-only", "main"]);
    assert!(pushed.contains("servers/stdio.yaml") && pushed.contains("secrets/api-keys.yaml"), "{pushed}");
    for secret in ["key.txt", "identity.yaml", "id_ed25519", "demo-age-identity"] {
        assert!(!pushed.contains(secret), "{secret} was pushed:\n{pushed}");
    }

    // A tracked resource file edited to hold a key: the edit is left out, other changes go.
    let people = work.join("access/people.yaml");
    let original = std::fs::read_to_string(&people).unwrap();
    std::fs::write(&people, format!("{original}# -----BEGIN PRIVATE KEY-----\n")).unwrap();
    std::fs::write(work.join("users.yaml"), "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: bob}\n").unwrap();
    let o = env.run(&work, &["push", "-m", "bob"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("left out access/people.yaml: holds a private key"), "{}", text(&o));
    assert_eq!(git(&bare, &["show", "main:access/people.yaml"]), original.trim_end());
    assert!(git(&bare, &["ls-tree", "-r", "--name-only", "main"]).contains("users.yaml"));

    // Staged by hand with `git add`: the push is refused, naming the file.
    git(&work, &["add", "access/people.yaml"]);
    let o = env.run(&work, &["push", "-m", "sneak"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("staged file(s) hold a private key and must not be committed: access/people.yaml"), "{}", text(&o));
}

#[test]
fn serve_refuses_an_empty_webhook_secret_file() {
    let env = Env::new();
    let repo = env.copy(&homelab(), "repo");
    git(&repo, &["init", "-q", "-b", "main"]);
    let secret = env.dir.path().join("hook-secret");
    std::fs::write(&secret, " \n").unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .arg("-C")
        .arg(&repo)
        .args(["serve", "--listen", "127.0.0.1:0", "--runtime", "none", "--webhook-secret-file"])
        .arg(&secret)
        .arg("--cache-dir")
        .arg(env.dir.path().join("cache"))
        .env("MCPCTL_DATABASE_URL", env.db_url())
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut exited = None;
    for _ in 0..200 {
        if let Some(status) = child.try_wait().unwrap() {
            exited = Some(status);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    if exited.is_none() {
        let _ = child.kill();
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(exited.and_then(|s| s.code()), Some(1), "serve started with an empty webhook secret: {}", text(&o));
    assert!(text(&o).contains(&format!("the webhook secret file {} is empty", secret.display())), "{}", text(&o));
}

#[test]
fn audit_table_escapes_control_characters_and_json_keeps_them() {
    let env = Env::new();
    assert!(env.run(&homelab(), &["apply"]).status.success());
    let url = env.db_url();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = reconciler::Store::connect(&url).await.unwrap();
        // From JSON, so fields added to the event later (with defaults) do not break this test.
        let event: reconciler::audit::AuditEvent = serde_json::from_value(serde_json::json!({
            "at": "2026-11-25T10:00:00.000Z", "project": "homelab", "token": "ci", "tokenPrefix": "0123456789ab",
            "session": "-", "method": "tools/call", "server": "time", "target": "get\u{1b}[2J\u{1b}[1;1Hall clear\rfake",
            "durationUs": 1000, "outcome": "error", "error": "line one\nline two\u{202e}evil", "revision": "abc123",
        }))
        .unwrap();
        store.insert_audit(&[event]).await.unwrap();
    });
    let o = env.run(Path::new("."), &["get", "auditevents"]);
    assert!(o.status.success(), "{}", text(&o));
    let table = String::from_utf8(o.stdout).unwrap();
    assert!(!table.contains('\u{1b}') && !table.contains('\r') && !table.contains('\u{202e}'), "raw control characters:\n{table:?}");
    assert_eq!(table.lines().count(), 2, "an event spans more than one line:\n{table}");
    assert!(table.contains(r"get\u{1b}[2J\u{1b}[1;1Hall clear\rfake") && table.contains(r"line one\nline two\u{202e}evil"), "{table}");
    let o = env.run(Path::new("."), &["get", "auditevents", "-o", "json"]);
    let events: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(events[0]["target"], "get\u{1b}[2J\u{1b}[1;1Hall clear\rfake");
}

#[test]
fn reconcile_refuses_a_commit_that_empties_the_repo_unless_allowed() {
    let env = Env::new();
    let repo = env.copy(&homelab(), "gitrepo");
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "homelab"]);
    let good = git(&repo, &["rev-parse", "HEAD"]);
    let cache = env.dir.path().join("cache");
    let once = ["reconcile", "--once", "--cache-dir", cache.to_str().unwrap()];
    assert!(env.run(&repo, &once).status.success());
    let before = env.run(&repo, &["get", "all", "-o", "json"]).stdout;

    git(&repo, &["rm", "-q", "-r", "."]);
    git(&repo, &["commit", "-q", "-m", "oops: everything deleted"]);
    let o = env.run(&repo, &once);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("has no resources while") && text(&o).contains("--allow-empty"), "{}", text(&o));
    assert_eq!(env.run(&repo, &["get", "all", "-o", "json"]).stdout, before, "the store was emptied");
    let s: serde_json::Value = serde_json::from_slice(&env.run(&repo, &["status", "-o", "json"]).stdout).unwrap();
    assert_eq!((s["deployed"].as_str(), s["lastOutcome"].as_str()), (Some(good.as_str()), Some("failed")));

    // Meant it: with --allow-empty, the next commit is deployed.
    git(&repo, &["commit", "-q", "--allow-empty", "-m", "yes, really"]);
    let o = env.run(&repo, &[&once[..], &["--allow-empty"]].concat());
    assert!(o.status.success(), "{}", text(&o));
    let all: serde_json::Value = serde_json::from_slice(&env.run(&repo, &["get", "all", "-o", "json"]).stdout).unwrap();
    assert_eq!(all, serde_json::json!([]));
}

#[test]
fn an_allowed_signers_file_with_cert_authority_is_refused_naming_the_line() {
    let env = Env::new();
    let repo = env.copy(&homelab(), "gitrepo");
    git(&repo, &["init", "-q", "-b", "main"]);
    let signers = env.dir.path().join("allowed_signers");
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINILM1dJdIehtbYVYttWx+ixFoYBOU624FONXelaol6V";
    std::fs::write(&signers, format!("# team\ndev@example.com {key}\n*@example.com cert-authority {key}\n")).unwrap();
    let o = env.run(
        &repo,
        &[
            "reconcile",
            "--once",
            "--allowed-signers",
            signers.to_str().unwrap(),
            "--cache-dir",
            env.dir.path().join("cache").to_str().unwrap(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("allowed signers line 3: `cert-authority` is not supported"), "{}", text(&o));
}

#[test]
fn reconcile_refuses_a_branch_reset_to_an_older_signed_commit() {
    let env = Env::new();
    let repo = env.copy(&homelab(), "gitrepo");
    let key = env.dir.path().join("signing-key");
    let made = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-C", "dev", "-f"]).arg(&key).status().unwrap();
    assert!(made.success());
    let signers = env.dir.path().join("allowed_signers");
    std::fs::write(&signers, format!("dev@example.com namespaces=\"git\" {}", std::fs::read_to_string(key.with_extension("pub")).unwrap()))
        .unwrap();
    let signing = format!("user.signingkey={}", key.display());
    let commit = |msg: &str| {
        git(&repo, &["add", "-A"]);
        git(&repo, &["-c", "gpg.format=ssh", "-c", &signing, "commit", "-q", "-S", "-m", msg]);
        git(&repo, &["rev-parse", "HEAD"])
    };
    git(&repo, &["init", "-q", "-b", "main"]);
    let old = commit("homelab");
    let cache = env.dir.path().join("cache");
    let once = ["reconcile", "--once", "--allowed-signers", signers.to_str().unwrap(), "--cache-dir", cache.to_str().unwrap()];
    assert!(env.run(&repo, &once).status.success());
    std::fs::write(repo.join("bob.yaml"), "apiVersion: mcpctl.io/v1\nkind: User\nmetadata: {name: bob}\n").unwrap();
    let revoked = commit("add bob");
    let o = env.run(&repo, &once);
    assert!(o.status.success(), "{}", text(&o));

    git(&repo, &["reset", "-q", "--hard", &old]);
    let o = env.run(&repo, &once);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains(&format!("does not descend from the last deployed commit {}", &revoked[..12])), "{}", text(&o));
    let s: serde_json::Value = serde_json::from_slice(&env.run(&repo, &["status", "-o", "json"]).stdout).unwrap();
    assert_eq!(s["deployed"].as_str(), Some(revoked.as_str()));
    assert!(env.run(&repo, &["get", "user", "bob"]).status.success(), "the store went back to the older commit");
}
