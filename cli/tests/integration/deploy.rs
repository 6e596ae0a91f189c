//! `deploy/`: the Dockerfile and the kustomize overlays, checked against the real binary. No
//! Docker engine or cluster runs here, so the files are parsed: the Dockerfile by its own
//! instruction syntax, the overlays rendered by `kubectl kustomize` and read into k8s-openapi
//! types. What they pass to `mcpctl` (arguments, `MCPCTL_*` variables) is parsed by the real clap
//! definition (`cli/src/args.rs`), probe paths are looked up in the gateway's OpenAPI document
//! (generated from its routes), and ports, Secrets, volumes and RBAC are followed end to end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use clap::{CommandFactory, Parser};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Container, Namespace, PersistentVolumeClaim, Probe, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

use crate::args::Cli;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

// ---- the binary's side: what clap accepts ----

/// The subcommand a command line selects, after the real parser accepted all of it.
fn parse(argv: &[String]) -> (String, clap::ArgMatches) {
    let full: Vec<String> = std::iter::once("mcpctl".to_string()).chain(argv.iter().cloned()).collect();
    if let Err(e) = Cli::try_parse_from(&full) {
        panic!("mcpctl refuses `{}`:\n{e}", argv.join(" "));
    }
    let m = Cli::command().try_get_matches_from(&full).unwrap();
    let (name, sub) = m.subcommand().expect("a subcommand");
    (name.to_string(), sub.clone())
}

/// Environment variables clap reads for subcommand `sub` (its own arguments and the globals).
fn clap_env(sub: &str) -> BTreeSet<String> {
    let cmd = Cli::command();
    let own = cmd.find_subcommand(sub).unwrap_or_else(|| panic!("no subcommand `{sub}`"));
    cmd.get_arguments()
        .filter(|a| a.is_global_set())
        .chain(own.get_arguments())
        .filter_map(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()))
        .collect()
}

/// Whether the CLI's sources read variable `name` outside clap (`MCPCTL_LOG`, `MCPCTL_LOG_DIR`).
fn read_by_source(name: &str) -> bool {
    let quoted = format!("\"{name}\"");
    let mut stack = vec![root().join("cli/src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") && std::fs::read_to_string(&p).unwrap().contains(&quoted) {
                return true;
            }
        }
    }
    false
}

fn assert_env_known(sub: &str, name: &str, whose: &str) {
    if !name.starts_with("MCPCTL_") {
        return;
    }
    assert!(
        clap_env(sub).contains(name) || read_by_source(name),
        "{whose}: `{name}` is neither an `env` of `mcpctl {sub}` nor read by cli/src (known: {:?})",
        clap_env(sub)
    );
}

/// The port `--listen` binds (the default unless the command line gives one).
fn listen_port(sub: &clap::ArgMatches) -> u16 {
    sub.get_one::<std::net::SocketAddr>("listen").expect("--listen").port()
}

/// The routes the gateway serves, from its OpenAPI document (generated from the handlers).
fn gateway_paths() -> BTreeSet<String> {
    let doc = serde_json::to_value(<gateway::openapi::ApiDoc as utoipa::OpenApi>::openapi()).unwrap();
    doc["paths"].as_object().unwrap().keys().cloned().collect()
}

// ---- the Dockerfile ----

/// `INSTRUCTION arguments`, continuation lines joined, comments dropped, one list per stage.
fn dockerfile_stages(text: &str) -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let t = line.trim();
        if pending.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        if t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            pending.push_str(head);
            pending.push(' ');
            continue;
        }
        pending.push_str(t);
        let full = std::mem::take(&mut pending);
        let (ins, rest) = full.split_once(char::is_whitespace).unwrap_or((&full, ""));
        let ins = ins.to_ascii_uppercase();
        if ins == "FROM" {
            stages.push(Vec::new());
        }
        match stages.last_mut() {
            Some(s) => s.push((ins, rest.trim().to_string())),
            None => assert!(ins == "ARG", "`{ins}` before the first FROM"),
        }
    }
    stages
}

