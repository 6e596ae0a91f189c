//! `mcpctl chat`: talk to an agent through the gateway's chat API — one message (`-m`) or an
//! interactive session — and the thread views `get threads` / `describe thread`.
//!
//! What goes where: the answer's text on stdout (streamed as it comes), everything else on
//! stderr (tool calls, `(thread: ID)`, session notices), so `mcpctl chat a -m q > answer.txt`
//! keeps only the answer.
//!
//! # Limits
//! A non-streamed answer is awaited for at most [`ANSWER_TIMEOUT`] (the tool loop runs on the
//! gateway); a streamed one as long as events keep coming. The interactive history keeps the last
//! [`HISTORY_LINES`] lines in `<data dir>/mcpctl/chat-history`. A tool call's arguments and result
//! are shown up to [`TOOL_PREVIEW_CHARS`] characters.

use crate::remote::escape as segment;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use anstyle::{AnsiColor, Style};
use serde_json::{json, Value};

use crate::args::{ChatArgs, GetArgs, GetFormat, SamplingArgs, TextOrJson};
use crate::remote::{Remote, RemoteError};
use crate::remote_sse::{SseError, SseReader};
use crate::render::escape_controls;
use crate::CliError;

/// Where the gateway is when neither flags, the environment nor a login name one: the address
/// `mcpctl serve` listens on by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
/// Longest wait for a non-streamed answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines kept in the interactive history file.
pub const HISTORY_LINES: usize = 1000;
/// Characters of a tool call's arguments or result shown on stderr.
pub const TOOL_PREVIEW_CHARS: usize = 160;

const DIM: Style = Style::new().dimmed();
const RED: Style = AnsiColor::Red.on_default();

