//! The local runtime: stdio servers (`command`, or `packageName` via npx/uvx) run as supervised
//! child processes with restart backoff; stderr is captured to a log file per server (mode 0600).
//! `spec.replicas` (default 1) processes run per server, each supervised on its own.
//!
//! # Guarantees
//! [`LocalRuntime::sync`] is idempotent: running servers whose spec is unchanged are left alone,
//! changed ones are restarted, removed ones are stopped (and their process reaped). A process that
//! exits is restarted after 1 s, 2 s, 4 s … (capped at 30 s; reset after 60 s of uptime).
//! stdin and stdout stay piped: they are the MCP channel. A gateway in the same process takes them
//! over through [`LocalRuntime::with_attach`] each time a process starts (so a restarted server
//! gets a fresh connection); without one they are held open and unused. With each process the
//! gateway gets a [`Restart`] handle: a process that is alive but no longer answers (a failed
//! health check) is killed and started again at once, without backoff, counted in `restarts`.
//!
//! Env values from secrets are decrypted at start with the installation's age identity and handed
//! to the process only: never stored, logged or shown (a changed value restarts the process; only a
//! hash of the values is kept to notice that).
//!
//! A child's environment is built, not inherited: the few variables of [`INHERITED_ENV`] that
//! `mcpctl` itself has, then the server's declared `env` (which wins). Nothing else of the parent
//! (`MCPCTL_GIT_TOKEN`, `MCPCTL_DATABASE_URL`, cloud credentials, proxies with passwords …)
//! reaches a server. With [`LocalRuntime::with_run_as`] children run as that user, with its
//! `HOME`, `USER` and `LOGNAME`.
//!
//! Making a runtime also makes this process non-dumpable (`prctl(PR_SET_DUMPABLE, 0)`): a child
//! running as the same user could otherwise read `mcpctl`'s whole environment from
//! `/proc/<ppid>/environ`, or its memory (decrypted secrets, the age identity) through ptrace. It
//! also means no core dumps.
//!
//! # Caveats
//! `image` servers need the Kubernetes runtime and `url` servers run elsewhere; both are reported,
//! not started.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio::sync::{watch, Notify};
use tracing::{info, warn};

use super::run_as::RunAs;

use schema::spec::{Runner, ServerSpec};
use schema::{DesiredState, Kind};

/// What a server's process is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ProcessState {
    Starting,
    Running {
        pid: u32,
    },
    /// Exited; restarting after a backoff.
    BackingOff {
        exit: String,
        retry_in_ms: u64,
    },
    /// Not started, with the reason.
    Failed {
        reason: String,
    },
    /// Not a local process (url or image server).
    External {
        reason: String,
    },
}

/// One server's status: the first replica's state, the restarts of all, and each replica when
/// there is more than one.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerStatus {
    pub name: String,
    pub state: ProcessState,
    pub restarts: u32,
    pub log: PathBuf,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaStatus>,
}

/// One process of a server.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaStatus {
    pub replica: u32,
    pub state: ProcessState,
    pub restarts: u32,
}

