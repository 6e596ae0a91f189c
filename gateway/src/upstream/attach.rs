//! stdio servers in images on Kubernetes: the MCP stdio transport over the pod attach API
//! (the container's stdin and stdout, see [`reconciler::runtime::kubernetes::Attacher`]).
//!
//! # Guarantees
//! - **Reconnect on pod restart.** When the attach ends (the container restarted, the pod was
//!   replaced, the connection dropped) the session ends, the upstream is marked lost, and the next
//!   use (or the background reconnect) attaches again — to the newest running pod.
//! - Dropping the session closes the WebSocket: no attach outlives its session.

use std::pin::Pin;
use std::task::{Context, Poll};

use reconciler::runtime::kubernetes::{Attached, Attacher};
use tokio::io::{AsyncRead, ReadBuf, ReadHalf, SimplexStream, WriteHalf};

/// The container's stdout, owning the attach (so the connection lives exactly as long as the
/// transport that reads it).
pub struct Stdout {
    inner: ReadHalf<SimplexStream>,
    _attach: kube::api::AttachedProcess,
}

impl AsyncRead for Stdout {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

/// Attach to server `key`'s pod; returns the pod's name and the pipes as an rmcp transport
/// (`(read, write)`, see `rmcp::transport::async_rw`).
///
/// # Errors
/// No running pod, or the API server refused or failed the attach; the message names the object
/// and namespace.
pub async fn open(attacher: &Attacher, key: &str) -> Result<(String, (Stdout, WriteHalf<SimplexStream>)), String> {
    let Attached { pod, stdin, stdout, process } = attacher.attach(key).await.map_err(|e| e.to_string())?;
    Ok((pod, (Stdout { inner: stdout, _attach: process }, stdin)))
}