/// A chat that could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Stream(#[from] SseError),
    #[error("the gateway sent a `{event}` event that is not the expected JSON: {source}")]
    Event {
        event: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("the gateway's answer is not JSON: {0}")]
    Answer(#[source] reqwest::Error),
    /// The gateway's `error` event: the model or a tool loop failed.
    #[error("{0}")]
    Failed(String),
    #[error("the answer stream ended before its `done` event")]
    Incomplete,
    #[error("cannot read the terminal: {0}")]
    Terminal(#[source] rustyline::error::ReadlineError),
    #[error("cannot list the tools at {url}: {message}")]
    Tools { url: String, message: String },
    #[error("writing output: {0}")]
    Output(#[from] std::io::Error),
}

impl From<ChatError> for CliError {
    fn from(e: ChatError) -> Self {
        CliError::Other(e.into())
    }
}

type Result<T = ()> = std::result::Result<T, ChatError>;

/// The gateway a remote command talks to.
pub(super) fn remote(url: Option<&str>, token: Option<&str>) -> Remote {
    Remote::resolve(url, token).unwrap_or_else(|| {
        let token = token.map(str::to_owned).or_else(|| std::env::var("MCPCTL_TOKEN").ok().filter(|t| !t.is_empty()));
        Remote::new(DEFAULT_URL, token)
    })
}

/// `mcpctl chat`.
pub(super) async fn chat(a: ChatArgs) -> std::result::Result<(), CliError> {
    let mut s = Session {
        remote: remote(a.url.as_deref(), a.token.as_deref()),
        agent: a.agent,
        project: a.project,
        personality: a.personality,
        system: a.system,
        thread: a.thread,
        sampling: sampling(&a.sampling),
        stream: !a.no_stream && a.output == TextOrJson::Text,
        json: a.output == TextOrJson::Json,
    };
    match a.message {
        Some(m) => Ok(s.send(&m).await?),
        None => Ok(s.interactive().await?),
    }
}

/// The `sampling` object of a request: only the flags given.
fn sampling(a: &SamplingArgs) -> Value {
    let mut m = serde_json::Map::new();
    let mut put = |k: &str, v: Option<Value>| {
        if let Some(v) = v {
            m.insert(k.into(), v);
        }
    };
    put("temperature", a.temperature.map(Value::from));
    put("topP", a.top_p.map(Value::from));
    put("maxTokens", a.max_tokens.map(Value::from));
    put("stop", (!a.stop.is_empty()).then(|| Value::from(a.stop.clone())));
    put("seed", a.seed.map(Value::from));
    put("extra", (!a.params.is_empty()).then(|| Value::Object(a.params.iter().cloned().collect())));
    Value::Object(m)
}

/// One conversation: who we talk to, as which personality, in which thread.
struct Session {
    remote: Remote,
    agent: String,
    project: Option<String>,
    personality: Option<String>,
    system: Option<String>,
    thread: Option<String>,
    sampling: Value,
    stream: bool,
    json: bool,
}

impl Session {
    fn body(&self, message: &str) -> Value {
        let mut body = json!({"message": message, "stream": self.stream});
        let opt = [("project", &self.project), ("threadId", &self.thread), ("personality", &self.personality), ("system", &self.system)];
        for (k, v) in opt {
            if let Some(v) = v {
                body[k] = Value::from(v.as_str());
            }
        }
        if self.sampling.as_object().is_some_and(|m| !m.is_empty()) {
            body["sampling"] = self.sampling.clone();
        }
        body
    }

    /// Send one message and show the answer; the thread it landed in becomes the session's.
    async fn send(&mut self, message: &str) -> Result {
        let path = format!("/api/v1/agents/{}/chat", segment(&self.agent));
        let rb = self.remote.request(reqwest::Method::POST, &path).json(&self.body(message));
        if !self.stream {
            let resp = self.remote.send(rb.timeout(ANSWER_TIMEOUT)).await?;
            let answer: Value = resp.json().await.map_err(ChatError::Answer)?;
            return self.show_answer(&answer);
        }
        let resp = self.remote.send(rb.header(reqwest::header::ACCEPT, "text/event-stream")).await?;
        let mut events = SseReader::new(resp);
        let (mut out, mut err) = (anstream::stdout(), anstream::stderr());
        let mut at_line_start = true;
        while let Some(ev) = events.next().await? {
            let data: Value = serde_json::from_str(&ev.data).map_err(|source| ChatError::Event { event: ev.event.clone(), source })?;
            let text = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            match ev.event.as_str() {
                "thread" => self.thread = Some(text("threadId")).filter(|t| !t.is_empty()),
                "delta" => {
                    let t = text("text");
                    if !t.is_empty() {
                        write!(out, "{t}")?;
                        out.flush()?;
                        at_line_start = t.ends_with('\n');
                    }
                }
                "tool_call_start" | "tool_call_end" => {
                    if !at_line_start {
                        writeln!(out)?;
                        at_line_start = true;
                    }
                    tool_line(&mut err, ev.event == "tool_call_end", &data)?;
                }
                "done" => {
                    if !at_line_start {
                        writeln!(out)?;
                    }
                    if let Some(t) = data.get("threadId").and_then(Value::as_str) {
                        self.thread = Some(t.to_string());
                    }
                    return self.thread_line(&mut err);
                }
                "error" => {
                    if !at_line_start {
                        writeln!(out)?;
                    }
                    self.thread_line(&mut err)?;
                    return Err(ChatError::Failed(text("message")));
                }
                _ => {} // events of a newer gateway
            }
        }
        Err(ChatError::Incomplete)
    }

    /// A non-streamed answer: the JSON as is (`-o json`), or its tool calls then its text.
    fn show_answer(&mut self, answer: &Value) -> Result {
        if let Some(t) = answer.get("threadId").and_then(Value::as_str) {
            self.thread = Some(t.to_string());
        }
        let (mut out, mut err) = (anstream::stdout(), anstream::stderr());
        if self.json {
            writeln!(out, "{}", serde_json::to_string_pretty(answer).expect("json"))?;
        } else {
            for call in answer.get("toolCalls").and_then(Value::as_array).into_iter().flatten() {
                tool_line(&mut err, call.get("content").is_some() || call.get("isError").is_some(), call)?;
            }
            let content = answer.get("content").and_then(Value::as_str).unwrap_or_default();
            write!(out, "{content}")?;
            if !content.ends_with('\n') {
                writeln!(out)?;
            }
        }
        self.thread_line(&mut err)
    }

    fn thread_line(&self, err: &mut impl Write) -> Result {
        if let Some(t) = &self.thread {
            writeln!(err, "{}", paint(DIM, &format!("(thread: {t})")))?;
        }
        Ok(())
    }

    fn prompt(&self) -> String {
        match &self.personality {
            Some(p) => format!("{} ({p})> ", self.agent),
            None => format!("{}> ", self.agent),
        }
    }

    /// The interactive session: lines are messages, `/word` lines are commands.
    async fn interactive(&mut self) -> Result {
        let mut input = Input::open()?;
        let mut failed = false;
        let mut err = anstream::stderr();
        if input.is_terminal() {
            writeln!(err, "{}", paint(DIM, &format!("Chatting with {} — /help lists the commands, /exit or Ctrl-D ends.", self.agent)))?;
        }
        while let Some(line) = input.read(&self.prompt())? {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            input.remember(line);
            let outcome = match line.strip_prefix('/') {
                Some(cmd) => match self.command(cmd).await {
                    Ok(Flow::Exit) => break,
                    Ok(Flow::Continue) => Ok(()),
                    Err(e) => Err(e),
                },
                None => tokio::select! {
                    r = self.send(line) => r,
                    _ = tokio::signal::ctrl_c() => {
                        writeln!(err, "\n{}", paint(DIM, "(interrupted)"))?;
                        Ok(())
                    }
                },
            };
            if let Err(e) = outcome {
                failed = true;
                writeln!(err, "{} {e}", paint(RED.bold(), "error:"))?;
            }
        }
        input.save();
        if failed {
            // Already reported line by line; the exit code tells a script that something failed.
            return Err(ChatError::Failed("some messages or commands of the session failed (see above)".into()));
        }
        Ok(())
    }

    /// One `/command` of the interactive session.
    async fn command(&mut self, cmd: &str) -> Result<Flow> {
        let (word, arg) = cmd.split_once(char::is_whitespace).map_or((cmd, ""), |(w, a)| (w, a.trim()));
        let arg = (!arg.is_empty()).then(|| arg.to_string());
        let mut err = anstream::stderr();
        let note = |err: &mut anstream::AutoStream<std::io::Stderr>, text: &str| writeln!(err, "{}", paint(DIM, text));
        match word {
            "exit" | "quit" => return Ok(Flow::Exit),
            "help" => {
                for l in HELP {
                    writeln!(err, "{l}")?;
                }
            }
            "new" => {
                self.thread = None;
                note(&mut err, "(new thread: the next message starts it)")?;
            }
            "threads" => {
                let list = list_threads(&self.remote, self.project.as_deref(), Some(&self.agent)).await?;
                threads_table(&mut anstream::stdout(), &list, self.thread.as_deref())?;
            }
            "thread" => match arg {
                None => note(&mut err, &format!("(thread: {})", self.thread.as_deref().unwrap_or("none yet")))?,
                Some(id) => {
                    let t = self.remote.get_json(&format!("/api/v1/threads/{}", segment(&id))).await?;
                    let agent = t.get("agent").and_then(Value::as_str).unwrap_or_default();
                    if agent != self.agent {
                        return Err(ChatError::Failed(format!("thread {id} belongs to agent `{agent}`, not `{}`", self.agent)));
                    }
                    let n = t.get("messages").and_then(Value::as_array).map_or(0, Vec::len);
                    self.thread = Some(id.clone());
                    note(&mut err, &format!("(thread: {id}, {n} messages)"))?;
                }
            },
            "personality" => {
                self.personality = arg;
                note(&mut err, &format!("(personality: {})", self.personality.as_deref().unwrap_or("the agent's default")))?;
            }
            "system" => {
                self.system = arg;
                note(&mut err, if self.system.is_some() { "(system text set for the next messages)" } else { "(system text cleared)" })?;
            }
            "tools" => {
                let project = self.project_name().await?;
                let tools = project_tools(&self.remote, &project).await?;
                let mut out = anstream::stdout();
                if tools.is_empty() {
                    writeln!(out, "No tools.")?;
                }
                for (name, description) in tools {
                    writeln!(out, "{name:<32} {}", escape_controls(description.lines().next().unwrap_or("")))?;
                }
            }
            other => return Err(ChatError::Failed(format!("unknown command `/{other}` (/help lists them)"))),
        }
        Ok(Flow::Continue)
    }

    /// The agent's project: `-p`, else the current thread's.
    async fn project_name(&mut self) -> Result<String> {
        if let Some(p) = &self.project {
            return Ok(p.clone());
        }
        let Some(id) = &self.thread else {
            return Err(ChatError::Failed("no project known yet: pass -p PROJECT or send a message first".into()));
        };
        let t = self.remote.get_json(&format!("/api/v1/threads/{}", segment(id))).await?;
        let p = t.get("project").and_then(Value::as_str).unwrap_or_default().to_string();
        self.project = Some(p.clone());
        Ok(p)
    }
}

const HELP: &[&str] = &[
    "/new               start a new thread with the next message",
    "/threads           list this agent's threads",
    "/thread [ID]       continue thread ID (without ID: show the current one)",
    "/personality [P]   speak to personality P (without P: the agent's default)",
    "/system [TEXT]     extra system text for the next messages (without TEXT: none)",
    "/tools             list the tools of the agent's project",
    "/exit              end the session (also /quit, Ctrl-D)",
];

/// What the session does after a command.
enum Flow {
    Continue,
    Exit,
}

/// Where the interactive session reads lines: an editor with history on a terminal, plain lines
/// otherwise (piped input, scripts).
enum Input {
    Editor(Box<rustyline::DefaultEditor>, Option<std::path::PathBuf>),
    Plain(std::io::StdinLock<'static>),
}

impl Input {
    fn open() -> Result<Input> {
        if !std::io::stdin().is_terminal() {
            return Ok(Input::Plain(std::io::stdin().lock()));
        }
        let config =
            rustyline::Config::builder().max_history_size(HISTORY_LINES).map_err(ChatError::Terminal)?.auto_add_history(false).build();
        let mut editor = rustyline::DefaultEditor::with_config(config).map_err(ChatError::Terminal)?;
        let history = dirs::data_dir().map(|d| d.join("mcpctl").join("chat-history"));
        if let Some(h) = &history {
            let _ = editor.load_history(h); // none yet is fine
        }
        Ok(Input::Editor(Box::new(editor), history))
    }

    fn is_terminal(&self) -> bool {
        matches!(self, Input::Editor(..))
    }

    /// The next line; `None` at the end of input (Ctrl-D). Ctrl-C at the prompt clears the line.
    fn read(&mut self, prompt: &str) -> Result<Option<String>> {
        match self {
            Input::Plain(stdin) => {
                let mut line = String::new();
                match std::io::BufRead::read_line(stdin, &mut line)? {
                    0 => Ok(None),
                    _ => Ok(Some(line)),
                }
            }
            Input::Editor(editor, _) => loop {
                match tokio::task::block_in_place(|| editor.readline(prompt)) {
                    Ok(line) => return Ok(Some(line)),
                    Err(rustyline::error::ReadlineError::Interrupted) => continue,
                    Err(rustyline::error::ReadlineError::Eof) => return Ok(None),
                    Err(e) => return Err(ChatError::Terminal(e)),
                }
            },
        }
    }

    fn remember(&mut self, line: &str) {
        if let Input::Editor(editor, _) = self {
            let _ = editor.add_history_entry(line);
        }
    }

    fn save(&mut self) {
        if let Input::Editor(editor, Some(path)) = self {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = editor.save_history(path); // history is a convenience: never fail the session on it
        }
    }
}

/// `⚙ name args` when a tool call starts, `✓ name result` / `✗ name result` when it ends.
fn tool_line(err: &mut impl Write, ended: bool, data: &Value) -> Result {
    let name = data.get("name").and_then(Value::as_str).unwrap_or("?");
    let line = if ended {
        let failed = data.get("isError").and_then(Value::as_bool).unwrap_or(false);
        let content = data.get("content").map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string)).unwrap_or_default();
        let mark = if failed { paint(RED, "✗") } else { paint(DIM, "✓") };
        format!("{mark} {}", paint(DIM, &format!("{name} {}", preview(&content))))
    } else {
        let args = data.get("arguments").map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string)).unwrap_or_default();
        paint(DIM, &format!("⚙ {name} {}", preview(&args)))
    };
    writeln!(err, "{line}")?;
    Ok(())
}

