//! A real LiteLLM proxy on 127.0.0.1 with mock models (no provider is ever reached): the model
//! peer of the chat and gate tests. Std only, so the CLI's tests include it too (`#[path]`).
//!
//! The binary is `$MCPCTL_PEER_LITELLM`, else `~/.cache/mcpctl-peers/litellm/bin/litellm`.
//! Missing, it skips the test (printing SKIPPED) outside CI and fails it under `CI`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest wait for the proxy to answer its readiness check (it starts in ~6 s when idle).
pub const START_TIMEOUT: Duration = Duration::from_secs(120);

/// A running proxy; killed when dropped.
pub struct LiteLlm {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl LiteLlm {
    /// Start with one model per `(name, mock response)`; `None` (SKIPPED) without the binary.
    pub fn start(models: &[(&str, &str)]) -> Option<LiteLlm> {
        let dir = tempfile::tempdir().unwrap();
        let mut config = String::from("model_list:\n");
        for (name, reply) in models {
            // A loopback api_base: a mock that stopped mocking could not reach a real provider.
            config += &format!(
                "  - model_name: {name}\n    litellm_params: {{model: openai/{name}, api_key: sk-none, api_base: 'http://127.0.0.1:9/v1', mock_response: {}}}\n",
                serde_json::to_string(reply).unwrap()
            );
        }
        std::fs::write(dir.path().join("config.yaml"), config).unwrap();
        Self::launch(dir, "config.yaml")
    }

    /// Start from a directory of our own holding `config` (and the handlers it names), copied
    /// first; `None` (SKIPPED) without the binary. (Used by the CLI's tests, which include this
    /// file; the gateway's own do not.)
    #[allow(dead_code)]
    pub fn start_dir(src: &std::path::Path, config: &str) -> Option<LiteLlm> {
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(src).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
        }
        Self::launch(dir, config)
    }

    fn launch(dir: tempfile::TempDir, config: &str) -> Option<LiteLlm> {
        let bin = std::env::var("MCPCTL_PEER_LITELLM")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| format!("{}/.cache/mcpctl-peers/litellm/bin/litellm", std::env::var("HOME").unwrap_or_default()));
        if !std::path::Path::new(&bin).exists() {
            if std::env::var_os("CI").is_some() {
                panic!("LiteLLM is not installed at {bin}: CI must run the real model peer");
            }
            eprintln!("SKIPPED: LiteLLM is not installed at {bin} (set MCPCTL_PEER_LITELLM)");
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new(&bin)
            .args(["--config", config, "--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(dir.path())
            .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            .env("LITELLM_DANGEROUSLY_PERMIT_WEAK_OR_UNSET_MASTER_KEY", "true")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("litellm.log")).unwrap())
            .spawn()
            .unwrap();
        let me = LiteLlm { port, child, _dir: dir };
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if me.get("/health/readiness").is_some_and(|(status, _)| status == 200) {
                return Some(me);
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("LiteLLM did not start within {START_TIMEOUT:?}: {}", me.log());
    }

    /// `http://127.0.0.1:PORT/v1`, an `Llm`'s `url`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self._dir.path().join("litellm.log")).unwrap_or_default()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").ok()?;
        let mut resp = String::new();
        s.read_to_string(&mut resp).ok()?;
        let status = resp.split_whitespace().nth(1)?.parse().ok()?;
        Some((status, resp))
    }
}

impl Drop for LiteLlm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