/// The JSON array of an exec-form instruction (`["a", "b"]`); shell form is refused.
fn exec_form(ins: &str, rest: &str) -> Vec<String> {
    serde_json::from_str(rest).unwrap_or_else(|e| panic!("{ins} must be in exec form (a JSON array), got `{rest}`: {e}"))
}

fn one<'a>(stage: &'a [(String, String)], ins: &str) -> &'a str {
    let found: Vec<&str> = stage.iter().filter(|(i, _)| i == ins).map(|(_, r)| r.as_str()).collect();
    assert_eq!(found.len(), 1, "the final stage needs exactly one {ins}, has {found:?}");
    found[0]
}

/// The final stage's `USER` as a numeric uid.
fn dockerfile_uid() -> i64 {
    let text = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let stages = dockerfile_stages(&text);
    let user = one(stages.last().unwrap(), "USER");
    user.split(':').next().unwrap().parse().unwrap_or_else(|_| panic!("USER `{user}` must be a numeric uid (runAsNonRoot checks it)"))
}

#[test]
fn the_dockerfile_runs_mcpctl_as_a_fixed_non_root_user_on_its_listen_port_with_a_healthz_check() {
    let text = std::fs::read_to_string(root().join("deploy/Dockerfile")).unwrap();
    let stages = dockerfile_stages(&text);
    assert!(stages.len() >= 2, "a multi-stage build (builder, then a small final image)");
    let builder = &stages[0];
    assert!(builder.iter().any(|(i, r)| i == "RUN" && r.contains("cargo build --release --locked -p mcpctl")), "the builder builds mcpctl");
    let last = stages.last().unwrap();
    let from = one(last, "FROM");
    assert!(from.contains("-slim") || from.contains("distroless"), "a small final image, got `{from}`");

    assert_ne!(dockerfile_uid(), 0, "USER must not be root");

    // EXPOSE is the port `mcpctl serve` listens on by default, and the port CMD listens on.
    let expose: u16 = one(last, "EXPOSE").trim_end_matches("/tcp").parse().unwrap();
    let (_, defaults) = parse(&["serve".to_string()]);
    assert_eq!(expose, listen_port(&defaults), "EXPOSE = the default --listen port of `mcpctl serve`");

    // ENTRYPOINT + CMD is a command line the real parser accepts, naming a serving subcommand.
    let entry = exec_form("ENTRYPOINT", one(last, "ENTRYPOINT"));
    assert_eq!(entry, ["mcpctl"], "ENTRYPOINT runs the binary (on PATH)");
    let copied = last.iter().any(|(i, r)| i == "COPY" && r.starts_with("--from=builder") && r.ends_with("/usr/local/bin/mcpctl"));
    assert!(copied, "the binary is copied from the builder onto PATH");
    let cmd = exec_form("CMD", one(last, "CMD"));
    let (sub, m) = parse(&cmd);
    assert!(["serve", "gateway"].contains(&sub.as_str()), "CMD serves HTTP, got `{sub}`");
    assert_eq!(listen_port(&m), expose, "CMD listens on the EXPOSEd port");
    let addr = m.get_one::<std::net::SocketAddr>("listen").unwrap();
    assert!(addr.ip().is_unspecified(), "in a container the gateway must listen on all addresses, not {addr}");

    // HEALTHCHECK asks /healthz, a route of the gateway, on that port.
    let health = one(last, "HEALTHCHECK");
    let probe = health.split_once("CMD").expect("HEALTHCHECK … CMD [...]").1.trim();
    let argv = exec_form("HEALTHCHECK CMD", probe);
    let url = argv.iter().find(|a| a.starts_with("http://")).expect("a URL in the HEALTHCHECK");
    assert_eq!(url, &format!("http://127.0.0.1:{expose}/healthz"));
    assert!(gateway_paths().contains("/healthz"));
    for opt in ["--interval=", "--timeout=", "--retries="] {
        assert!(health.contains(opt), "HEALTHCHECK sets {opt}");
    }
    let installs = last.iter().filter(|(i, _)| i == "RUN").any(|(_, r)| r.contains(argv[0].as_str()));
    assert!(installs, "the final stage installs `{}` for the HEALTHCHECK", argv[0]);

    // OCI labels.
    let labels: String = last.iter().filter(|(i, _)| i == "LABEL").map(|(_, r)| r.as_str()).collect::<Vec<_>>().join(" ");
    for key in ["title", "description", "version", "revision", "created", "licenses", "source"] {
        assert!(labels.contains(&format!("org.opencontainers.image.{key}=")), "LABEL org.opencontainers.image.{key}");
    }
    // ENV names the binary knows.
    for (_, rest) in last.iter().filter(|(i, _)| i == "ENV") {
        for pair in rest.split_whitespace() {
            let name = pair.split('=').next().unwrap();
            assert_env_known(&sub, name, "Dockerfile ENV");
        }
    }
    assert!(root().join(".dockerignore").is_file(), "a .dockerignore keeps target/ out of the build context");

    // The builder's toolchain builds the locked dependencies: at least their newest rust-version.
    let arg = text.lines().find_map(|l| l.strip_prefix("ARG RUST_VERSION=")).expect("ARG RUST_VERSION=…");
    let image = version(arg);
    let (needed, by) = locked_msrv().unwrap_or_else(|| {
        eprintln!("SKIPPED (toolchain check): no cargo registry sources found");
        ((0, 0), String::new())
    });
    assert!(image >= needed, "RUST_VERSION={arg} is older than {by}'s rust-version {needed:?}");
}

