//! An in-test OpenBao: the KV v2 routes mcpctl uses (read, write, delete-all-versions, metadata)
//! on mount `secret`, with a set of valid tokens (anything else gets 403, as an expired token
//! does), injectable 5xx answers, and a write that never answers (to kill a migration mid-way).
//! Runs on its own thread and runtime, so sync tests can use it too.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

#[derive(Default)]
pub struct BaoState {
    /// path → values (latest version).
    pub kv: BTreeMap<String, BTreeMap<String, String>>,
    pub tokens: HashSet<String>,
    /// Answer this many next requests with 503.
    pub fail_next: u32,
    /// (method, route after `/v1/secret/`, status).
    pub requests: Vec<(String, String, u16)>,
    /// Never answer writes after this many have succeeded.
    pub hang_after_writes: Option<usize>,
    pub writes: usize,
}

pub struct FakeBao {
    pub url: String,
    pub state: Arc<Mutex<BaoState>>,
}

impl FakeBao {
    pub fn start(tokens: &[&str]) -> FakeBao {
        let state = Arc::new(Mutex::new(BaoState { tokens: tokens.iter().map(|t| t.to_string()).collect(), ..Default::default() }));
        let (tx, rx) = std::sync::mpsc::channel();
        let st = state.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new().fallback(move |m: Method, u: Uri, h: HeaderMap, b: Bytes| handle(st.clone(), m, u, h, b));
                axum::serve(listener, app).await.unwrap();
            });
        });
        let addr = rx.recv().unwrap();
        FakeBao { url: format!("http://{addr}"), state }
    }

    pub fn get(&self, path: &str) -> Option<BTreeMap<String, String>> {
        self.state.lock().unwrap().kv.get(path).cloned()
    }

    pub fn statuses(&self) -> Vec<u16> {
        self.state.lock().unwrap().requests.iter().map(|r| r.2).collect()
    }
}

async fn handle(state: Arc<Mutex<BaoState>>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let route = uri.path().strip_prefix("/v1/secret/").unwrap_or("").to_string();
    let (status, answer, hang) = {
        let mut s = state.lock().unwrap();
        let token = headers.get("x-vault-token").and_then(|v| v.to_str().ok()).unwrap_or("");
        let (status, answer, hang) = if s.fail_next > 0 {
            s.fail_next -= 1;
            (StatusCode::SERVICE_UNAVAILABLE, json!({"errors": ["sealed"]}), false)
        } else if !s.tokens.contains(token) {
            (StatusCode::FORBIDDEN, json!({"errors": ["permission denied"]}), false)
        } else if let Some(path) = route.strip_prefix("data/") {
            match method {
                Method::GET => match s.kv.get(path) {
                    Some(v) => (StatusCode::OK, json!({"data": {"data": v, "metadata": {"version": 1}}}), false),
                    None => (StatusCode::NOT_FOUND, json!({"errors": []}), false),
                },
                Method::POST | Method::PUT => {
                    if s.hang_after_writes.is_some_and(|n| s.writes >= n) {
                        (StatusCode::OK, Value::Null, true)
                    } else {
                        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let data: BTreeMap<String, String> = serde_json::from_value(v["data"].clone()).unwrap_or_default();
                        s.kv.insert(path.to_string(), data);
                        s.writes += 1;
                        (StatusCode::OK, json!({"data": {"version": 1}}), false)
                    }
                }
                _ => (StatusCode::METHOD_NOT_ALLOWED, Value::Null, false),
            }
        } else if let Some(path) = route.strip_prefix("metadata/") {
            match method {
                Method::GET if s.kv.contains_key(path) => (StatusCode::OK, json!({"data": {"current_version": 1}}), false),
                Method::GET => (StatusCode::NOT_FOUND, json!({"errors": []}), false),
                Method::DELETE => {
                    s.kv.remove(path);
                    (StatusCode::NO_CONTENT, Value::Null, false)
                }
                _ => (StatusCode::METHOD_NOT_ALLOWED, Value::Null, false),
            }
        } else {
            (StatusCode::NOT_FOUND, Value::Null, false)
        };
        s.requests.push((method.to_string(), route.clone(), status.as_u16()));
        (status, answer, hang)
    };
    if hang {
        tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
    }
    (status, Json(answer)).into_response()
}
