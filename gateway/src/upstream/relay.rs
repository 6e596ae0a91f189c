//! The stdio transport of the gateway's client towards a local process, with a raw lane beside
//! rmcp's session: requests the gateway writes itself, whose answers come back as bytes.
//!
//! rmcp's client decodes every answer into its typed enums (`JsonRpcMessage` through serde's
//! buffered untagged enums), and the gateway then encodes the result again for its caller: for a
//! relayed `tools/call` that is pure cost. [`RelayTransport`] reads the process's stdout itself:
//! a line answering one of the lane's requests (a string id starting with [`ID_PREFIX`], which
//! rmcp — numeric ids — never uses) goes as bytes to the call waiting for it; every other line is
//! decoded with rmcp's own codec and handed to rmcp's session, which keeps the initialization,
//! health checks, lists, notifications and server-to-client requests.
//!
//! # Guarantees
//! - **One order.** Lines are taken from stdout in the order the process wrote them, in one loop:
//!   a message rmcp gets (and the routing of `routing::Tagged` marks) is handled before any
//!   answer the process wrote after it is handed to its call.
//! - **Never a hung request.** When stdout ends (the process exited) or the transport is closed,
//!   every waiting call fails at once ([`RelayError::Closed`]) and no new one is accepted. A call
//!   that times out or is cancelled sends `notifications/cancelled` (rmcp's reasons) and is
//!   forgotten: a late answer is dropped.
//! - **Only the envelope is read.** An answer is checked to be one JSON object with an `id` and
//!   a `result` or `error`; the result itself is not decoded here.
//!
//! # Caveats
//! One writer task per process takes both rmcp's and the lane's messages and writes as many as
//! are queued in one `write` (fewer pipe writes under load); a message counts as sent once queued.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rmcp::model::{ErrorData, RequestId};
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::async_rw::{JsonRpcMessageCodec, JsonRpcMessageCodecError};
use rmcp::transport::Transport;
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

/// The ids of the lane's requests: `"mcpctl-relay-<n>"` (rmcp's own ids are numbers).
pub const ID_PREFIX: &str = "mcpctl-relay-";
/// The longest line read (as rmcp's `DEFAULT_MAX_LINE_LENGTH`); longer ones are dropped.
const MAX_LINE: usize = 16 * 1024 * 1024;
/// Messages written in one `write` at most.
const BATCH: usize = 64;
/// rmcp's reason in the cancellation of a request that timed out.
const TIMEOUT_REASON: &str = "request timeout";

/// Why a request on the lane got no answer.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error("the connection closed (the server exited?)")]
    Closed,
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("cancelled")]
    Cancelled,
    #[error("cannot encode the request: {0}")]
    Encode(#[source] serde_json::Error),
}

/// One answer on the lane: the process's line and where its `result` or `error` is in it.
#[derive(Debug)]
pub struct Answer {
    line: Bytes,
    start: usize,
    end: usize,
    error: bool,
}

impl Answer {
    /// The `result` (or `error`) member, as the process wrote it.
    pub fn body(&self) -> &[u8] {
        &self.line[self.start..self.end]
    }

    /// Whether this is a JSON-RPC error (`error`) rather than a `result`.
    pub fn is_error(&self) -> bool {
        self.error
    }
}

/// What the writer task writes.
enum Frame {
    Line(Vec<u8>),
    Close,
}

#[derive(Default)]
struct Waiting {
    /// Set once stdout ended or the transport closed: no request is accepted any more.
    closed: bool,
    calls: HashMap<u64, oneshot::Sender<Answer>>,
}

/// The lane of one process, shared by the calls that use it and its [`RelayTransport`].
pub struct Relay {
    out: mpsc::UnboundedSender<Frame>,
    waiting: Mutex<Waiting>,
    next: AtomicU64,
}

/// A request written on the lane, waiting for its answer; forgotten when dropped.
pub struct Pending<'a> {
    relay: &'a Relay,
    n: u64,
    answer: oneshot::Receiver<Answer>,
    /// The answer arrived (its entry is gone already).
    answered: bool,
}

