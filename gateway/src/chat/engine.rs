//! One chat turn: judge the request (agent, RBAC, personality, `Llm` and its key, the thread),
//! then run the tool-use loop — model, tool calls through the project's MCP path, model again —
//! persisting every step and streaming it as [`Event`]s.
//!
//! # Guarantees
//! - Everything that can be refused is refused by [`prepare`], before a thread or message is
//!   written and before a stream begins (so refusals are plain 4xx answers).
//! - The user's message is stored `complete`; each model reply is a row written `pending` before
//!   the first text is passed on, kept current every [`PENDING_FLUSH`] (and at least every
//!   [`HEARTBEAT`]), and ended `complete` or `failed` with what was received. The turn runs in its
//!   own task: a client that goes away does not cut it short.
//! - At most `maxToolIterations` (default [`DEFAULT_MAX_TOOL_ITERATIONS`]) rounds of tool calls;
//!   at most [`MAX_TOOL_CALLS_PER_ROUND`] calls in one round (run concurrently; more are answered
//!   with an error). When the bound is reached the model is asked once more with tools disabled.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reconciler::store::threads::{Finished, Message, NewMessage, NewThread, Step, Usage as StoredUsage, COMPLETE};
use schema::rbac::Request as RbacRequest;
use schema::spec::{Role as RbacRole, Sampling};
use schema::{Kind, Resource};
use serde::Serialize;
use serde_json::json;
use tokio::sync::mpsc;

use super::error::ChatError;
use super::provider::{Llm, Reply, Request, Role, ToolCall, ToolDef, Turn, Usage};
use super::tools::ToolSession;
use crate::auth::{Caller, Principal};
use crate::mcp::access::Access;
use crate::AppState;

/// Rounds of tool calls per turn when the agent sets no `maxToolIterations`.
pub const DEFAULT_MAX_TOOL_ITERATIONS: u32 = 10;
/// Tool calls run from one model reply; further ones are answered with an error.
pub const MAX_TOOL_CALLS_PER_ROUND: usize = 16;
/// How often a streaming reply's pending row is brought up to date.
pub const PENDING_FLUSH: Duration = Duration::from_millis(250);
/// A pending row is touched at least this often while its reply runs.
pub const HEARTBEAT: Duration = Duration::from_secs(20);
/// Longest user message accepted (bytes).
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Longest thread title (bytes): the start of the first message.
pub const MAX_TITLE_BYTES: usize = 80;
/// Longest thread history sent to the model (messages, newest kept).
pub const MAX_HISTORY_MESSAGES: usize = 500;

/// What a chat call asks for.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub project: Option<String>,
    pub agent: String,
    pub message: String,
    pub thread_id: Option<String>,
    pub personality: Option<String>,
    pub system: Option<String>,
    pub sampling: Sampling,
    /// The conversation as the client holds it (OpenAI-compatible calls): sent instead of the
    /// stored thread's history.
    pub history: Option<Vec<Turn>>,
}

/// What a turn reports while it runs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Thread {
        #[serde(rename = "threadId")]
        thread_id: String,
    },
    Delta {
        text: String,
    },
    ToolCallStart {
        id: String,
        name: String,
        arguments: String,
    },
    ToolCallEnd {
        id: String,
        name: String,
        #[serde(rename = "isError")]
        is_error: bool,
        content: String,
    },
    Done(Done),
    Error {
        message: String,
    },
}

/// The end of a turn.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Done {
    pub thread_id: String,
    pub message_id: i64,
    pub usage: StoredUsage,
    pub model: String,
    pub personality: Option<String>,
    /// Every text the model produced this turn, in order.
    #[serde(skip)]
    pub content: String,
    /// The tool calls of this turn with their results.
    #[serde(skip)]
    pub tool_calls: Vec<serde_json::Value>,
    /// The tool-call bound was reached (the last answer was asked for without tools).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub tool_limit_reached: bool,
}

impl Event {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Thread { .. } => "thread",
            Event::Delta { .. } => "delta",
            Event::ToolCallStart { .. } => "tool_call_start",
            Event::ToolCallEnd { .. } => "tool_call_end",
            Event::Done(_) => "done",
            Event::Error { .. } => "error",
        }
    }

    /// The SSE data (the event without its tag).
    pub fn data(&self) -> serde_json::Value {
        match self {
            Event::Done(d) => json!(d),
            other => {
                let mut v = json!(other);
                if let Some(o) = v.as_object_mut() {
                    o.remove("event");
                }
                v
            }
        }
    }
}

