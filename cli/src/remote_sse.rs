//! Server-sent events (`text/event-stream`) read from a streaming gateway answer, one event at a
//! time, as the chat route sends them.
//!
//! # Limits
//! One event may hold at most [`MAX_EVENT_BYTES`] of data; a longer one ends the stream with
//! [`SseError::TooLarge`] (a gateway never sends one: a delta is a few tokens).
//!
//! # Caveats
//! Lines end with `\n` or `\r\n` (what axum and every server here send); a lone `\r` is not a
//! line end. `id:` and `retry:` are ignored: the CLI never reconnects a chat stream.

/// The most data one event may carry.
pub const MAX_EVENT_BYTES: usize = 1 << 20;

/// A broken event stream.
#[derive(Debug, thiserror::Error)]
pub enum SseError {
    #[error("the gateway's event stream broke: {0}")]
    Read(#[source] reqwest::Error),
    #[error("an event of the gateway's stream exceeds {MAX_EVENT_BYTES} bytes")]
    TooLarge,
}

/// One event: its `event:` name (`message` when none) and its `data:` lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

/// Turns bytes into events; pure, so the framing is tested without a server.
#[derive(Debug, Default)]
pub struct SseParser {
    pending: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
}

impl SseParser {
    /// Feed bytes; the events they complete.
    ///
    /// # Errors
    /// [`SseError::TooLarge`] when an unfinished line or event passes [`MAX_EVENT_BYTES`].
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<SseEvent>, SseError> {
        self.pending.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut start = 0;
        while let Some(nl) = self.pending[start..].iter().position(|b| *b == b'\n') {
            let mut line = &self.pending[start..start + nl];
            start += nl + 1;
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = String::from_utf8_lossy(line).into_owned();
            if let Some(ev) = self.line(&line) {
                out.push(ev);
            }
        }
        self.pending.drain(..start);
        if self.pending.len() + self.data.as_ref().map_or(0, String::len) > MAX_EVENT_BYTES {
            return Err(SseError::TooLarge);
        }
        Ok(out)
    }

    /// The event left when the stream ends without its blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        if !self.pending.is_empty() {
            let line = String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned();
            if let Some(ev) = self.line(&line) {
                return Some(ev);
            }
        }
        self.line("")
    }

    fn line(&mut self, line: &str) -> Option<SseEvent> {
        if line.is_empty() {
            let data = self.data.take();
            let event = self.event.take();
            return data.map(|data| SseEvent { event: event.unwrap_or_else(|| "message".into()), data });
        }
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => match &mut self.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.data = Some(value.to_string()),
            },
            _ => {}
        }
        None
    }
}

/// Events of one streaming HTTP answer.
pub struct SseReader {
    resp: reqwest::Response,
    parser: SseParser,
    ready: std::collections::VecDeque<SseEvent>,
    ended: bool,
}

impl SseReader {
    pub fn new(resp: reqwest::Response) -> SseReader {
        SseReader { resp, parser: SseParser::default(), ready: Default::default(), ended: false }
    }

    /// The next event; `None` once the stream has ended.
    ///
    /// # Errors
    /// The connection broke, or an event is too large.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            if let Some(ev) = self.ready.pop_front() {
                return Ok(Some(ev));
            }
            if self.ended {
                return Ok(None);
            }
            match self.resp.chunk().await.map_err(SseError::Read)? {
                Some(bytes) => self.ready.extend(self.parser.feed(&bytes)?),
                None => {
                    self.ended = true;
                    self.ready.extend(self.parser.finish());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(event: &str, data: &str) -> SseEvent {
        SseEvent { event: event.into(), data: data.into() }
    }

    #[test]
    fn events_are_framed_whatever_the_chunking() {
        let stream =
            b"event: thread\ndata: {\"threadId\":\"t1\"}\n\n: keep-alive\n\nevent:delta\r\ndata: a\r\ndata: b\r\n\r\ndata: plain\n\n";
        let want = vec![ev("thread", "{\"threadId\":\"t1\"}"), ev("delta", "a\nb"), ev("message", "plain")];
        for size in [1, 2, 7, stream.len()] {
            let mut p = SseParser::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(size) {
                got.extend(p.feed(chunk).unwrap());
            }
            assert_eq!(p.finish(), None);
            assert_eq!(got, want, "chunks of {size}");
        }
    }

    #[test]
    fn an_unterminated_last_event_is_kept_and_a_huge_one_refused() {
        let mut p = SseParser::default();
        assert!(p.feed(b"event: done\ndata: {}").unwrap().is_empty());
        assert_eq!(p.finish(), Some(ev("done", "{}")));
        let mut p = SseParser::default();
        let big = vec![b'x'; MAX_EVENT_BYTES + 1];
        assert!(matches!(p.feed(&big), Err(SseError::TooLarge)));
    }
}
