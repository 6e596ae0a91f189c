//! The README's commands as a new user types them: `-C examples/homelab` names a folder inside a
//! clone, not a repository of its own, for the directory commands and the git-following ones.

use std::process::Command;

use super::{copy_dir, git, homelab, text, Env};

/// A clone-like work tree holding the example at `examples/homelab`, plus unrelated files.
fn clone_with_example(env: &Env) -> std::path::PathBuf {
    let root = env.dir.path().join("clone");
    copy_dir(&homelab(), &root.join("examples/homelab"));
    std::fs::write(root.join("ci.yaml"), "jobs: {build: {runs-on: linux}}\n").unwrap();
    git(&root, &["init", "-q", "-b", "main"]);
    git(&root, &["add", "-A"]);
    git(&root, &["commit", "-q", "-m", "clone"]);
    root
}

fn mcpctl(env: &Env, cwd: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mcpctl"))
        .current_dir(cwd)
        .args(args)
        .env("MCPCTL_DATABASE_URL", env.db_url())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn readme_commands_work_from_the_root_of_a_clone() {
    let env = Env::new();
    let root = clone_with_example(&env);
    let o = mcpctl(&env, &root, &["validate", "-C", "examples/homelab"]);
    assert!(o.status.success(), "{}", text(&o));
    // Following the branch reads the folder from git: the same resources, the CI file unread.
    let o = mcpctl(&env, &root, &["reconcile", "--once", "--runtime", "none", "-C", "examples/homelab", "--cache-dir", "cache"]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("deployed ") && text(&o).contains(" to add"), "{}", text(&o));
    // What apply from the directory would do is nothing more: the same state.
    let o = mcpctl(&env, &root, &["plan", "-C", "examples/homelab", "--detailed-exitcode"]);
    assert!(o.status.success(), "plan after reconcile should have no changes: {}", text(&o));
    // A commit elsewhere in the clone is recorded as unchanged.
    std::fs::write(root.join("ci.yaml"), "jobs: {}\n").unwrap();
    git(&root, &["commit", "-q", "-am", "ci only"]);
    let o = mcpctl(&env, &root, &["reconcile", "--once", "--runtime", "none", "-C", "examples/homelab", "--cache-dir", "cache"]);
    assert!(o.status.success(), "{}", text(&o));
    let o = mcpctl(&env, &root, &["history", "-o", "json"]);
    let history: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    assert_eq!(history[0]["outcome"], "unchanged", "{history}");
    assert_eq!(history[1]["outcome"], "applied", "{history}");
}

#[test]
fn a_folder_outside_a_repository_says_so_for_git_commands() {
    let env = Env::new();
    let plain = env.dir.path().join("plain");
    copy_dir(&homelab(), &plain);
    let o = mcpctl(&env, env.dir.path(), &["reconcile", "--once", "--runtime", "none", "-C", "plain", "--cache-dir", "cache"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("could not find repository"), "{}", text(&o));
    // The directory commands need no repository.
    let o = mcpctl(&env, env.dir.path(), &["validate", "-C", "plain"]);
    assert!(o.status.success(), "{}", text(&o));
}
