//! A real headless Chromium driven over W3C WebDriver: Debian's `chromedriver` started on
//! 127.0.0.1 by the test, spoken to with reqwest (the few commands the UI's browser test uses:
//! navigate, find, click, type, run a script, take a screenshot). A WebDriver client crate would
//! bring a second copy of http, cookie and the icu crates for what is a dozen JSON requests.
//!
//! `chromium` and `chromedriver` are found on PATH (`apt-get install chromium chromium-driver`).
//! Missing, [`Browser::start`] skips the test (printing SKIPPED) outside CI and fails it under
//! `CI`. Each browser gets a fresh `--user-data-dir`; the session (so the browser) and chromedriver
//! are ended when the [`Browser`] is dropped, a failed test included.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Longest wait for chromedriver to answer `/status`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a page load or a script.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The flags every browser of the tests starts with (no network beyond the page, no first-run
/// UI, a profile of its own).
pub const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(name)).find(|p| p.is_file())
}

/// One WebDriver session in a headless Chromium.
pub struct Browser {
    http: reqwest::Client,
    session: String,
    base: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

/// One element of the page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// A browser at a `width`×`height` window; `None` (SKIPPED) without chromium/chromedriver.
    pub async fn start(width: u32, height: u32) -> Option<Browser> {
        let (Some(chromium), Some(driver)) = (on_path("chromium"), on_path("chromedriver")) else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "chromium and chromedriver are not on PATH: CI must run the browser test (apt-get install chromium chromium-driver)"
                );
            }
            eprintln!("SKIPPED: chromium or chromedriver not on PATH (apt-get install chromium chromium-driver)");
            return None;
        };
        mcpctl_gateway::install_crypto();
        let profile = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver)
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(profile.path().join("chromedriver.log")).unwrap())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder().no_proxy().timeout(PAGE_TIMEOUT + Duration::from_secs(10)).build().unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let ready = http.get(format!("{base}/status")).send().await.ok().filter(|r| r.status().is_success());
            if ready.is_some() {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer within {START_TIMEOUT:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| (*s).to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().join("profile").display()));
        args.push(format!("--window-size={width},{height}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let mut me = Browser { http, session: String::new(), base, driver, _profile: profile };
        let v = me.cmd(reqwest::Method::POST, "", Some(caps)).await;
        me.session = v["sessionId"].as_str().expect("a session id").to_string();
        let ms = u64::try_from(PAGE_TIMEOUT.as_millis()).unwrap();
        me.cmd(reqwest::Method::POST, "/timeouts", Some(json!({"pageLoad": ms, "script": ms, "implicit": 2000}))).await;
        Some(me)
    }

    /// One WebDriver command under the session; its `value`. Panics on a WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method.clone(), path, body).await.unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    /// One WebDriver command; its `value`, or the error answered.
    async fn try_cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let url = if self.session.is_empty() {
            format!("{}/session", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut rq = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            rq = rq.json(&b);
        } else if method == reqwest::Method::POST {
            rq = rq.json(&json!({}));
        }
        let resp = rq.send().await.map_err(|e| e.to_string())?;
        let status = resp.status();
        let v: Value = resp.json().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{status} {v}"));
        }
        Ok(v.get("value").cloned().unwrap_or(v))
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    pub async fn url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_string()
    }

    /// Wait (up to [`PAGE_TIMEOUT`]) until the page's URL satisfies `ok` (a click that
    /// navigates returns before the new page is in); the URL.
    pub async fn wait_url(&self, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        loop {
            let url = self.url().await;
            if ok(&url) || Instant::now() > deadline {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait (up to [`PAGE_TIMEOUT`]) until the text of the first `css` element holds `want`
    /// (read by a script, so a page being replaced is no error); the text seen last.
    pub async fn wait_text(&self, css: &str, want: &str) -> String {
        let deadline = Instant::now() + PAGE_TIMEOUT;
        let script = "const e = document.querySelector(arguments[0]); return e ? e.textContent : '';";
        loop {
            let text = self.try_cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": [css]}))).await;
            let text = text.ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
            if text.contains(want) || Instant::now() > deadline {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The first element matching a CSS selector (waiting up to the implicit timeout).
    pub async fn find(&self, css: &str) -> Element {
        let v = self.cmd(reqwest::Method::POST, "/element", Some(json!({"using": "css selector", "value": css}))).await;
        Element(v[ELEMENT].as_str().unwrap_or_else(|| panic!("no element `{css}`: {v}")).to_string())
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let v = self.cmd(reqwest::Method::POST, "/elements", Some(json!({"using": "css selector", "value": css}))).await;
        v.as_array().unwrap().iter().map(|e| Element(e[ELEMENT].as_str().unwrap().to_string())).collect()
    }

    /// The link with exactly this text.
    pub async fn link(&self, text: &str) -> Element {
        let v = self.cmd(reqwest::Method::POST, "/element", Some(json!({"using": "link text", "value": text}))).await;
        Element(v[ELEMENT].as_str().unwrap_or_else(|| panic!("no link `{text}`: {v}")).to_string())
    }

    pub async fn click(&self, e: &Element) {
        self.cmd(reqwest::Method::POST, &format!("/element/{}/click", e.0), None).await;
    }

    pub async fn type_into(&self, e: &Element, text: &str) {
        self.cmd(reqwest::Method::POST, &format!("/element/{}/value", e.0), Some(json!({"text": text}))).await;
    }

    pub async fn text(&self, e: &Element) -> String {
        self.cmd(reqwest::Method::GET, &format!("/element/{}/text", e.0), None).await.as_str().unwrap_or_default().to_string()
    }

    /// Run `script` (a function body; `arguments` are `args`) and return its value.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": args}))).await
    }

    /// Run `script` that calls `arguments[arguments.length - 1]` with its result.
    pub async fn execute_async(&self, script: &str, args: Value) -> Value {
        self.cmd(reqwest::Method::POST, "/execute/async", Some(json!({"script": script, "args": args}))).await
    }

    /// Save a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// End the session (the browser quits).
    pub async fn quit(mut self) {
        self.cmd(reqwest::Method::DELETE, "", None).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::{Read, Write};
        // A test that failed never quit: end the session first, or the browser (which
        // chromedriver starts in a process group of its own) outlives the driver.
        if !self.session.is_empty() {
            let addr = self.base.trim_start_matches("http://");
            if let Ok(mut s) = std::net::TcpStream::connect(addr) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    s,
                    "DELETE /session/{} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    self.session
                );
                let _ = s.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