/// One line of at most [`TOOL_PREVIEW_CHARS`] characters, control characters escaped.
fn preview(text: &str) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut s: String = flat.chars().take(TOOL_PREVIEW_CHARS).collect();
    if flat.chars().count() > TOOL_PREVIEW_CHARS {
        s.push('…');
    }
    escape_controls(&s).into_owned()
}

fn paint(style: Style, text: &str) -> String {
    format!("{}{text}{}", style.render(), style.render_reset())
}

async fn list_threads(remote: &Remote, project: Option<&str>, agent: Option<&str>) -> Result<Vec<Value>> {
    let query: Vec<String> =
        [("project", project), ("agent", agent)].into_iter().filter_map(|(k, v)| v.map(|v| format!("{k}={}", segment(v)))).collect();
    let path = if query.is_empty() { "/api/v1/threads".to_string() } else { format!("/api/v1/threads?{}", query.join("&")) };
    let list = remote.get_json(&path).await?;
    Ok(list.as_array().cloned().unwrap_or_default())
}

/// The tools of `project`'s MCP endpoint, as the agent sees them (a gated project's gate opened).
async fn project_tools(remote: &Remote, project: &str) -> Result<Vec<(String, String)>> {
    use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    use rmcp::ServiceExt;
    let url = remote.endpoint(&format!("/projects/{}/mcp", segment(project)));
    let fail = |message: String| ChatError::Tools { url: reconciler::redact::urls(&url), message };
    let mut config = StreamableHttpClientTransportConfig::with_uri(url.clone());
    if let Some(t) = remote.token() {
        config = config.auth_header(t.to_string());
    }
    let transport = rmcp::transport::StreamableHttpClientTransport::from_config(config);
    let info = ClientConfig::new(ClientCapabilities::default(), Implementation::new("mcpctl-chat", env!("CARGO_PKG_VERSION")));
    let client = info.serve(transport).await.map_err(|e| fail(e.to_string()))?;
    let mut tools = client.list_all_tools().await.map_err(|e| fail(e.to_string()))?;
    if tools.len() == 1 && tools[0].name == "begin_session" {
        client.call_tool(CallToolRequestParams::new("begin_session")).await.map_err(|e| fail(e.to_string()))?;
        tools = client.list_all_tools().await.map_err(|e| fail(e.to_string()))?;
    }
    let _ = client.cancel().await;
    Ok(tools.into_iter().map(|t| (t.name.to_string(), t.description.map(|d| d.to_string()).unwrap_or_default())).collect())
}