/// A judged turn, ready to run.
pub struct Prepared {
    app: Arc<AppState>,
    access: Access,
    project: String,
    agent: String,
    personality: Option<String>,
    llm: Llm,
    system: String,
    sampling: Sampling,
    max_iterations: u32,
    thread_id: String,
    /// `Some`: the thread is new (owner, title) and is created when the turn runs.
    new_thread: Option<(String, String)>,
    history: Vec<Turn>,
    message: String,
}

/// Who owns what a caller creates: its user, else the token itself.
pub fn owner_of(c: &Caller) -> String {
    match &c.principal {
        Principal::McpToken { user: Some(u), .. } | Principal::User { name: u, .. } => format!("user:{u}"),
        Principal::McpToken { name, project, user: None } => format!("token:{project}/{name}"),
    }
}

/// Whether `c` may read every thread of its project (holders of `audit`).
pub fn reads_all_threads(c: &Caller, project: &str) -> bool {
    c.can(Some(project), RbacRequest::Action("audit"))
}

/// Whether `c` may chat with `agent`: `{role: run, action: chat}`, or run on that agent.
pub fn may_chat(c: &Caller, project: &str, agent: &str) -> bool {
    c.can(Some(project), RbacRequest::Action("chat"))
        || c.can(Some(project), RbacRequest::Resource { role: RbacRole::Run, kind: Kind::Agent, name: Some(agent) })
}

/// The project a call is about: the one named, which must be the caller's.
///
/// # Errors
/// [`ChatError::Forbidden`] for another project.
pub fn project_of(c: &Caller, named: Option<&str>) -> Result<String, ChatError> {
    match named {
        Some(p) if !c.acts_in(p) => {
            Err(ChatError::Forbidden(format!("this token belongs to project `{}`, not `{p}`", c.project().unwrap_or_default())))
        }
        Some(p) => Ok(p.to_owned()),
        None => c
            .project()
            .map(str::to_owned)
            .ok_or_else(|| ChatError::BadRequest("name the agent's `project` (a user's token is not bound to one)".into())),
    }
}

/// Judge a chat call and load what it needs.
///
/// # Errors
/// [`ChatError`]: unknown agent, personality or thread (404), no grant (403), a bad message
/// (400), an `Llm` whose key cannot be read (500), a store error (503).
pub async fn prepare(app: &Arc<AppState>, caller: &Caller, input: Input) -> Result<Prepared, ChatError> {
    let snapshot = app.snapshot();
    let state = &snapshot.catalog.state;
    let project = project_of(caller, input.project.as_deref())?;
    if input.message.trim().is_empty() {
        return Err(ChatError::BadRequest("`message` is empty".into()));
    }
    if input.message.len() > MAX_MESSAGE_BYTES {
        return Err(ChatError::BadRequest(format!("`message` is longer than {MAX_MESSAGE_BYTES} bytes")));
    }
    if let Err((key, why)) = schema::agent::check_extra(&input.sampling.extra) {
        let at = if key.is_empty() { String::new() } else { format!(" (`sampling.extra.{key}`)") };
        return Err(ChatError::BadRequest(format!("{why}{at}")));
    }
    let agent = schema::agent::agent(state, &project, &input.agent).map_err(|e| ChatError::NotFound(e.to_string()))?;
    if !may_chat(caller, &project, &input.agent) {
        return Err(ChatError::Forbidden(format!(
            "chat with agent `{}` (needs `{{role: run, action: chat}}` or `{{role: run, resource: agents, name: {}}}`)",
            input.agent, input.agent
        )));
    }
    let owner = owner_of(caller);
    let (thread_id, new_thread, stored) = match &input.thread_id {
        Some(id) => {
            let visible = if reads_all_threads(caller, &project) { None } else { Some(owner.as_str()) };
            let t = app
                .store
                .thread(id, visible)
                .await?
                .filter(|t| t.project == project && t.agent == input.agent)
                .ok_or_else(|| ChatError::NotFound(format!("thread `{id}` of agent `{}`", input.agent)))?;
            let messages = if input.history.is_some() { Vec::new() } else { app.store.messages(id).await? };
            (id.clone(), None, Some((t, messages)))
        }
        None => {
            let mut title = input.message.lines().find(|l| !l.trim().is_empty()).unwrap_or_default().trim().to_string();
            crate::audit::truncate(&mut title, MAX_TITLE_BYTES);
            (format!("th_{}", uuid::Uuid::new_v4().simple()), Some((owner, title)), None)
        }
    };
    // A thread keeps its personality unless the call switches it.
    let asked = input.personality.clone().or_else(|| stored.as_ref().and_then(|(t, _)| t.personality.clone()));
    let persona =
        schema::agent::personality(state, &project, &input.agent, asked.as_deref()).map_err(|e| ChatError::NotFound(e.to_string()))?;
    let blocks = schema::agent::system_blocks(state, &project, &input.agent, persona.map(|(n, _)| n), input.system.as_deref())
        .map_err(|e| ChatError::NotFound(e.to_string()))?;
    let sampling = schema::agent::effective_sampling(agent, persona.map(|(_, p)| p), &input.sampling);
    let llm = app.chat.llm(state, &project, &agent.llm, &snapshot.catalog.revision)?;
    let history = match input.history {
        Some(h) => h,
        None => stored.map(|(_, m)| history_of(&m)).unwrap_or_default(),
    };
    let access =
        Access { caller: Some(caller.clone()), bindings: caller.bindings_in(&project), session: None, thread: Some(thread_id.clone()) };
    Ok(Prepared {
        app: app.clone(),
        access,
        project,
        agent: input.agent,
        personality: persona.map(|(n, _)| n.to_string()),
        llm,
        system: schema::agent::system_text(&blocks),
        sampling,
        max_iterations: agent.max_tool_iterations.unwrap_or(DEFAULT_MAX_TOOL_ITERATIONS),
        thread_id,
        new_thread,
        history,
        message: input.message,
    })
}

