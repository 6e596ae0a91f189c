//! Users and login (tracker issue 12) end to end: `create usertoken` mints a login token into
//! the repo, `push` deploys it, a real `mcpctl serve` serves it; `login` keeps the context in a
//! config file of mode 0600, `config …` lists and switches contexts, and the read commands go
//! through the gateway with no database URL, each user seeing what its grants allow. A disabled
//! user's token is refused (401) and writes nothing; actions without a gateway route ask `can-i`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::{homelab, http, remote_and_work, serve_bare, text, Env};

/// `mcpctl` as a person with no database: only a config file (and an empty HOME).
fn person(env: &Env, config: &Path, args: &[&str], token: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_mcpctl"));
    c.args(args)
        .env_remove("MCPCTL_DATABASE_URL")
        .env_remove("MCPCTL_URL")
        .env_remove("MCPCTL_TOKEN")
        .env_remove("MCPCTL_CONTEXT")
        .env("MCPCTL_CONFIG", config)
        .env("HOME", env.dir.path().join("home"))
        .env("XDG_DATA_HOME", env.dir.path().join("home/data"))
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null());
    if let Some(t) = token {
        c.env("MCPCTL_TOKEN", t);
    }
    c.output().unwrap()
}

fn mint(env: &Env, work: &Path, name: &str, user: &str) -> String {
    let o = env.run(work, &["create", "usertoken", name, "--user", user, "--ttl", "30d"]);
    assert!(o.status.success(), "{}", text(&o));
    let raw = String::from_utf8(o.stdout).unwrap().trim().to_string();
    assert!(raw.starts_with("mcpctl_usr_") && raw.len() == "mcpctl_usr_".len() + 64, "{raw}");
    raw
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", text(o));
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)))
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|r| r["metadata"]["name"].as_str().unwrap().to_string()).collect()
}