/// `mcpctl get threads`.
pub(super) async fn get_threads(a: &GetArgs) -> std::result::Result<(), CliError> {
    let remote = remote(a.url.as_deref(), None);
    if let Some(id) = &a.name {
        let t = remote.get_json(&format!("/api/v1/threads/{}", segment(id))).await.map_err(ChatError::from)?;
        return Ok(print_list(a.output, &[t], None)?);
    }
    let list = list_threads(&remote, a.project.as_deref(), a.agent.as_deref()).await?;
    Ok(print_list(a.output, &list, None)?)
}

fn print_list(format: GetFormat, list: &[Value], current: Option<&str>) -> Result {
    let mut out = anstream::stdout();
    match format {
        GetFormat::Table => threads_table(&mut out, list, current)?,
        GetFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(list).expect("json"))?,
        GetFormat::Yaml => write!(out, "{}", schema::emit::yaml_document(&Value::from(list.to_vec())))?,
    }
    Ok(())
}

fn field<'a>(v: &'a Value, k: &str) -> std::borrow::Cow<'a, str> {
    match v.get(k) {
        Some(Value::String(s)) => escape_controls(s),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string().into(),
    }
}

/// Threads as a table, newest first as the gateway sends them; `*` marks the current one.
fn threads_table(out: &mut impl Write, list: &[Value], current: Option<&str>) -> Result {
    if list.is_empty() {
        writeln!(out, "No threads.")?;
        return Ok(());
    }
    let mut rows = Vec::with_capacity(list.len());
    for t in list {
        let mark = if current.is_some() && t.get("id").and_then(Value::as_str) == current { "*" } else { "" };
        let updated = field(t, "updatedAt");
        rows.push(vec![
            format!("{}{mark}", field(t, "id")),
            field(t, "project").into_owned(),
            field(t, "agent").into_owned(),
            field(t, "personality").into_owned(),
            field(t, "messageCount").into_owned(),
            updated.get(..19).unwrap_or(&updated).replace('T', " "),
            field(t, "title").chars().take(60).collect(),
        ]);
    }
    crate::render::columns(out, &["ID", "PROJECT", "AGENT", "PERSONALITY", "MESSAGES", "UPDATED", "TITLE"], &rows)?;
    Ok(())
}