fn version(s: &str) -> (u32, u32) {
    let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// The newest `rust-version` among Cargo.lock's registry packages, read from the unpacked sources
/// in `$CARGO_HOME/registry/src` (`None` when they are not there).
fn locked_msrv() -> Option<((u32, u32), String)> {
    let home =
        std::env::var_os("CARGO_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")))?;
    let indexes: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src")).ok()?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let mut best = None;
    for package in lock.split("[[package]]") {
        let field =
            |k: &str| package.lines().find_map(|l| l.strip_prefix(&format!("{k} = \"")).map(|v| v.trim_end_matches('"').to_string()));
        let (Some(name), Some(v), Some(_)) = (field("name"), field("version"), field("source")) else { continue };
        let Some(manifest) = indexes.iter().map(|i| i.join(format!("{name}-{v}/Cargo.toml"))).find(|p| p.is_file()) else { continue };
        let text = std::fs::read_to_string(manifest).unwrap();
        if let Some(rv) = text.lines().find_map(|l| l.strip_prefix("rust-version = \"")) {
            let rv = version(rv.trim_end_matches('"'));
            if best.as_ref().is_none_or(|(b, _)| rv > *b) {
                best = Some((rv, format!("{name} {v}")));
            }
        }
    }
    best
}

// ---- the Kubernetes manifests ----

/// `kubectl kustomize DIR`, or `None` (skipped) where kubectl is not installed outside CI.
fn kustomize(dir: &Path) -> Option<String> {
    let out = match Command::new("kubectl").arg("kustomize").arg(dir).output() {
        Ok(o) => o,
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("kubectl is not installed: CI must render the manifests (apt-get install kubernetes-client)")
        }
        Err(_) => {
            eprintln!("SKIPPED: kubectl is not installed (apt-get install kubernetes-client)");
            return None;
        }
    };
    assert!(out.status.success(), "kubectl kustomize {} failed:\n{}", dir.display(), String::from_utf8_lossy(&out.stderr));
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The rendered objects, each also read into its k8s-openapi type (which must keep every field:
/// a misspelt field would be dropped silently by Kubernetes too).
#[derive(Default)]
struct Objects {
    namespaces: Vec<Namespace>,
    accounts: Vec<ServiceAccount>,
    roles: Vec<Role>,
    bindings: Vec<RoleBinding>,
    services: Vec<Service>,
    policies: Vec<NetworkPolicy>,
    claims: Vec<PersistentVolumeClaim>,
    secrets: Vec<Secret>,
    deployments: Vec<Deployment>,
    budgets: Vec<PodDisruptionBudget>,
}

fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) -> T {
    let what = format!("{} {}", doc["kind"], doc["metadata"]["name"]);
    let t: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&t).unwrap();
    let mut lost = Vec::new();
    dropped(doc, &back, String::new(), &mut lost);
    assert!(lost.is_empty(), "{what}: fields the Kubernetes type does not know (misspelt?): {lost:?}");
    t
}