#[test]
fn login_then_read_through_the_gateway_without_a_database() {
    let env = Env::new();
    let (bare, work) = remote_and_work(&env, Some(&homelab()));
    // alice (group lab-admins: view everything in homelab) and bob (no grants); carol disabled.
    assert!(env.run(&work, &["create", "user", "bob", "--spec", "{email: bob@example.com}"]).status.success());
    assert!(env.run(&work, &["create", "user", "carol", "--spec", "{disabled: true}"]).status.success());
    let alice = mint(&env, &work, "laptop", "alice");
    let bob = mint(&env, &work, "laptop", "bob");
    let carol = mint(&env, &work, "laptop", "carol");
    let people = std::fs::read_to_string(work.join("access/people.yaml")).unwrap();
    assert!(!people.contains(&alice) && people.contains(&schema::token::hash(&alice)), "only the hash goes in git:\n{people}");
    // The same name twice for one user is refused and writes nothing.
    let o = env.run(&work, &["create", "usertoken", "laptop", "--user", "alice"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(o.stdout.is_empty() && text(&o).contains("listed twice"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(work.join("access/people.yaml")).unwrap(), people);
    assert!(env.run(&work, &["push", "-m", "people and their tokens"]).status.success());

    let (mut child, addr) = serve_bare(&env, &bare, &[]);
    let served = (0..200).any(|_| {
        let ok = http(&addr, "GET", "/api/v1/whoami", &[("Authorization", &format!("Bearer {alice}"))], "").0 == 200;
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        ok
    });
    let gw = format!("http://{addr}");
    let config: PathBuf = env.dir.path().join("cfg/mcpctl/config.yaml");
    let result = std::panic::catch_unwind(|| {
        assert!(served, "the commit with the tokens was not served");
        // Without a context a read needs the database, which this person does not have.
        let o = person(&env, &config, &["get", "servers"], None);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));

        let o = person(&env, &config, &["login", "--url", &gw, "--token", &alice], None);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("as User alice"), "{}", text(&o));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&config).unwrap().permissions().mode() & 0o777, 0o600, "the config file holds tokens");
            assert_eq!(std::fs::metadata(config.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let servers = names(&json(&person(&env, &config, &["get", "servers", "-o", "json"], None)));
        assert!(servers.contains(&"time".to_string()) && servers.contains(&"everything".to_string()), "{servers:?}");
        let o = person(&env, &config, &["get", "servers"], None);
        assert!(o.status.success() && text(&o).contains("time"), "{}", text(&o));
        assert_eq!(names(&json(&person(&env, &config, &["get", "projects", "-o", "json"], None))), ["homelab"]);
        let o = person(&env, &config, &["describe", "agent", "assistant", "-p", "homelab"], None);
        assert!(o.status.success() && text(&o).contains("Kind:"), "{}", text(&o));
        let o = person(&env, &config, &["status"], None);
        assert!(o.status.success() && text(&o).contains("Deployed:"), "{}", text(&o));
        // alice may not audit: history and the audit log are refused by the gateway (403).
        let o = person(&env, &config, &["history"], None);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("403") && text(&o).contains("audit"), "{}", text(&o));
        assert_eq!(person(&env, &config, &["get", "auditevents", "-p", "homelab"], None).status.code(), Some(1));
        // An action with no gateway route asks can-i first: alice may not reveal secrets.
        let o = person(&env, &config, &["-C", work.to_str().unwrap(), "secret", "reveal", "api-keys"], None);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("denied by the gateway") && text(&o).contains("reveal-secrets"), "{}", text(&o));

        // A second context from $MCPCTL_TOKEN; bob holds no grant and sees nothing.
        let o = person(&env, &config, &["login", "--url", &gw, "--context-name", "bob"], Some(&bob));
        assert!(o.status.success(), "{}", text(&o));
        assert!(names(&json(&person(&env, &config, &["get", "projects", "-o", "json"], None))).is_empty());
        assert!(names(&json(&person(&env, &config, &["get", "servers", "-o", "json"], None))).is_empty());
        let o = person(&env, &config, &["get", "agent", "assistant", "-p", "homelab"], None);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let alice_ctx = format!("alice@{addr}");
        let ctx = json(&person(&env, &config, &["config", "get-contexts", "-o", "json"], None));
        assert_eq!(ctx["currentContext"], "bob");
        let listed: Vec<&str> = ctx["contexts"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(listed, [alice_ctx.as_str(), "bob"]);
        let shown = text(&person(&env, &config, &["config", "get-contexts"], None));
        assert!(!shown.contains(&alice) && !shown.contains(&bob) && shown.contains("mcpctl_usr_"), "tokens are never shown:\n{shown}");
        // --context picks another one for one command; use-context switches.
        assert_eq!(names(&json(&person(&env, &config, &["--context", &alice_ctx, "get", "projects", "-o", "json"], None))), ["homelab"]);
        assert!(person(&env, &config, &["config", "use-context", &alice_ctx], None).status.success());
        assert_eq!(String::from_utf8(person(&env, &config, &["config", "current-context"], None).stdout).unwrap().trim(), alice_ctx);
        assert_eq!(person(&env, &config, &["config", "use-context", "nope"], None).status.code(), Some(1));

        // A disabled user's token: 401, and the config file is left as it was.
        let before = std::fs::read_to_string(&config).unwrap();
        let o = person(&env, &config, &["login", "--url", &gw, "--token", &carol], None);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains("401"), "{}", text(&o));
        assert!(!text(&o).contains(&carol), "the token is never printed");
        assert_eq!(std::fs::read_to_string(&config).unwrap(), before);
        // No token and no terminal: a clear refusal.
        let o = person(&env, &config, &["login", "--url", &gw], None);
        assert_eq!(o.status.code(), Some(1));
        assert!(text(&o).contains("no token"), "{}", text(&o));
    });
    Command::new("kill").arg("-INT").arg(child.id().to_string()).status().unwrap();
    let _ = child.wait();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