/// `mcpctl describe thread ID`: the thread and its messages.
pub(super) async fn describe_thread(id: &str, url: Option<&str>, format: TextOrJson) -> std::result::Result<(), CliError> {
    let t = remote(url, None).get_json(&format!("/api/v1/threads/{}", segment(id))).await.map_err(ChatError::from)?;
    let mut out = anstream::stdout();
    if format == TextOrJson::Json {
        writeln!(out, "{}", serde_json::to_string_pretty(&t).expect("json")).map_err(ChatError::from)?;
        return Ok(());
    }
    Ok(thread_text(&mut out, &t)?)
}

fn thread_text(out: &mut impl Write, t: &Value) -> Result {
    let bold = Style::new().bold();
    for (label, k) in [
        ("Thread:", "id"),
        ("Project:", "project"),
        ("Agent:", "agent"),
        ("Personality:", "personality"),
        ("Title:", "title"),
        ("Created:", "createdAt"),
        ("Updated:", "updatedAt"),
    ] {
        writeln!(out, "{} {}", paint(bold, &format!("{label:<13}")), field(t, k))?;
    }
    let messages = t.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    writeln!(out, "{} {}", paint(bold, &format!("{:<13}", "Messages:")), messages.len())?;
    for m in &messages {
        let mut head = vec![field(m, "role").into_owned()];
        for k in ["personality", "model"] {
            if let Some(v) = m.get(k).and_then(Value::as_str) {
                head.push(escape_controls(v).into_owned());
            }
        }
        if let Some(ms) = m.get("latencyMs").and_then(Value::as_u64) {
            head.push(format!("{ms} ms"));
        }
        if let Some(u) = m.get("usage").filter(|u| u.is_object()) {
            head.push(format!("{}+{} tokens", field(u, "promptTokens"), field(u, "completionTokens")));
        }
        if let Some(s) = m.get("status").and_then(Value::as_str).filter(|s| *s != "ok" && *s != "complete") {
            head.push(escape_controls(s).into_owned());
        }
        if let Some(c) = m.get("toolCallId").and_then(Value::as_str) {
            head.push(format!("for {}", escape_controls(c)));
        }
        writeln!(out, "\n{} {}", paint(bold, &format!("[{}]", head.join(" · "))), paint(DIM, &field(m, "createdAt")))?;
        let content = m.get("content").and_then(Value::as_str).unwrap_or_default();
        for line in content.lines() {
            writeln!(out, "  {}", escape_controls(line))?;
        }
        for call in m.get("toolCalls").and_then(Value::as_array).into_iter().flatten() {
            let args = call.get("arguments").map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string)).unwrap_or_default();
            writeln!(out, "  {}", paint(DIM, &format!("⚙ {} {} ({})", field(call, "name"), preview(&args), field(call, "id"))))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("th-1_a.b~"), "th-1_a.b~");
        assert_eq!(segment("a b/c?d&é"), "a%20b%2Fc%3Fd%26%C3%A9");
    }

    #[test]
    fn previews_are_one_bounded_line_without_controls() {
        assert_eq!(preview("a\n  b\tc"), "a b c");
        assert_eq!(preview("\u{1b}[2J"), "\\u{1b}[2J");
        let long = "x".repeat(TOOL_PREVIEW_CHARS + 5);
        assert_eq!(preview(&long).chars().count(), TOOL_PREVIEW_CHARS + 1);
    }

    #[test]
    fn only_given_sampling_flags_are_sent() {
        let a =
            SamplingArgs { temperature: Some(0.5), top_p: None, max_tokens: Some(9), stop: vec!["x".into()], seed: None, params: vec![] };
        assert_eq!(sampling(&a), json!({"temperature": 0.5, "maxTokens": 9, "stop": ["x"]}));
        let params = vec![("top_k".to_string(), json!(40)), ("tag".to_string(), json!("ci"))];
        let a = SamplingArgs { temperature: None, top_p: None, max_tokens: None, stop: vec![], seed: None, params };
        assert_eq!(sampling(&a), json!({"extra": {"top_k": 40, "tag": "ci"}}));
    }
}
