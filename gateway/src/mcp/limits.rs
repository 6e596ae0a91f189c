//! What the front door bounds before a request reaches the protocol: the length of names and
//! URIs in a JSON-RPC body, and the request rate of each token.
//!
//! # Guarantees
//! A name or URI over its limit is refused (-32602) before it can become a metric label, an audit
//! target or an upstream call. The rate limiter holds one bucket per *deployed* token (unknown
//! tokens are refused before it) and one per public project for anonymous callers when
//! `--anonymous-rate-limit` is set; buckets of tokens gone from the snapshot are dropped at reload.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest tool or prompt name (bytes) a request may carry.
pub const MAX_NAME_BYTES: usize = 512;
/// Longest resource URI (bytes) a request may carry.
pub const MAX_URI_BYTES: usize = 4096;
/// Prefix of the rate-limit key of a project's anonymous callers.
pub const ANONYMOUS: &str = "anonymous/";

/// The first over-long name or URI of a JSON-RPC message, as an error message.
pub fn oversized(msg: &Value) -> Option<String> {
    let params = msg.get("params")?;
    let fields: &[(&str, usize)] = match msg.get("method").and_then(Value::as_str)? {
        "tools/call" | "prompts/get" => &[("/name", MAX_NAME_BYTES)],
        "resources/read" | "resources/subscribe" | "resources/unsubscribe" => &[("/uri", MAX_URI_BYTES)],
        "completion/complete" => &[("/ref/name", MAX_NAME_BYTES), ("/ref/uri", MAX_URI_BYTES)],
        _ => return None,
    };
    fields.iter().find_map(|(ptr, max)| {
        let len = params.pointer(ptr).and_then(Value::as_str).map_or(0, str::len);
        (len > *max).then(|| format!("params{} is {len} bytes; at most {max} are accepted", ptr.replace('/', ".")))
    })
}

/// A rate: `per_second` requests on average, bursts of up to `burst`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

impl std::str::FromStr for RateLimit {
    type Err = String;

    /// `N/s`, `N/m` or `N/h`, optionally `:BURST` (default burst: twice the per-second rate,
    /// at least 1), e.g. `50/s`, `600/m:20`.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("`{s}`: expected a rate like 50/s, 600/m or 50/s:100 (N per second, minute or hour, optional :burst)");
        let (rate, burst) = match s.split_once(':') {
            Some((r, b)) => (r, Some(b.trim().parse::<f64>().map_err(|_| bad())?)),
            None => (s, None),
        };
        let (n, unit) = rate.split_once('/').ok_or_else(bad)?;
        let n: f64 = n.trim().parse().map_err(|_| bad())?;
        let per_second = match unit.trim() {
            "s" => n,
            "m" => n / 60.0,
            "h" => n / 3600.0,
            _ => return Err(bad()),
        };
        let burst = burst.unwrap_or((per_second * 2.0).max(1.0));
        if !(per_second > 0.0 && per_second.is_finite() && burst >= 1.0 && burst.is_finite()) {
            return Err(bad());
        }
        Ok(Self { per_second, burst })
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per caller.
pub struct RateLimiter {
    tokens: Option<RateLimit>,
    anonymous: Option<RateLimit>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub fn new(tokens: Option<RateLimit>, anonymous: Option<RateLimit>) -> Self {
        Self { tokens, anonymous, buckets: Mutex::new(HashMap::new()) }
    }

    /// Take one request from the bucket of `key` (a token hash, or [`ANONYMOUS`]`<project>`).
    ///
    /// # Errors
    /// When the bucket is empty: how long until it holds a request again.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let limit = if key.starts_with(ANONYMOUS) { self.anonymous } else { self.tokens };
        let Some(limit) = limit else { return Ok(()) };
        let now = Instant::now();
        let mut buckets = self.buckets.lock().expect("buckets lock");
        // Looked up before inserting: the key is copied only for a token's first request.
        if !buckets.contains_key(key) {
            buckets.insert(key.to_string(), Bucket { tokens: limit.burst, at: now });
        }
        let b = buckets.get_mut(key).expect("inserted above");
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * limit.per_second).min(limit.burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / limit.per_second))
        }
    }

    /// Keep the buckets of keys `keep` accepts (called at reload with the deployed tokens).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.buckets.lock().expect("buckets lock").retain(|k, _| keep(k));
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.buckets.lock().expect("buckets lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_with_units_and_bursts() {
        assert_eq!("50/s".parse::<RateLimit>(), Ok(RateLimit { per_second: 50.0, burst: 100.0 }));
        assert_eq!("60/m:5".parse::<RateLimit>(), Ok(RateLimit { per_second: 1.0, burst: 5.0 }));
        for bad in ["", "50", "50/d", "0/s", "x/s", "5/s:0", "-1/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_with_a_wait() {
        let l = RateLimiter::new(Some(RateLimit { per_second: 1.0, burst: 3.0 }), None);
        for _ in 0..3 {
            assert!(l.check("sha256:a").is_ok());
        }
        let wait = l.check("sha256:a").unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1), "{wait:?}");
        assert!(l.check("sha256:b").is_ok(), "buckets are per token");
        assert!(l.check("anonymous/p").is_ok() && l.len() == 2, "anonymous callers unlimited unless set");
    }

    #[test]
    fn oversized_names_and_uris_are_found_per_method() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let call = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": long}});
        assert!(oversized(&call).unwrap().contains("params.name"));
        let ok = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x".repeat(MAX_NAME_BYTES)}});
        assert!(oversized(&ok).is_none());
        let uri =
            serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "resources/read", "params": {"uri": "u".repeat(MAX_URI_BYTES + 1)}});
        assert!(oversized(&uri).unwrap().contains("params.uri"));
        let complete = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {"ref": {"type": "ref/prompt", "name": long}}});
        assert!(oversized(&complete).unwrap().contains("params.ref.name"));
        let list = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"name": long}});
        assert!(oversized(&list).is_none());
    }
}
