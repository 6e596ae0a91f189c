//! The tap at the transport boundary: a [`Transport`] wrapper that hands a copy of every
//! JSON-RPC message the client sends or receives, with the instant it crossed, to the inspector.
//!
//! # Guarantees
//! Recording never blocks the exchange: copies go into an unbounded channel the UI drains on
//! every frame (the inspector itself keeps at most [`super::inspector::MAX_RECORDS`]). What is
//! recorded is exactly what rmcp serialises onto, or parsed from, the wire.

use std::borrow::Cow;
use std::time::Instant;

use rmcp::service::{RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use rmcp::RoleClient;
use serde_json::Value;
use tokio::sync::mpsc;

/// Which way a message went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Sent,
    Received,
}

impl Direction {
    /// `out` / `in`, as the inspector and transcripts show it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Sent => "out",
            Direction::Received => "in",
        }
    }
}

/// One message as it crossed the transport.
#[derive(Debug, Clone)]
pub struct Captured {
    pub direction: Direction,
    /// When it crossed (latency is the gap between a request and its response).
    pub at: Instant,
    /// Wall-clock time, for transcripts.
    pub wall: chrono::DateTime<chrono::Utc>,
    pub message: Value,
    /// Size of the message as compact JSON (bytes).
    pub size: usize,
}

impl Captured {
    pub fn new(direction: Direction, message: Value) -> Self {
        let size = message.to_string().len();
        Captured { direction, at: Instant::now(), wall: chrono::Utc::now(), message, size }
    }
}

/// Where captured messages go.
pub type Tap = mpsc::UnboundedSender<Captured>;

/// A transport that records what passes through it.
pub struct Recorder<T> {
    inner: T,
    tap: Tap,
}

impl<T> Recorder<T> {
    pub fn new(inner: T, tap: Tap) -> Self {
        Recorder { inner, tap }
    }
}

fn copy<M: serde::Serialize>(tap: &Tap, direction: Direction, m: &M) {
    if let Ok(v) = serde_json::to_value(m) {
        let _ = tap.send(Captured::new(direction, v));
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for Recorder<T> {
    type Error = T::Error;

    fn name() -> Cow<'static, str> {
        T::name()
    }

    fn send(&mut self, item: TxJsonRpcMessage<RoleClient>) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send + 'static {
        copy(&self.tap, Direction::Sent, &item);
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl std::future::Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        let tap = self.tap.clone();
        let next = self.inner.receive();
        async move {
            let m = next.await;
            if let Some(m) = &m {
                copy(&tap, Direction::Received, m);
            }
            m
        }
    }

    fn close(&mut self) -> impl std::future::Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}