struct Supervised {
    spec_hash: String,
    stop: watch::Sender<bool>,
    log: PathBuf,
    replicas: Vec<Arc<Mutex<ReplicaStatus>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Kills one running process so that its supervisor starts it again at once (the gateway's health
/// check calls it when the process stopped answering). A handle outlives its process harmlessly:
/// once that process is gone, calling it does nothing.
#[derive(Clone)]
pub struct Restart {
    notify: Arc<Notify>,
}

impl Restart {
    /// Ask for the restart; returns at once.
    pub fn restart(&self) {
        self.notify.notify_one();
    }
}

/// The MCP channel of a process the runtime just started.
pub struct Attached {
    /// The server's key: `name`, or `project/name` for a server inside a project.
    pub key: String,
    /// Which of the server's `replicas` processes (0-based).
    pub replica: u32,
    pub pid: u32,
    pub stdin: tokio::process::ChildStdin,
    pub stdout: tokio::process::ChildStdout,
    pub restart: Restart,
}

/// Receives the MCP channel of every process the runtime starts.
pub type Attach = Arc<dyn Fn(Attached) + Send + Sync>;

/// The variables a child takes from `mcpctl`'s own environment, when set. Everything else is
/// dropped; a server that needs more declares it in its `env`.
///
/// * `PATH`: finding the program, and `npx`/`uvx` finding `node`/`python`;
/// * `HOME`: caches of npx/uvx and per-user config (replaced by the `--run-as` user's home);
/// * `USER`, `LOGNAME`: who the process runs as (replaced under `--run-as`);
/// * `LANG`, `LC_ALL`, `LC_CTYPE`: text encoding of arguments, files and output;
/// * `TZ`: the local time zone (time servers answer in it);
/// * `TMPDIR`: where temporary files go;
/// * `SSL_CERT_FILE`, `SSL_CERT_DIR`, `NODE_EXTRA_CA_CERTS`: the CA bundle of the machine, so that
///   `npx -y`/`uvx` can fetch packages where TLS goes through a local CA.
///
/// None of them carries a credential (the CA variables are paths to public certificates).
/// Proxies (`HTTPS_PROXY` …) are left out on purpose: their URLs often hold a password.
pub const INHERITED_ENV: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "NODE_EXTRA_CA_CERTS",
];

/// Supervises the local processes of every stdio server.
pub struct LocalRuntime {
    log_dir: PathBuf,
    servers: HashMap<String, Supervised>,
    secrets: crate::secrets::SecretResolver,
    attach: Option<Attach>,
    /// The allowlisted part of the parent's environment, taken once at construction.
    inherited: Vec<(String, String)>,
    run_as: Option<Arc<RunAs>>,
}

/// The child environment: `inherited` (filtered to [`INHERITED_ENV`]), the `run_as` user's
/// identity over it, then `declared` over both. Pure.
pub fn child_env(inherited: &[(String, String)], run_as: Option<&RunAs>, declared: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = inherited.iter().filter(|(k, _)| INHERITED_ENV.contains(&k.as_str())).cloned().collect();
    if let Some(u) = run_as {
        out.retain(|(k, _)| !matches!(k.as_str(), "HOME" | "USER" | "LOGNAME"));
        out.push(("HOME".into(), u.home.display().to_string()));
        out.push(("USER".into(), u.name.clone()));
        out.push(("LOGNAME".into(), u.name.clone()));
    }
    out.retain(|(k, _)| !declared.iter().any(|(d, _)| d == k));
    out.extend(declared.iter().cloned());
    out
}

/// A process's environment, or why it cannot be built (never containing a secret value).
type Env = Result<Vec<(String, String)>, String>;

/// The program and arguments a stdio server runs, or why it cannot run locally.
pub fn command_line(spec: &ServerSpec) -> Result<(String, Vec<String>), String> {
    if let Some(c) = &spec.command {
        return Ok((c.clone(), spec.args.clone()));
    }
    if let Some(p) = &spec.package_name {
        let mut args = Vec::new();
        let program = match spec.runner.unwrap_or_default() {
            Runner::Npx => {
                args.push("-y".to_string());
                "npx"
            }
            Runner::Uvx => "uvx",
        };
        args.push(p.clone());
        args.extend(spec.args.iter().cloned());
        return Ok((program.to_string(), args));
    }
    if spec.url.is_some() {
        return Err("url server: runs elsewhere".into());
    }
    if spec.image.is_some() {
        return Err("image server: needs the kubernetes runtime".into());
    }
    Err("no command".into())
}

impl LocalRuntime {
    /// A runtime writing logs under `log_dir`.
    pub fn new(log_dir: PathBuf) -> Self {
        forbid_same_user_inspection();
        let inherited = std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .filter(|(k, _)| INHERITED_ENV.contains(&k.as_str()))
            .collect();
        Self { log_dir, servers: HashMap::new(), secrets: crate::secrets::SecretResolver::none(), attach: None, inherited, run_as: None }
    }

    /// Run every child as `user` (resolved with [`RunAs::resolve`]). Warns when the age identity
    /// file is readable by that user: a server could then decrypt every secret of the repo.
    pub fn with_run_as(mut self, user: RunAs) -> Self {
        info!(user = %user.name, uid = user.uid, gid = user.gid, "local servers run as this user");
        self.run_as = Some(Arc::new(user));
        self.warn_if_identity_exposed();
        self
    }

    fn warn_if_identity_exposed(&self) {
        if let (Some(user), Some(path)) = (&self.run_as, self.secrets.identity_path()) {
            if user.can_read(path) {
                warn!(user = %user.name, identity = %path.display(), "the age identity file is readable by the --run-as user: servers could decrypt every secret; make it readable by mcpctl's user only (chmod 600)");
            }
        }
    }

    /// Hand each started process's stdin/stdout to `attach` (the gateway's upstream connections).
    pub fn with_attach(mut self, attach: Attach) -> Self {
        self.attach = Some(attach);
        self
    }

