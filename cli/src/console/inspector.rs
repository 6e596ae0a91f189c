//! The inspector's record of the exchange: every captured JSON-RPC message with its direction,
//! method, id, size and (for a response) the latency since its request; a filter over them; one
//! selected and maybe expanded; and the `.jsonl` transcript of it all.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use serde_json::{json, Value};

use super::wire::{Captured, Direction};

/// Messages kept; past this the oldest are dropped (and counted).
pub const MAX_RECORDS: usize = 10_000;

/// One message in the inspector.
#[derive(Debug, Clone)]
pub struct Record {
    /// 1-based, in order of crossing.
    pub seq: u64,
    pub direction: Direction,
    /// The request's or notification's method; a response carries its request's.
    pub method: String,
    /// The JSON-RPC id (`-` for a notification).
    pub id: String,
    pub size: usize,
    /// Response only: time since its request crossed (milliseconds).
    pub latency_ms: Option<f64>,
    pub wall: chrono::DateTime<chrono::Utc>,
    pub message: Value,
}

impl Record {
    /// The one-line summary the list shows.
    pub fn summary(&self) -> String {
        let arrow = match self.direction {
            Direction::Sent => "→",
            Direction::Received => "←",
        };
        let latency = self.latency_ms.map(|l| format!("{l:.1} ms")).unwrap_or_default();
        format!(
            "{:>4} {arrow} {:<3} {:<40} id={:<5} {:>7} B {:>10}",
            self.seq,
            self.direction.as_str(),
            self.method,
            self.id,
            self.size,
            latency
        )
    }

    fn matches(&self, filter: &str) -> bool {
        if filter.is_empty() {
            return true;
        }
        let f = filter.to_lowercase();
        self.method.to_lowercase().contains(&f)
            || self.direction.as_str() == f
            || self.id == f
            || self.message.to_string().to_lowercase().contains(&f)
    }

    /// The transcript line of this record.
    pub fn transcript_line(&self) -> Value {
        json!({
            "seq": self.seq,
            "at": self.wall.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "direction": self.direction.as_str(),
            "method": self.method,
            "id": self.id,
            "size": self.size,
            "latencyMs": self.latency_ms,
            "message": self.message,
        })
    }
}

/// The inspector's state.
#[derive(Debug, Default)]
pub struct Inspector {
    records: VecDeque<Record>,
    /// Requests awaiting their response: id → (method, when sent).
    pending: HashMap<(Direction, String), (String, Instant)>,
    next_seq: u64,
    /// Records dropped past [`MAX_RECORDS`].
    pub dropped: u64,
    /// Substring filter (method, `in`/`out`, id, or any text of the message).
    pub filter: String,
    /// Index into [`Inspector::visible`].
    pub selected: usize,
    /// Whether the selected record is shown in full.
    pub expanded: bool,
}

fn id_text(v: &Value) -> Option<String> {
    match v.get("id")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

impl Inspector {
    /// Record one captured message.
    pub fn push(&mut self, c: Captured) {
        self.next_seq += 1;
        let id = id_text(&c.message);
        let method = c.message.get("method").and_then(Value::as_str).map(str::to_owned);
        let mut latency_ms = None;
        let method = match (method, &id) {
            (Some(m), Some(id)) => {
                // A request: its response comes the other way.
                let back = match c.direction {
                    Direction::Sent => Direction::Received,
                    Direction::Received => Direction::Sent,
                };
                self.pending.insert((back, id.clone()), (m.clone(), c.at));
                m
            }
            (Some(m), None) => m,
            (None, Some(id)) => match self.pending.remove(&(c.direction, id.clone())) {
                Some((m, sent)) => {
                    latency_ms = Some(c.at.duration_since(sent).as_secs_f64() * 1000.0);
                    let kind = if c.message.get("error").is_some() { "error" } else { "result" };
                    format!("{m} ({kind})")
                }
                None => "(response)".to_owned(),
            },
            (None, None) => "(unknown)".to_owned(),
        };
        self.records.push_back(Record {
            seq: self.next_seq,
            direction: c.direction,
            method,
            id: id.unwrap_or_else(|| "-".into()),
            size: c.size,
            latency_ms,
            wall: c.wall,
            message: c.message,
        });
        if self.records.len() > MAX_RECORDS {
            self.records.pop_front();
            self.dropped += 1;
        }
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records passing the filter, oldest first.
    pub fn visible(&self) -> Vec<&Record> {
        self.records.iter().filter(|r| r.matches(&self.filter)).collect()
    }

    /// The selected record among the visible ones.
    pub fn current(&self) -> Option<&Record> {
        self.visible().get(self.selected).copied()
    }

    pub fn select(&mut self, delta: isize) {
        let n = self.visible().len();
        if n == 0 {
            self.selected = 0;
            return;
        }
        self.selected = self.selected.saturating_add_signed(delta).min(n - 1);
    }

    /// Select the newest visible record.
    pub fn select_last(&mut self) {
        self.selected = self.visible().len().saturating_sub(1);
    }

    /// Every record (not only the filtered ones) as a `.jsonl` transcript: one JSON object a line
    /// with `seq`, `at`, `direction`, `method`, `id`, `size`, `latencyMs` and the full `message`.
    pub fn transcript(&self) -> String {
        let mut out = String::new();
        for r in &self.records {
            out.push_str(&r.transcript_line().to_string());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_get_their_request_method_and_latency_and_the_filter_narrows() {
        let mut i = Inspector::default();
        let mut req = Captured::new(Direction::Sent, json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": "x"}}));
        req.at = Instant::now() - std::time::Duration::from_millis(40);
        i.push(req);
        i.push(Captured::new(Direction::Received, json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})));
        i.push(Captured::new(Direction::Received, json!({"jsonrpc": "2.0", "id": 3, "result": {"content": []}})));
        let v = i.visible();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].method, "tools/call (result)");
        assert!(v[2].latency_ms.unwrap() >= 40.0, "{:?}", v[2].latency_ms);
        assert_eq!(v[1].id, "-");
        i.filter = "tools/call".into();
        assert_eq!(i.visible().len(), 2);
        i.filter = "in".into();
        assert_eq!(i.visible().len(), 2);
        let t = i.transcript();
        assert_eq!(t.lines().count(), 3, "the transcript is never filtered");
        let last: Value = serde_json::from_str(t.lines().last().unwrap()).unwrap();
        assert_eq!((last["direction"].as_str(), last["id"].as_str()), (Some("in"), Some("3")));
    }
}