/// Paths of `orig` that `back` lacks or changed.
fn dropped(orig: &Value, back: &Value, at: String, out: &mut Vec<String>) {
    match (orig, back) {
        (Value::Object(o), Value::Object(b)) => {
            for (k, v) in o {
                match b.get(k) {
                    Some(bv) => dropped(v, bv, format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k}")),
                }
            }
        }
        (Value::Array(o), Value::Array(b)) if o.len() == b.len() => {
            for (i, (v, bv)) in o.iter().zip(b).enumerate() {
                dropped(v, bv, format!("{at}[{i}]"), out);
            }
        }
        (o, b) if o == b => {}
        _ => out.push(format!("{at} ({orig} became {back})")),
    }
}

fn objects(yaml: &str) -> Objects {
    let docs: Vec<Value> = serde_saphyr::from_multiple(yaml).expect("kustomize output is YAML");
    let mut o = Objects::default();
    for doc in docs.iter().filter(|d| !d.is_null()) {
        match doc["kind"].as_str().unwrap() {
            "Namespace" => o.namespaces.push(typed(doc)),
            "ServiceAccount" => o.accounts.push(typed(doc)),
            "Role" => o.roles.push(typed(doc)),
            "RoleBinding" => o.bindings.push(typed(doc)),
            "Service" => o.services.push(typed(doc)),
            "NetworkPolicy" => o.policies.push(typed(doc)),
            "PersistentVolumeClaim" => o.claims.push(typed(doc)),
            "Secret" => o.secrets.push(typed(doc)),
            "Deployment" => o.deployments.push(typed(doc)),
            "PodDisruptionBudget" => o.budgets.push(typed(doc)),
            // ClusterRoles and the like are not wanted: mcpctl needs nothing cluster-wide.
            other => panic!("unexpected kind {other} in the manifests"),
        }
    }
    o
}

fn ns_name(m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (m.namespace.clone().unwrap_or_default(), m.name.clone().unwrap_or_default())
}

fn labels_match(selector: &BTreeMap<String, String>, labels: &BTreeMap<String, String>) -> bool {
    !selector.is_empty() && selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

/// The keys of Secret `namespace/name`.
fn secret_keys(o: &Objects, namespace: &str, name: &str) -> BTreeSet<String> {
    let s = o
        .secrets
        .iter()
        .find(|s| ns_name(&s.metadata) == (namespace.to_string(), name.to_string()))
        .unwrap_or_else(|| panic!("no Secret {namespace}/{name}"));
    s.data.iter().flat_map(|d| d.keys()).chain(s.string_data.iter().flat_map(|d| d.keys())).cloned().collect()
}

/// A probe or Service port, resolved against the container's ports.
fn port_number(c: &Container, p: &IntOrString) -> i32 {
    match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            c.ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("container {} has no port named `{name}`", c.name))
                .container_port
        }
    }
}

fn http_probe(c: &Container, p: &Option<Probe>, what: &str) -> (String, i32) {
    let g = p.as_ref().and_then(|p| p.http_get.as_ref()).unwrap_or_else(|| panic!("container {}: an HTTP {what}", c.name));
    (g.path.clone().unwrap_or_default(), port_number(c, &g.port))
}