    /// Decrypt env values from secrets with `secrets`.
    pub fn with_secrets(mut self, secrets: crate::secrets::SecretResolver) -> Self {
        self.secrets = secrets;
        self.warn_if_identity_exposed();
        self
    }

    fn env(&self, state: &DesiredState, project: Option<&str>, spec: &ServerSpec) -> Env {
        let mut out = Vec::new();
        for e in &spec.env {
            let value = match (&e.value, &e.value_from) {
                (Some(v), _) => v.clone(),
                (None, Some(vf)) => self.secrets.resolve(state, project, &vf.secret_ref).map_err(|err| format!("env {}: {err}", e.name))?,
                (None, None) => String::new(),
            };
            out.push((e.name.clone(), value));
        }
        Ok(out)
    }

    /// Path of a server's log file.
    pub fn log_path(log_dir: &std::path::Path, name: &str) -> PathBuf {
        log_dir.join(format!("{name}.log"))
    }

    /// Make the running processes match the servers of `state`.
    pub async fn sync(&mut self, state: &DesiredState) {
        let mut wanted: HashMap<String, (ServerSpec, Env)> = HashMap::new();
        for res in state.of_kind(Kind::Server) {
            if let Some(spec) = state.server_spec(res) {
                // Servers inside a project are keyed project/name, global ones by name.
                let key = res.metadata.project.as_ref().map_or_else(|| res.name().to_string(), |p| format!("{p}/{}", res.name()));
                let env =
                    if command_line(&spec).is_ok() { self.env(state, res.metadata.project.as_deref(), &spec) } else { Ok(Vec::new()) };
                wanted.insert(key, (spec, env));
            }
        }
        let gone: Vec<String> = self.servers.keys().filter(|k| !wanted.contains_key(*k)).cloned().collect();
        for name in gone {
            self.stop(&name).await;
        }
        for (name, (spec, env)) in wanted {
            use sha2::Digest;
            let env_digest = hex::encode(sha2::Sha256::digest(format!("{env:?}").as_bytes()));
            let hash = serde_json::to_string(&spec).unwrap_or_default() + &env_digest;
            if self.servers.get(&name).is_some_and(|s| s.spec_hash == hash) {
                continue;
            }
            self.stop(&name).await;
            self.start(name, spec, env, hash);
        }
    }