/// The stored messages as the model sees them: complete ones only; an assistant's tool call
/// whose result was never stored (a turn cut short) is answered as not run, so the history stays
/// well-formed for the provider.
pub fn history_of(messages: &[Message]) -> Vec<Turn> {
    let mut out = Vec::new();
    let kept: Vec<&Message> = messages.iter().filter(|m| m.status == COMPLETE).collect();
    let kept = &kept[kept.len().saturating_sub(MAX_HISTORY_MESSAGES)..];
    let mut i = 0;
    while i < kept.len() {
        let m = kept[i];
        i += 1;
        match m.role.as_str() {
            "user" => {
                out.push(Turn { role: Role::User, content: m.content.clone(), tool_calls: vec![], tool_call_id: None, is_error: false })
            }
            "assistant" => {
                let calls: Vec<ToolCall> = m.tool_calls.clone().and_then(|v| serde_json::from_value(v).ok()).unwrap_or_default();
                out.push(Turn {
                    role: Role::Assistant,
                    content: m.content.clone(),
                    tool_calls: calls.clone(),
                    tool_call_id: None,
                    is_error: false,
                });
                let mut answered = std::collections::HashSet::new();
                while i < kept.len() && kept[i].role == "tool" {
                    let t = kept[i];
                    if let Some(id) = t.tool_call_id.as_deref().filter(|id| calls.iter().any(|c| c.id == *id)) {
                        answered.insert(id.to_string());
                        out.push(Turn {
                            role: Role::Tool,
                            content: t.content.clone(),
                            tool_calls: vec![],
                            tool_call_id: Some(id.to_string()),
                            is_error: t.is_error,
                        });
                    }
                    i += 1;
                }
                for c in calls.iter().filter(|c| !answered.contains(&c.id)) {
                    out.push(Turn {
                        role: Role::Tool,
                        content: "not run: the turn was interrupted".into(),
                        tool_calls: vec![],
                        tool_call_id: Some(c.id.clone()),
                        is_error: true,
                    });
                }
            }
            // A tool result without its call (its assistant row failed) is dropped.
            _ => {}
        }
    }
    out
}