/// Every check of one rendered overlay; returns the subcommands its containers run.
fn check_overlay(o: &Objects) -> BTreeSet<String> {
    let paths = gateway_paths();
    let namespaces: BTreeSet<String> = o.namespaces.iter().filter_map(|n| n.metadata.name.clone()).collect();
    let uid = dockerfile_uid();
    let mut subcommands = BTreeSet::new();
    let mut server_namespaces = BTreeSet::new();
    let mut accounts_used = BTreeSet::new();
    let mut serving_ports: BTreeMap<String, i32> = BTreeMap::new();
    for d in &o.deployments {
        let (ns, name) = ns_name(&d.metadata);
        assert!(namespaces.contains(&ns), "Deployment {name}: namespace {ns} is not in the manifests");
        let spec = d.spec.as_ref().unwrap();
        let pod = spec.template.spec.as_ref().unwrap();
        let pod_labels = spec.template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        assert!(labels_match(spec.selector.match_labels.as_ref().unwrap(), &pod_labels), "Deployment {name}: selector ≠ pod labels");
        let sa = pod.service_account_name.clone().unwrap_or_else(|| panic!("Deployment {name}: a serviceAccountName"));
        assert!(o.accounts.iter().any(|a| ns_name(&a.metadata) == (ns.clone(), sa.clone())), "Deployment {name}: no ServiceAccount {sa}");
        accounts_used.insert((ns.clone(), sa));
        let psc = pod.security_context.as_ref().unwrap_or_else(|| panic!("Deployment {name}: a pod securityContext"));
        assert_eq!(psc.run_as_non_root, Some(true), "Deployment {name}: runAsNonRoot");
        assert_eq!(psc.run_as_user, Some(uid), "Deployment {name}: runAsUser = the Dockerfile's USER");
        let volumes = pod.volumes.clone().unwrap_or_default();
        for v in &volumes {
            if let Some(s) = &v.secret {
                let keys = secret_keys(o, &ns, s.secret_name.as_deref().unwrap());
                for item in s.items.iter().flatten() {
                    assert!(keys.contains(&item.key), "Deployment {name}: volume {} wants key {} the Secret lacks", v.name, item.key);
                }
            }
            if let Some(c) = &v.persistent_volume_claim {
                let found = o.claims.iter().any(|p| ns_name(&p.metadata) == (ns.clone(), c.claim_name.clone()));
                assert!(found, "Deployment {name}: no PersistentVolumeClaim {}", c.claim_name);
            }
        }
        for c in &pod.containers {
            let whose = format!("Deployment {name}, container {}", c.name);
            let image = c.image.as_deref().unwrap();
            assert!(image.contains(':'), "{whose}: image `{image}` has a tag (the overlay's images:)");
            let args = c.args.clone().unwrap_or_default();
            assert!(c.command.is_none(), "{whose}: the image's ENTRYPOINT (mcpctl) runs; set args only");
            let (sub, m) = parse(&args);
            subcommands.insert(sub.clone());
            for ns_flag in ["namespace", "kube_namespace"] {
                if let Ok(Some(n)) = m.try_get_one::<String>(ns_flag) {
                    if ns_flag == "kube_namespace"
                        || m.try_get_one::<crate::args::RuntimeKind>("runtime").ok().flatten()
                            == Some(&crate::args::RuntimeKind::Kubernetes)
                    {
                        server_namespaces.insert(n.clone());
                    }
                }
            }
            let sc = c.security_context.as_ref().unwrap_or_else(|| panic!("{whose}: a securityContext"));
            assert_eq!(sc.allow_privilege_escalation, Some(false), "{whose}: allowPrivilegeEscalation: false");
            assert_eq!(sc.read_only_root_filesystem, Some(true), "{whose}: readOnlyRootFilesystem");
            let mounts = c.volume_mounts.clone().unwrap_or_default();
            for mount in &mounts {
                assert!(volumes.iter().any(|v| v.name == mount.name), "{whose}: mount of unknown volume {}", mount.name);
            }
            for e in c.env.iter().flatten() {
                assert_env_known(&sub, &e.name, &whose);
                if let Some(r) = e.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()) {
                    assert!(secret_keys(o, &ns, &r.name).contains(&r.key), "{whose}: {} wants key {} of Secret {}", e.name, r.key, r.name);
                }
                // A `…_FILE` variable names a file some mount provides (a Secret item, say).
                if let (true, Some(file)) = (e.name.ends_with("_FILE"), e.value.as_deref()) {
                    let provided = mounts.iter().any(|mnt| {
                        let Some(rel) = file.strip_prefix(&format!("{}/", mnt.mount_path)) else { return false };
                        let v = volumes.iter().find(|v| v.name == mnt.name).unwrap();
                        match &v.secret {
                            Some(s) => s.items.iter().flatten().any(|i| i.path == rel),
                            None => true,
                        }
                    });
                    assert!(provided, "{whose}: {}={file} is not provided by any volume mount", e.name);
                }
            }
            if ["serve", "gateway"].contains(&sub.as_str()) {
                let listen = i32::from(listen_port(&m));
                let addr = m.get_one::<std::net::SocketAddr>("listen").unwrap();
                assert!(addr.ip().is_unspecified(), "{whose}: --listen {addr} is unreachable from the Service");
                let declared: Vec<i32> = c.ports.iter().flatten().map(|p| p.container_port).collect();
                assert_eq!(declared, [listen], "{whose}: containerPort = --listen port");
                let ready = http_probe(c, &c.readiness_probe, "readinessProbe");
                let live = http_probe(c, &c.liveness_probe, "livenessProbe");
                assert_eq!(ready, ("/readyz".to_string(), listen), "{whose}: readiness on /readyz at the listen port");
                assert_eq!(live, ("/healthz".to_string(), listen), "{whose}: liveness on /healthz at the listen port");
                for p in [&ready.0, &live.0] {
                    assert!(paths.contains(p), "{whose}: probe path {p} is not a gateway route ({paths:?})");
                }
                serving_ports.insert(name.clone(), listen);
            } else {
                assert!(c.ports.is_none() && c.readiness_probe.is_none() && c.liveness_probe.is_none(), "{whose}: `{sub}` serves no HTTP");
            }
        }
    }

    // Services reach the serving pods on their listen port.
    for s in &o.services {
        let (ns, name) = ns_name(&s.metadata);
        let spec = s.spec.as_ref().unwrap();
        let selector = spec.selector.clone().unwrap_or_default();
        let targets: Vec<&Deployment> = o
            .deployments
            .iter()
            .filter(|d| {
                d.metadata.namespace.as_deref() == Some(&ns)
                    && labels_match(&selector, d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.as_ref().unwrap())
            })
            .collect();
        assert!(!targets.is_empty(), "Service {name} selects no Deployment");
        for d in targets {
            let dname = d.metadata.name.clone().unwrap();
            let want = *serving_ports.get(&dname).unwrap_or_else(|| panic!("Service {name} selects {dname}, which serves no HTTP"));
            let c = &d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0];
            for p in spec.ports.iter().flatten() {
                let target = p.target_port.clone().unwrap_or(IntOrString::Int(p.port));
                assert_eq!(port_number(c, &target), want, "Service {name} → {dname}: targetPort = --listen port");
            }
        }
    }

    // RBAC: only what the Kubernetes runtime calls, only in the servers' namespace.
    let allowed: BTreeSet<(&str, &str)> =
        [("apps", "deployments"), ("", "services"), ("", "secrets"), ("", "pods"), ("", "pods/attach")].into_iter().collect();
    for r in &o.roles {
        let (ns, name) = ns_name(&r.metadata);
        assert!(server_namespaces.contains(&ns), "Role {name} is in {ns}, not a servers' namespace {server_namespaces:?}");
        for rule in r.rules.iter().flatten() {
            for g in rule.api_groups.iter().flatten() {
                for res in rule.resources.iter().flatten() {
                    assert!(allowed.contains(&(g.as_str(), res.as_str())), "Role {name} grants `{g}/{res}`, beyond {allowed:?}");
                }
            }
            assert!(!rule.verbs.iter().any(|v| v == "*") && rule.resource_names.is_none(), "Role {name}: explicit verbs");
        }
        let bound = o.bindings.iter().any(|b| {
            b.metadata.namespace.as_deref() == Some(&ns)
                && b.role_ref.kind == "Role"
                && b.role_ref.name == name
                && b.subjects.iter().flatten().all(|s| {
                    s.kind == "ServiceAccount" && accounts_used.contains(&(s.namespace.clone().unwrap_or_default(), s.name.clone()))
                })
        });
        assert!(bound, "Role {name} is bound to the pods' ServiceAccount");
    }
    for n in &server_namespaces {
        assert!(namespaces.contains(n), "the servers' namespace {n} is created");
        assert!(o.roles.iter().any(|r| r.metadata.namespace.as_deref() == Some(n)), "a Role in the servers' namespace {n}");
    }

    // NetworkPolicies: named ports exist; budgets select pods with room to spare.
    for p in &o.policies {
        for rule in p.spec.as_ref().unwrap().ingress.iter().flatten() {
            for port in rule.ports.iter().flatten() {
                if let Some(IntOrString::String(named)) = &port.port {
                    let known = o.deployments.iter().flat_map(|d| &d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers);
                    assert!(
                        known.flat_map(|c| c.ports.iter().flatten()).any(|cp| cp.name.as_ref() == Some(named)),
                        "NetworkPolicy port {named}"
                    );
                }
            }
        }
    }
    for b in &o.budgets {
        let spec = b.spec.as_ref().unwrap();
        let sel = spec.selector.as_ref().and_then(|s| s.match_labels.clone()).unwrap();
        let d = o
            .deployments
            .iter()
            .find(|d| labels_match(&sel, d.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.as_ref().unwrap()))
            .expect("the PodDisruptionBudget selects a Deployment");
        let replicas = d.spec.as_ref().unwrap().replicas.unwrap_or(1);
        let IntOrString::Int(min) = spec.min_available.clone().expect("minAvailable") else { panic!("minAvailable as a number") };
        assert!(min < replicas, "PodDisruptionBudget minAvailable {min} < replicas {replicas}, or no node could ever drain");
    }
    subcommands
}