    /// Status of every supervised server, sorted by name.
    pub fn status(&self) -> Vec<ServerStatus> {
        let mut v: Vec<ServerStatus> = self.servers.iter().map(|(name, s)| s.status(name)).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Stop every process.
    pub async fn shutdown(&mut self) {
        let names: Vec<String> = self.servers.keys().cloned().collect();
        for n in names {
            self.stop(&n).await;
        }
    }

    async fn stop(&mut self, name: &str) {
        if let Some(s) = self.servers.remove(name) {
            let _ = s.stop.send(true);
            for t in s.tasks {
                let _ = t.await;
            }
            info!(server = name, "stopped");
        }
    }

    fn start(&mut self, name: String, spec: ServerSpec, env: Env, spec_hash: String) {
        let log = Self::log_path(&self.log_dir, &name.replace('/', "_"));
        let (stop, stop_rx) = watch::channel(false);
        let env = env.map(|declared| child_env(&self.inherited, self.run_as.as_deref(), &declared));
        let mut replicas = Vec::new();
        let mut tasks = Vec::new();
        for replica in 0..spec.replicas.max(1) {
            let status = Arc::new(Mutex::new(ReplicaStatus { replica, state: ProcessState::Starting, restarts: 0 }));
            let process = Process {
                key: name.clone(),
                replica,
                spec: spec.clone(),
                env: env.clone(),
                log: log.clone(),
                status: status.clone(),
                attach: self.attach.clone(),
                run_as: self.run_as.clone(),
            };
            tasks.push(tokio::spawn(supervise(process, stop_rx.clone())));
            replicas.push(status);
        }
        self.servers.insert(name, Supervised { spec_hash, stop, log, replicas, tasks });
    }
}

impl Supervised {
    fn status(&self, name: &str) -> ServerStatus {
        let replicas: Vec<ReplicaStatus> = self.replicas.iter().map(|r| r.lock().expect("status lock").clone()).collect();
        let first = replicas.first().map_or(ProcessState::Starting, |r| r.state.clone());
        ServerStatus {
            name: name.to_string(),
            state: first,
            restarts: replicas.iter().map(|r| r.restarts).sum(),
            log: self.log.clone(),
            replicas: if replicas.len() > 1 { replicas } else { Vec::new() },
        }
    }
}

/// What one supervisor runs: one replica of one server.
struct Process {
    key: String,
    replica: u32,
    spec: ServerSpec,
    env: Env,
    log: PathBuf,
    status: Arc<Mutex<ReplicaStatus>>,
    attach: Option<Attach>,
    run_as: Option<Arc<RunAs>>,
}

/// Make this process non-dumpable, so that processes of the same user (the children) cannot read
/// its `/proc/<pid>/environ` or attach to it. Idempotent; a failure is logged, not fatal.
fn forbid_same_user_inspection() {
    // SAFETY: PR_SET_DUMPABLE with 0 has no memory effects.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        warn!(error = %std::io::Error::last_os_error(), "cannot make mcpctl non-dumpable; children of the same user can read its environment");
    }
}

/// Open (create) a server's log for appending, readable by `mcpctl`'s user only: a server's stderr
/// may hold what it was given, and other servers (possibly of other projects) run on this machine.
fn open_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let f = std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(path)?;
    // A log made by an older version may be group- or world-readable.
    if f.metadata()?.permissions().mode() & 0o077 != 0 {
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(f)
}

fn set(status: &Arc<Mutex<ReplicaStatus>>, state: ProcessState) {
    status.lock().expect("status lock").state = state;
}

async fn supervise(p: Process, mut stop: watch::Receiver<bool>) {
    let Process { key: name, replica, spec, env, log, status, attach, run_as } = p;
    let (program, args) = match command_line(&spec) {
        Ok(c) => c,
        Err(reason) => return set(&status, ProcessState::External { reason }),
    };
    let env = match env {
        Ok(e) => e,
        Err(reason) => return set(&status, ProcessState::Failed { reason }),
    };
    if let Some(dir) = log.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let mut failures: u32 = 0;
    loop {
        let log_file = match open_log(&log) {
            Ok(f) => f,
            Err(e) => return set(&status, ProcessState::Failed { reason: format!("cannot open {}: {e}", log.display()) }),
        };
        let mut cmd = Command::new(&program);
        cmd.args(&args)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(log_file)
            .kill_on_drop(true);
        if let Some(user) = &run_as {
            user.apply(&mut cmd);
        }
        let started = tokio::time::Instant::now();
        let mut asked = false;
        let exit = match cmd.spawn() {
            Ok(mut child) => {
                let pid = child.id().unwrap_or(0);
                set(&status, ProcessState::Running { pid });
                info!(server = %name, replica, pid, "started");
                let restart = Restart { notify: Arc::new(Notify::new()) };
                // Without a gateway, keep stdin open: EOF would end a stdio server.
                let mut _held = None;
                if let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) {
                    match &attach {
                        Some(a) => a(Attached { key: name.clone(), replica, pid, stdin, stdout, restart: restart.clone() }),
                        None => _held = Some((stdin, stdout)),
                    }
                }
                tokio::select! {
                    r = child.wait() => r.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                    _ = restart.notify.notified() => {
                        let _ = child.kill().await;
                        asked = true;
                        "killed: it stopped answering (failed health checks)".to_string()
                    }
                    _ = stop.changed() => {
                        let _ = child.kill().await;
                        return;
                    }
                }
            }
            Err(e) => format!("cannot start `{program}`: {e}"),
        };
        if asked {
            warn!(server = %name, replica, "restarting an unresponsive process");
            status.lock().expect("status lock").restarts += 1;
            if let Ok(mut f) = tokio::fs::OpenOptions::new().append(true).open(&log).await {
                let _ = f.write_all(b"[mcpctl] process killed: it stopped answering health checks; restarting\n").await;
            }
            continue;
        }
        if started.elapsed() > Duration::from_secs(60) {
            failures = 0;
        }
        failures += 1;
        let wait = Duration::from_secs(1u64 << (failures - 1).min(5)).min(Duration::from_secs(30));
        warn!(server = %name, replica, exit = %exit, retry_in = ?wait, "process exited; restarting");
        {
            let mut s = status.lock().expect("status lock");
            s.restarts += 1;
            s.state = ProcessState::BackingOff { exit: exit.clone(), retry_in_ms: wait.as_millis() as u64 };
        }
        if let Ok(mut f) = tokio::fs::OpenOptions::new().append(true).open(&log).await {
            let _ = f.write_all(format!("[mcpctl] process exited ({exit}); restarting in {wait:?}\n").as_bytes()).await;
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