impl Relay {
    /// Write a request of `method` with `params` (a JSON object) on the lane.
    ///
    /// # Errors
    /// [`RelayError::Closed`] when the process's pipes are closed, [`RelayError::Encode`] when
    /// `params` cannot be encoded.
    pub fn send(&self, method: &str, params: &impl serde::Serialize) -> Result<Pending<'_>, RelayError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let mut line = Vec::with_capacity(256);
        line.extend_from_slice(br#"{"jsonrpc":"2.0","id":""#);
        line.extend_from_slice(ID_PREFIX.as_bytes());
        line.extend_from_slice(n.to_string().as_bytes());
        line.extend_from_slice(br#"","method":"#);
        serde_json::to_writer(&mut line, method).map_err(RelayError::Encode)?;
        line.extend_from_slice(br#","params":"#);
        serde_json::to_writer(&mut line, params).map_err(RelayError::Encode)?;
        line.extend_from_slice(b"}\n");
        let (tx, answer) = oneshot::channel();
        {
            let mut w = self.waiting.lock().expect("relay lock");
            if w.closed {
                return Err(RelayError::Closed);
            }
            w.calls.insert(n, tx);
        }
        let pending = Pending { relay: self, n, answer, answered: false };
        self.out.send(Frame::Line(line)).map_err(|_| RelayError::Closed)?;
        Ok(pending)
    }

    /// Send `notifications/cancelled` for the lane's request `n`.
    fn cancel(&self, n: u64, reason: &str) {
        let message = serde_json::json!({
            "jsonrpc": "2.0",
            "method": "notifications/cancelled",
            "params": {"requestId": format!("{ID_PREFIX}{n}"), "reason": reason},
        });
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        let _ = self.out.send(Frame::Line(line));
    }

    /// Every waiting call fails; no new one is accepted.
    fn close(&self) {
        let mut w = self.waiting.lock().expect("relay lock");
        w.closed = true;
        w.calls.clear();
    }

    /// Whether `line` answers one of the lane's requests; if so it went to its call (or was
    /// dropped: the call ended).
    fn divert(&self, line: &mut Vec<u8>) -> bool {
        let Some((n, start, end, error)) = envelope(line) else { return false };
        let Some(tx) = self.waiting.lock().expect("relay lock").calls.remove(&n) else { return true };
        let line = Bytes::from(std::mem::take(line));
        let _ = tx.send(Answer { line, start, end, error });
        true
    }

    /// Calls waiting for an answer now.
    pub fn waiting(&self) -> usize {
        self.waiting.lock().expect("relay lock").calls.len()
    }
}

impl Pending<'_> {
    /// The id the request carries upstream.
    pub fn id(&self) -> RequestId {
        RequestId::String(format!("{ID_PREFIX}{}", self.n).into())
    }

    /// The answer, within `timeout`, unless `cancelled` first (then the process is told so).
    ///
    /// # Errors
    /// [`RelayError::Closed`] when the pipes close first, [`RelayError::Timeout`] or
    /// [`RelayError::Cancelled`].
    pub async fn answer(mut self, timeout: Duration, cancelled: &CancellationToken) -> Result<Answer, RelayError> {
        tokio::select! {
            r = tokio::time::timeout(timeout, &mut self.answer) => match r {
                Ok(Ok(answer)) => {
                    self.answered = true;
                    Ok(answer)
                }
                Ok(Err(_)) => Err(RelayError::Closed),
                Err(_) => {
                    self.relay.cancel(self.n, TIMEOUT_REASON);
                    Err(RelayError::Timeout(timeout))
                }
            },
            _ = cancelled.cancelled() => {
                self.relay.cancel(self.n, "cancelled by the client");
                Err(RelayError::Cancelled)
            }
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.answered {
            return;
        }
        self.relay.waiting.lock().expect("relay lock").calls.remove(&self.n);
    }
}

/// The members of a message this module looks at (the rest is skipped, not decoded).
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<&'a RawValue>,
    method: Option<serde::de::IgnoredAny>,
    #[serde(borrow)]
    result: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

/// `(n, start, end, is_error)` when `line` is an answer to the lane's request `n`, its `result`
/// or `error` at `line[start..end]`.
fn envelope(line: &[u8]) -> Option<(u64, usize, usize, bool)> {
    let e: Envelope<'_> = serde_json::from_slice(line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)).ok()?;
    let n = e.id?.get().strip_prefix('"')?.strip_suffix('"')?.strip_prefix(ID_PREFIX)?.parse().ok()?;
    if e.method.is_some() {
        return None;
    }
    let (body, error) = match (e.result, e.error) {
        (Some(r), None) => (r, false),
        (None, Some(e)) => (e, true),
        _ => return None,
    };
    let start = body.get().as_ptr() as usize - line.as_ptr() as usize;
    Some((n, start, start + body.get().len(), error))
}

/// The client transport over a process's stdout and stdin, with the lane ([`Relay`]).
pub struct RelayTransport<R> {
    read: BufReader<R>,
    line: Vec<u8>,
    /// Dropping the rest of a line longer than [`MAX_LINE`].
    discarding: bool,
    relay: Arc<Relay>,
    codec: JsonRpcMessageCodec<RxJsonRpcMessage<RoleClient>>,
}

/// The transport over `read` (the process's stdout) and `write` (its stdin), and its lane.
/// Must be called within a Tokio runtime (spawns the writer task).
pub fn pipes<R, W>(read: R, write: W) -> (RelayTransport<R>, Arc<Relay>)
where
    R: AsyncRead + Send + Unpin + 'static,
    W: AsyncWrite + Send + Unpin + 'static,
{
    let (out, rx) = mpsc::unbounded_channel();
    tokio::spawn(writer(write, rx));
    let relay = Arc::new(Relay { out, waiting: Mutex::default(), next: AtomicU64::new(0) });
    let transport = RelayTransport {
        read: BufReader::with_capacity(64 * 1024, read),
        line: Vec::new(),
        discarding: false,
        relay: relay.clone(),
        codec: JsonRpcMessageCodec::default(),
    };
    (transport, relay)
}

/// Writes what is queued, as many messages as are waiting in one `write`; ends (closing stdin)
/// on [`Frame::Close`], when every sender is gone, or when a write fails.
async fn writer<W: AsyncWrite + Unpin>(mut write: W, mut rx: mpsc::UnboundedReceiver<Frame>) {
    let mut frames = Vec::with_capacity(BATCH);
    let mut buf: Vec<u8> = Vec::new();
    while rx.recv_many(&mut frames, BATCH).await > 0 {
        buf.clear();
        let mut close = false;
        for f in frames.drain(..) {
            match f {
                // The first of a batch is written from its own buffer.
                Frame::Line(l) if buf.is_empty() => buf = l,
                Frame::Line(l) => buf.extend_from_slice(&l),
                Frame::Close => close = true,
            }
        }
        if !buf.is_empty() && (write.write_all(&buf).await.is_err() || write.flush().await.is_err()) {
            return;
        }
        if close {
            let _ = write.shutdown().await;
            return;
        }
    }
}

enum LineRead {
    Line,
    Oversized,
    End,
}

impl<R: AsyncRead + Unpin> RelayTransport<R> {
    /// One `\n`-terminated line into `self.line`, never longer than [`MAX_LINE`]. Cancel-safe:
    /// a partial line stays in `self.line` for the next call.
    async fn read_line(&mut self) -> LineRead {
        loop {
            let available = match self.read.fill_buf().await {
                Ok([]) => return LineRead::End,
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!("reading from the upstream's stdout: {e}");
                    return LineRead::End;
                }
            };
            let newline = available.iter().position(|b| *b == b'\n');
            let take = newline.map_or(available.len(), |i| i + 1);
            let oversized = !self.discarding && self.line.len() + take > MAX_LINE;
            if oversized {
                self.line.clear();
                self.discarding = true;
            }
            if !self.discarding {
                self.line.extend_from_slice(&available[..take]);
            }
            self.read.consume(take);
            match (newline, self.discarding) {
                (Some(_), false) => return LineRead::Line,
                (Some(_), true) => {
                    self.discarding = false;
                    return LineRead::Oversized;
                }
                (None, _) => {}
            }
        }
    }
}

impl<R: AsyncRead + Send + Unpin + 'static> Transport<RoleClient> for RelayTransport<R> {
    type Error = std::io::Error;