#[test]
fn the_single_overlay_runs_one_serve_on_sqlite_on_a_volume() {
    let Some(yaml) = kustomize(&root().join("deploy/kubernetes/overlays/single")) else { return };
    let o = objects(&yaml);
    assert_eq!(check_overlay(&o), BTreeSet::from(["serve".to_string()]));
    assert_eq!(o.deployments.len(), 1);
    let d = o.deployments[0].spec.as_ref().unwrap();
    assert_eq!(d.replicas, Some(1), "one writer to SQLite");
    assert_eq!(d.strategy.as_ref().and_then(|s| s.type_.as_deref()), Some("Recreate"), "never two pods on one SQLite file");
    let c = &d.template.spec.as_ref().unwrap().containers[0];
    let url = c.env.iter().flatten().find(|e| e.name == "MCPCTL_DATABASE_URL").and_then(|e| e.value.clone()).unwrap();
    let path = url.strip_prefix("sqlite://").expect("SQLite");
    let on_claim = c.volume_mounts.iter().flatten().any(|m| {
        path.starts_with(&format!("{}/", m.mount_path))
            && d.template.spec.as_ref().unwrap().volumes.iter().flatten().any(|v| v.name == m.name && v.persistent_volume_claim.is_some())
    });
    assert!(on_claim, "the database {path} lives on the PersistentVolumeClaim");
}