impl Prepared {
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }

    pub fn model(&self) -> &str {
        &self.llm.model
    }

    /// Run the turn in its own task; its events arrive on the returned receiver, `thread` first
    /// and `done` or `error` last.
    pub fn spawn(self) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            let _ = tx.send(Event::Thread { thread_id: self.thread_id.clone() }).await;
            let last = match self.run(&tx).await {
                Ok(done) => Event::Done(done),
                Err(e) => Event::Error { message: e.to_string() },
            };
            let _ = tx.send(last).await;
        });
        rx
    }

    async fn run(mut self, tx: &mpsc::Sender<Event>) -> Result<Done, ChatError> {
        let store = self.app.store.clone();
        // The thread, the user's message and the first pending reply are written in one
        // transaction, in their own task, while the tools are listed and the model is asked; no
        // text is passed on before they are stored.
        let first = {
            let (store, thread, project, agent) = (store.clone(), self.thread_id.clone(), self.project.clone(), self.agent.clone());
            let (new_thread, message) = (self.new_thread.take(), self.message.clone());
            let (personality, model) = (self.personality.clone(), self.llm.model.clone());
            tokio::spawn(async move {
                let step = Step {
                    new_thread: new_thread.as_ref().map(|(owner, title)| NewThread { project: &project, agent: &agent, owner, title }),
                    finish: None,
                    messages: vec![NewMessage {
                        role: "user",
                        content: &message,
                        personality: personality.as_deref(),
                        ..Default::default()
                    }],
                    pending: pending_of(personality.as_deref(), &model),
                };
                Ok(store.record_step(&thread, &step).await?)
            })
        };
        let session = match ToolSession::open(self.app.clone(), &self.project, self.access.clone()).await {
            Ok(s) => {
                let tools = s.list().await;
                Some((s, tools))
            }
            Err(e) => {
                tracing::warn!(error = %e, "an agent answers without tools");
                None
            }
        };
        let (session, tools) = match session {
            Some((s, t)) => (Some(s), t),
            None => (None, Vec::new()),
        };
        let mut row = first;
        self.history.push(Turn {
            role: Role::User,
            content: self.message.clone(),
            tool_calls: vec![],
            tool_call_id: None,
            is_error: false,
        });
        let mut total = Usage::default();
        let mut content = String::new();
        let mut calls_done: Vec<serde_json::Value> = Vec::new();
        let mut rounds = 0;
        let mut limit_reached = false;
        loop {
            let allow_tools = rounds < self.max_iterations;
            let system = if allow_tools {
                self.system.clone()
            } else {
                limit_reached = true;
                format!(
                    "{}\n\nThe limit of {} tool-call rounds for this reply is reached: answer now, without tools.",
                    self.system, self.max_iterations
                )
            };
            let (reply, message_id, ended) = self.model_step(&system, &tools, allow_tools, row, tx).await?;
            total.prompt += reply.usage.prompt;
            total.completion += reply.usage.completion;
            content.push_str(&reply.content);
            let calls = if allow_tools { reply.tool_calls.clone() } else { Vec::new() };
            self.history.push(Turn {
                role: Role::Assistant,
                content: reply.content.clone(),
                tool_calls: calls.clone(),
                tool_call_id: None,
                is_error: false,
            });
            if calls.is_empty() {
                store.finish_message(message_id, &ended.as_finished()).await?;
                return Ok(Done {
                    thread_id: self.thread_id.clone(),
                    message_id,
                    usage: StoredUsage { prompt_tokens: total.prompt, completion_tokens: total.completion },
                    model: self.llm.model.clone(),
                    personality: self.personality.clone(),
                    content,
                    tool_calls: calls_done,
                    tool_limit_reached: limit_reached,
                });
            }
            rounds += 1;
            for c in &calls {
                let _ = tx.send(Event::ToolCallStart { id: c.id.clone(), name: c.name.clone(), arguments: c.arguments.clone() }).await;
            }
            let outcomes = futures::future::join_all(calls.iter().enumerate().map(|(i, c)| {
                let session = session.as_ref();
                async move {
                    match session {
                        _ if i >= MAX_TOOL_CALLS_PER_ROUND => super::tools::Outcome {
                            is_error: true,
                            content: format!("not run: at most {MAX_TOOL_CALLS_PER_ROUND} tool calls per reply"),
                        },
                        Some(s) => s.call(c).await,
                        None => super::tools::Outcome { is_error: true, content: "not run: the project's tools are unavailable".into() },
                    }
                }
            }))
            .await;
            // The reply that asked, the results and the next pending reply are written in one
            // transaction while the model is asked again; none of its text is passed on before.
            let results: Vec<(String, String, bool)> =
                calls.iter().zip(&outcomes).map(|(c, o)| (c.id.clone(), o.content.clone(), o.is_error)).collect();
            let (store2, thread, personality, model) =
                (store.clone(), self.thread_id.clone(), self.personality.clone(), self.llm.model.clone());
            row = tokio::spawn(async move {
                let messages = results
                    .iter()
                    .map(|(id, content, is_error)| NewMessage {
                        role: "tool",
                        content,
                        tool_call_id: Some(id),
                        is_error: *is_error,
                        personality: personality.as_deref(),
                        ..Default::default()
                    })
                    .collect();
                let step = Step {
                    new_thread: None,
                    finish: Some((message_id, ended.as_finished())),
                    messages,
                    pending: pending_of(personality.as_deref(), &model),
                };
                Ok(store2.record_step(&thread, &step).await?)
            });
            for (c, o) in calls.iter().zip(outcomes) {
                calls_done.push(json!({"id": c.id, "name": c.name, "arguments": c.arguments, "isError": o.is_error, "content": o.content}));
                let _ = tx
                    .send(Event::ToolCallEnd { id: c.id.clone(), name: c.name.clone(), is_error: o.is_error, content: o.content.clone() })
                    .await;
                self.history.push(Turn {
                    role: Role::Tool,
                    content: o.content,
                    tool_calls: vec![],
                    tool_call_id: Some(c.id.clone()),
                    is_error: o.is_error,
                });
            }
        }
    }

    /// One model call: its text streamed once its pending row (written by `row`) exists; returns
    /// the reply, the row's id and how it ended (for the caller to store with what follows).
    async fn model_step(
        &self,
        system: &str,
        tools: &[ToolDef],
        allow_tools: bool,
        row: PendingRow,
        tx: &mpsc::Sender<Event>,
    ) -> Result<(Reply, i64, Ended), ChatError> {
        let store = &self.app.store;
        let started = Instant::now();
        let req = Request { system, messages: &self.history, tools, allow_tools, sampling: &self.sampling };
        // The provider is asked and read while the row is written; the first text (or the end)
        // waits for the row.
        let stream = self.llm.stream(req).await;
        let mut row = Some(row);
        let mut id = 0;
        let wait_row = |row: &mut Option<PendingRow>| {
            let r = row.take();
            async move {
                match r {
                    Some(h) => h.await.map_err(|e| ChatError::Internal(format!("writing the thread: {e}")))?.map(Some),
                    None => Ok(None),
                }
            }
        };
        if stream.is_err() {
            id = wait_row(&mut row).await?.unwrap_or(id);
        }
        let fail = |id: i64, text: String, e: ChatError| async move {
            let msg = e.to_string();
            let f = Finished { content: &text, error: Some(&msg), latency_ms: Some(millis(started)), ..Default::default() };
            if let Err(se) = store.finish_message(id, &f).await {
                tracing::error!(error = %se, "cannot record a failed reply");
            }
            Err(e)
        };
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => return fail(id, String::new(), e.into()).await,
        };
        let mut text = String::new();
        let mut flushed = Instant::now();
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + HEARTBEAT, HEARTBEAT);
        loop {
            let next = tokio::select! {
                n = stream.next_text() => n,
                _ = heartbeat.tick(), if row.is_none() => {
                    let _ = store.update_pending(id, &text).await;
                    continue;
                }
            };
            match next {
                Ok(Some(t)) => {
                    if let Some(written) = wait_row(&mut row).await? {
                        id = written;
                    }
                    text.push_str(&t);
                    let _ = tx.send(Event::Delta { text: t }).await;
                    if flushed.elapsed() >= PENDING_FLUSH {
                        flushed = Instant::now();
                        if let Err(e) = store.update_pending(id, &text).await {
                            tracing::warn!(error = %e, "cannot bring a pending reply up to date");
                        }
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    if let Some(written) = wait_row(&mut row).await? {
                        id = written;
                    }
                    return fail(id, text, e.into()).await;
                }
            }
        }
        if let Some(written) = wait_row(&mut row).await? {
            id = written;
        }
        let reply = stream.finish();
        let calls = if allow_tools { reply.tool_calls.clone() } else { Vec::new() };
        let ended = Ended {
            content: reply.content.clone(),
            tool_calls: (!calls.is_empty()).then(|| json!(calls)),
            usage: StoredUsage { prompt_tokens: reply.usage.prompt, completion_tokens: reply.usage.completion },
            latency_ms: millis(started),
        };
        Ok((reply, id, ended))
    }
}

/// The id of a pending reply being written in its own task.
type PendingRow = tokio::task::JoinHandle<Result<i64, ChatError>>;

/// How a reply ended, owned (to be stored with what follows it).
struct Ended {
    content: String,
    tool_calls: Option<serde_json::Value>,
    usage: StoredUsage,
    latency_ms: i64,
}

impl Ended {
    fn as_finished(&self) -> Finished<'_> {
        Finished {
            content: &self.content,
            tool_calls: self.tool_calls.as_ref(),
            error: None,
            usage: Some(self.usage),
            latency_ms: Some(self.latency_ms),
        }
    }
}

/// The pending row of a reply about to be asked for.
fn pending_of<'a>(personality: Option<&'a str>, model: &'a str) -> NewMessage<'a> {
    NewMessage { role: "assistant", content: "", personality, model: Some(model), ..Default::default() }
}

fn millis(since: Instant) -> i64 {
    i64::try_from(since.elapsed().as_millis()).unwrap_or(i64::MAX)
}

/// The name of an `Llm` in errors: `project/name`, or `name` when cluster-wide.
pub fn llm_name(res: &Resource) -> String {
    match &res.metadata.project {
        Some(p) => format!("{p}/{}", res.name()),
        None => res.name().to_string(),
    }
}