    fn send(&mut self, item: TxJsonRpcMessage<RoleClient>) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        let queued = serde_json::to_vec(&item).map_err(std::io::Error::other).and_then(|mut line| {
            line.push(b'\n');
            self.relay.out.send(Frame::Line(line)).map_err(|_| std::io::Error::new(std::io::ErrorKind::NotConnected, "Transport is closed"))
        });
        std::future::ready(queued)
    }

    async fn receive(&mut self) -> Option<RxJsonRpcMessage<RoleClient>> {
        loop {
            match self.read_line().await {
                LineRead::Line => {}
                LineRead::Oversized => {
                    tracing::error!(max = MAX_LINE, "a message from the upstream exceeded the maximum line length; dropped");
                    continue;
                }
                LineRead::End => {
                    self.relay.close();
                    return None;
                }
            }
            if self.relay.divert(&mut self.line) {
                self.line.clear();
                continue;
            }
            // Anything else is rmcp's, decoded as its own stdio transport decodes it.
            let mut buf = BytesMut::from(&self.line[..]);
            self.line.clear();
            match self.codec.decode(&mut buf) {
                Ok(Some(message)) => return Some(message),
                Ok(None) => continue,
                Err(JsonRpcMessageCodecError::Serde(e)) if e.classify() == serde_json::error::Category::Data => {
                    // rmcp answers well-formed JSON of the wrong shape with an Invalid Request.
                    tracing::debug!("protocol error on a message from the upstream: {e}");
                    let _ = Transport::<RoleClient>::send(
                        self,
                        TxJsonRpcMessage::<RoleClient>::error(ErrorData::invalid_request("Invalid request", None), None),
                    )
                    .await;
                }
                Err(e) => tracing::debug!("ignoring an unparsable message from the upstream: {e}"),
            }
        }
    }

    async fn close(&mut self) -> Result<(), Self::Error> {
        self.relay.close();
        let _ = self.relay.out.send(Frame::Close);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

    /// A process on the other side of [`pipes`]: its stdin (what the gateway wrote, by line)
    /// and its stdout.
    struct Process {
        stdin: tokio::io::Lines<BufReader<tokio::io::DuplexStream>>,
        stdout: tokio::io::DuplexStream,
    }

    impl Process {
        async fn read(&mut self) -> serde_json::Value {
            let line = tokio::time::timeout(Duration::from_secs(5), self.stdin.next_line()).await.expect("a line in time");
            serde_json::from_str(&line.unwrap().expect("a line")).unwrap()
        }

        async fn write(&mut self, line: &str) {
            self.stdout.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        }
    }

    /// The transport (its receive loop running, what rmcp gets sent on `rx`), its lane and the process.
    fn start() -> (Arc<Relay>, mpsc::UnboundedReceiver<RxJsonRpcMessage<RoleClient>>, Process) {
        let (stdout, their_stdout) = tokio::io::duplex(1 << 16);
        let (their_stdin, stdin) = tokio::io::duplex(1 << 16);
        let (mut transport, relay) = pipes(stdout, stdin);
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(m) = transport.receive().await {
                let _ = tx.send(m);
            }
        });
        (relay, rx, Process { stdin: BufReader::new(their_stdin).lines(), stdout: their_stdout })
    }

    /// A call on its own task, waiting (up to a minute) for its answer.
    fn waiting_call(relay: &Arc<Relay>, cancelled: CancellationToken) -> tokio::task::JoinHandle<Result<(), RelayError>> {
        let relay = relay.clone();
        tokio::spawn(async move {
            relay.send("tools/call", &serde_json::json!({}))?.answer(Duration::from_secs(60), &cancelled).await.map(|_| ())
        })
    }

    #[tokio::test]
    async fn answers_go_raw_to_their_call_and_everything_else_to_rmcp_in_order() {
        let (relay, mut rmcp, mut process) = start();
        let never = CancellationToken::new();
        let a = relay.send("tools/call", &serde_json::json!({"name": "echo"})).unwrap();
        let b = relay.send("tools/call", &serde_json::json!({"name": "echo"})).unwrap();
        let (ra, rb) = (process.read().await, process.read().await);
        assert_eq!(
            (ra["id"].as_str(), ra["method"].as_str(), &ra["params"]["name"]),
            (Some("mcpctl-relay-0"), Some("tools/call"), &serde_json::json!("echo"))
        );
        assert_eq!(rb["id"], "mcpctl-relay-1");
        assert_eq!(a.id(), RequestId::String("mcpctl-relay-0".into()));
        // A log message, then b's answer, then one for rmcp, then a's answer.
        process.write(r#"{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"mcpctl-relay-1"}}"#).await;
        process.write(r#"{"jsonrpc":"2.0","id":"mcpctl-relay-1","result":{"content":[]}}"#).await;
        process.write(r#"{"jsonrpc":"2.0","id":0,"result":{}}"#).await;
        process.write(r#"{"jsonrpc":"2.0","id":"mcpctl-relay-0","error":{"code":-32602,"message":"bad"}}"#).await;
        let b = b.answer(Duration::from_secs(5), &never).await.unwrap();
        assert_eq!((b.body(), b.is_error()), (&br#"{"content":[]}"#[..], false));
        let a = a.answer(Duration::from_secs(5), &never).await.unwrap();
        assert_eq!((a.body(), a.is_error()), (&br#"{"code":-32602,"message":"bad"}"#[..], true));
        assert!(matches!(rmcp.recv().await, Some(rmcp::model::JsonRpcMessage::Notification(_))));
        assert!(matches!(rmcp.recv().await, Some(rmcp::model::JsonRpcMessage::Response(_))));
        assert_eq!(relay.waiting(), 0);
    }

    #[tokio::test]
    async fn a_call_that_times_out_or_is_cancelled_is_cancelled_upstream_and_forgotten() {
        let (relay, _rmcp, mut process) = start();
        let cancelled = CancellationToken::new();
        let late = relay.send("tools/call", &serde_json::json!({})).unwrap();
        assert_eq!(process.read().await["id"], "mcpctl-relay-0");
        let e = late.answer(Duration::from_millis(50), &cancelled).await.unwrap_err();
        assert!(matches!(e, RelayError::Timeout(_)), "{e}");
        let c = process.read().await;
        assert_eq!(
            (c["method"].as_str(), &c["params"]),
            (Some("notifications/cancelled"), &serde_json::json!({"requestId": "mcpctl-relay-0", "reason": "request timeout"}))
        );
        assert_eq!(relay.waiting(), 0, "forgotten");
        // Its late answer is dropped, not handed to anyone.
        process.write(r#"{"jsonrpc":"2.0","id":"mcpctl-relay-0","result":{}}"#).await;

        let waiting = waiting_call(&relay, cancelled.clone());
        process.read().await;
        cancelled.cancel();
        assert!(matches!(waiting.await.unwrap(), Err(RelayError::Cancelled)));
        let c = process.read().await;
        assert_eq!(c["params"], serde_json::json!({"requestId": "mcpctl-relay-1", "reason": "cancelled by the client"}));
    }

    #[tokio::test]
    async fn when_the_process_exits_every_waiting_call_fails_at_once() {
        let (relay, mut rmcp, mut process) = start();
        let waiting = waiting_call(&relay, CancellationToken::new());
        process.read().await;
        drop(process);
        let failed = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("not the timeout").unwrap();
        assert!(matches!(failed, Err(RelayError::Closed)), "{failed:?}");
        assert!(rmcp.recv().await.is_none(), "rmcp sees the end too");
        assert!(matches!(relay.send("tools/call", &serde_json::json!({})), Err(RelayError::Closed)));
    }

    #[test]
    fn only_answers_to_the_lane_are_diverted_and_their_body_is_sliced() {
        let line = br#"{"jsonrpc":"2.0","id":"mcpctl-relay-42","result":{"content":[{"type":"text","text":"x"}]}}"#;
        let (n, s, e, error) = envelope(line).expect("an answer");
        assert_eq!((n, error), (42, false));
        assert_eq!(&line[s..e], br#"{"content":[{"type":"text","text":"x"}]}"#);
        let err = br#"{"error":{"code":-32602,"message":"no"},"id":"mcpctl-relay-7","jsonrpc":"2.0"}"#;
        let (n, s, e, error) = envelope(err).expect("an error answer");
        assert_eq!((n, error, &err[s..e]), (7, true, &br#"{"code":-32602,"message":"no"}"#[..]));
        for (why, line) in [
            ("rmcp's id", &br#"{"jsonrpc":"2.0","id":3,"result":{}}"#[..]),
            ("a request of the server with such an id", br#"{"jsonrpc":"2.0","id":"mcpctl-relay-1","method":"roots/list"}"#),
            ("another string id", br#"{"jsonrpc":"2.0","id":"mcpctl-relay-x","result":{}}"#),
            ("a notification", br#"{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"mcpctl-relay-1"}}"#),
            ("neither result nor error", br#"{"jsonrpc":"2.0","id":"mcpctl-relay-1"}"#),
            ("not JSON", b"mcpctl-relay-1"),
        ] {
            assert!(envelope(line).is_none(), "{why}");
        }
    }
}