#[test]
fn the_scaled_overlay_runs_gateway_replicas_and_one_reconciler_on_postgres() {
    let Some(yaml) = kustomize(&root().join("deploy/kubernetes/overlays/scaled")) else { return };
    let o = objects(&yaml);
    assert_eq!(check_overlay(&o), BTreeSet::from(["gateway".to_string(), "reconcile".to_string()]));
    for d in &o.deployments {
        let spec = d.spec.as_ref().unwrap();
        let c = &spec.template.spec.as_ref().unwrap().containers[0];
        let (sub, _) = parse(c.args.as_ref().unwrap());
        let db = c.env.iter().flatten().find(|e| e.name == "MCPCTL_DATABASE_URL").expect("MCPCTL_DATABASE_URL");
        assert!(db.value_from.as_ref().and_then(|f| f.secret_key_ref.as_ref()).is_some(), "{sub}: the database URL comes from the Secret");
        match sub.as_str() {
            "gateway" => assert!(spec.replicas.unwrap_or(1) > 1, "several gateways"),
            _ => {
                assert_eq!(spec.replicas, Some(1), "one active reconciler");
                assert_eq!(spec.strategy.as_ref().and_then(|s| s.type_.as_deref()), Some("Recreate"), "no two reconcilers in a rollout");
            }
        }
    }
    let secret = o.secrets.iter().find(|s| s.metadata.name.as_deref() == Some("mcpctl")).unwrap();
    let url = &secret.string_data.as_ref().unwrap()["database-url"];
    assert!(url.starts_with("postgres://"), "the scaled overlay shares Postgres");
    assert_eq!(o.budgets.len(), 1, "a PodDisruptionBudget for the gateways");
}
