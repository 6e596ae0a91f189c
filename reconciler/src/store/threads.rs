//! Chat threads and their messages (`chat_threads`, `chat_messages`): what the gateway's chat
//! engine writes while an agent answers, and reads back for `mcpctl get threads`.
//!
//! # Guarantees
//! - A reply is a row first written `pending` ([`Store::begin_message`]); while it streams its
//!   content is kept current ([`Store::update_pending`]); it ends `complete` or `failed`
//!   ([`Store::finish_message`]). A gateway that stopped mid-reply leaves the row pending; the
//!   next one marks it failed with what was received ([`Store::fail_stale_pending`]). Nothing is
//!   ever written twice for one reply: the row is updated in place, by id.
//! - Reads are scoped by the caller: [`ThreadFilter::owner`] is applied in SQL, so another owner's
//!   thread is simply not found.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now, Store, StoreError};

/// One chat thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    pub id: String,
    pub project: String,
    pub agent: String,
    /// Who the thread belongs to (`user:<name>` or `token:<project>/<name>`); not shown by the API.
    #[serde(skip)]
    pub owner: String,
    /// The personality of the last reply.
    pub personality: Option<String>,
    pub title: String,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: i64,
}

/// Tokens a reply used, as the provider reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

/// One message of a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: i64,
    #[serde(skip)]
    pub thread_id: String,
    /// `user`, `assistant` or `tool`.
    pub role: String,
    pub content: String,
    /// Tool calls an assistant message asked for: `[{id, name, arguments}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<serde_json::Value>,
    /// The call a `tool` message answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// A `tool` message whose call failed or was refused.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// `complete`, `pending` or `failed`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub personality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<i64>,
    pub created_at: String,
}

/// A message to append.
#[derive(Debug, Clone, Default)]
pub struct NewMessage<'a> {
    pub role: &'a str,
    pub content: &'a str,
    pub tool_calls: Option<&'a serde_json::Value>,
    pub tool_call_id: Option<&'a str>,
    pub is_error: bool,
    pub personality: Option<&'a str>,
    pub model: Option<&'a str>,
}

/// How a pending reply ended.
#[derive(Debug, Clone, Default)]
pub struct Finished<'a> {
    pub content: &'a str,
    pub tool_calls: Option<&'a serde_json::Value>,
    /// `Some`: the reply failed (status `failed`, with this error).
    pub error: Option<&'a str>,
    pub usage: Option<Usage>,
    pub latency_ms: Option<i64>,
}

/// A new thread, created by the first step of its first turn.
#[derive(Debug, Clone, Copy)]
pub struct NewThread<'a> {
    pub project: &'a str,
    pub agent: &'a str,
    pub owner: &'a str,
    pub title: &'a str,
}

/// One step of a turn, written in one transaction by [`Store::record_step`].
#[derive(Debug, Clone)]
pub struct Step<'a> {
    pub new_thread: Option<NewThread<'a>>,
    /// The previous reply of the turn and how it ended.
    pub finish: Option<(i64, Finished<'a>)>,
    /// Complete messages (the user's, tool results).
    pub messages: Vec<NewMessage<'a>>,
    /// The reply about to be asked for.
    pub pending: NewMessage<'a>,
}

/// Which threads to list.
#[derive(Debug, Clone, Default)]
pub struct ThreadFilter {
    /// Only this owner's (`None`: any owner — for holders of `audit`).
    pub owner: Option<String>,
    pub project: Option<String>,
    pub agent: Option<String>,
    pub limit: i64,
}

/// Status of a reply still being written.
pub const PENDING: &str = "pending";
/// Status of a message written whole.
pub const COMPLETE: &str = "complete";
/// Status of a reply that did not finish.
pub const FAILED: &str = "failed";

const THREAD_COLUMNS: &str = "t.id, t.project, t.agent, t.owner, t.personality, t.title, t.created_at, t.updated_at, (SELECT COUNT(*) FROM chat_messages m WHERE m.thread_id = t.id) AS message_count";
const MESSAGE_COLUMNS: &str = "id, thread_id, role, content, tool_calls, tool_call_id, is_error, status, error, personality, model, prompt_tokens, completion_tokens, latency_ms, created_at";

fn thread_of(r: &AnyRow) -> Result<Thread, StoreError> {
    Ok(Thread {
        id: r.try_get("id")?,
        project: r.try_get("project")?,
        agent: r.try_get("agent")?,
        owner: r.try_get("owner")?,
        personality: r.try_get("personality")?,
        title: r.try_get("title")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        message_count: r.try_get("message_count")?,
    })
}

fn message_of(r: &AnyRow) -> Result<Message, StoreError> {
    let id: i64 = r.try_get("id")?;
    let tool_calls = match r.try_get::<Option<String>, _>("tool_calls")? {
        Some(t) => {
            Some(serde_json::from_str(&t).map_err(|e| StoreError::Corrupt { key: format!("chat message {id}"), message: e.to_string() })?)
        }
        None => None,
    };
    let (p, c): (Option<i64>, Option<i64>) = (r.try_get("prompt_tokens")?, r.try_get("completion_tokens")?);
    Ok(Message {
        id,
        thread_id: r.try_get("thread_id")?,
        role: r.try_get("role")?,
        content: r.try_get("content")?,
        tool_calls,
        tool_call_id: r.try_get("tool_call_id")?,
        is_error: r.try_get::<i64, _>("is_error")? != 0,
        status: r.try_get("status")?,
        error: r.try_get("error")?,
        personality: r.try_get("personality")?,
        model: r.try_get("model")?,
        usage: match (p, c) {
            (None, None) => None,
            (p, c) => Some(Usage { prompt_tokens: p.unwrap_or(0), completion_tokens: c.unwrap_or(0) }),
        },
        latency_ms: r.try_get("latency_ms")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Create a thread.
    ///
    /// # Errors
    /// On a database error (e.g. the id exists).
    pub async fn create_thread(&self, id: &str, project: &str, agent: &str, owner: &str, title: &str) -> Result<(), StoreError> {
        let at = now();
        sqlx::query("INSERT INTO chat_threads (id, project, agent, owner, personality, title, created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, $5, $6, $6)")
            .bind(id)
            .bind(project)
            .bind(agent)
            .bind(owner)
            .bind(title)
            .bind(at)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The thread `id` if `owner` may read it (`None`: any owner).
    ///
    /// # Errors
    /// On a database error.
    pub async fn thread(&self, id: &str, owner: Option<&str>) -> Result<Option<Thread>, StoreError> {
        let sql = format!("SELECT {THREAD_COLUMNS} FROM chat_threads t WHERE t.id = $1 AND ($2 IS NULL OR t.owner = $2)");
        let row = sqlx::query(&sql).bind(id).bind(owner).fetch_optional(&self.pool).await?;
        row.as_ref().map(thread_of).transpose()
    }

    /// Threads matching `filter`, most recently updated first.
    ///
    /// # Errors
    /// On a database error.
    pub async fn threads(&self, filter: &ThreadFilter) -> Result<Vec<Thread>, StoreError> {
        let sql = format!(
            "SELECT {THREAD_COLUMNS} FROM chat_threads t WHERE ($1 IS NULL OR t.owner = $1) AND ($2 IS NULL OR t.project = $2) AND ($3 IS NULL OR t.agent = $3) ORDER BY t.updated_at DESC, t.id LIMIT $4"
        );
        let rows = sqlx::query(&sql)
            .bind(filter.owner.as_deref())
            .bind(filter.project.as_deref())
            .bind(filter.agent.as_deref())
            .bind(filter.limit.max(1))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(thread_of).collect()
    }

    /// Every message of thread `id`, oldest first.
    ///
    /// # Errors
    /// On a database error, or a corrupt row.
    pub async fn messages(&self, thread: &str) -> Result<Vec<Message>, StoreError> {
        let sql = format!("SELECT {MESSAGE_COLUMNS} FROM chat_messages WHERE thread_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(thread).fetch_all(&self.pool).await?;
        rows.iter().map(message_of).collect()
    }

    /// Append a whole message (status `complete`); returns its id. Touches the thread (and sets
    /// its personality when the message names one).
    ///
    /// # Errors
    /// On a database error.
    pub async fn add_message(&self, thread: &str, m: &NewMessage<'_>) -> Result<i64, StoreError> {
        self.insert_message(thread, m, COMPLETE).await
    }

    /// Append a reply as `pending`; returns its id.
    ///
    /// # Errors
    /// On a database error.
    pub async fn begin_message(&self, thread: &str, m: &NewMessage<'_>) -> Result<i64, StoreError> {
        self.insert_message(thread, m, PENDING).await
    }

    /// Write one step of a turn in one transaction (one commit, so one flush to disk): create the
    /// thread if `step.new_thread`, end the previous reply, append the complete messages, then the
    /// new pending reply, whose id is returned.
    ///
    /// # Errors
    /// On a database error (nothing of the step is written).
    pub async fn record_step(&self, thread: &str, step: &Step<'_>) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(t) = &step.new_thread {
            let at = now();
            sqlx::query("INSERT INTO chat_threads (id, project, agent, owner, personality, title, created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, $5, $6, $6)")
                .bind(thread)
                .bind(t.project)
                .bind(t.agent)
                .bind(t.owner)
                .bind(t.title)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
        if let Some((id, f)) = &step.finish {
            finish_in(&mut tx, *id, f).await?;
        }
        for m in &step.messages {
            insert_in(&mut tx, thread, m, COMPLETE).await?;
        }
        let id = insert_in(&mut tx, thread, &step.pending, PENDING).await?;
        tx.commit().await?;
        Ok(id)
    }

    async fn insert_message(&self, thread: &str, m: &NewMessage<'_>, status: &str) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let id = insert_in(&mut tx, thread, m, status).await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Keep a pending reply's content current (what was received so far) and its heartbeat fresh.
    ///
    /// # Errors
    /// On a database error.
    pub async fn update_pending(&self, id: i64, content: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE chat_messages SET content = $2, updated_at = $3 WHERE id = $1 AND status = 'pending'")
            .bind(id)
            .bind(content)
            .bind(now())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// End a pending reply: `complete`, or `failed` when `f.error` is set.
    ///
    /// # Errors
    /// On a database error.
    pub async fn finish_message(&self, id: i64, f: &Finished<'_>) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        finish_in(&mut conn, id, f).await
    }

    /// Mark `failed` every pending reply whose heartbeat is older than `before` (RFC 3339): replies
    /// of a gateway that stopped. Their content (what was received) stays. Returns how many.
    ///
    /// # Errors
    /// On a database error.
    pub async fn fail_stale_pending(&self, before: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE chat_messages SET status = 'failed', error = $2, updated_at = $3 WHERE status = 'pending' AND updated_at < $1",
        )
        .bind(before)
        .bind("interrupted: the gateway stopped before the reply finished (the content is what was received)")
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }
}

/// Append one message (touching its thread) on `conn`.
async fn insert_in(conn: &mut sqlx::AnyConnection, thread: &str, m: &NewMessage<'_>, status: &str) -> Result<i64, StoreError> {
    let at = now();
    let row = sqlx::query("INSERT INTO chat_messages (thread_id, role, content, tool_calls, tool_call_id, is_error, status, personality, model, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10) RETURNING id")
        .bind(thread)
        .bind(m.role)
        .bind(m.content)
        .bind(m.tool_calls.map(|v| v.to_string()))
        .bind(m.tool_call_id)
        .bind(i64::from(m.is_error))
        .bind(status)
        .bind(m.personality)
        .bind(m.model)
        .bind(&at)
        .fetch_one(&mut *conn)
        .await?;
    sqlx::query("UPDATE chat_threads SET updated_at = $2, personality = COALESCE($3, personality) WHERE id = $1")
        .bind(thread)
        .bind(&at)
        .bind(m.personality)
        .execute(&mut *conn)
        .await?;
    Ok(row.try_get("id")?)
}

/// End a pending reply on `conn`.
async fn finish_in(conn: &mut sqlx::AnyConnection, id: i64, f: &Finished<'_>) -> Result<(), StoreError> {
    let status = if f.error.is_some() { FAILED } else { COMPLETE };
    sqlx::query("UPDATE chat_messages SET content = $2, tool_calls = $3, status = $4, error = $5, prompt_tokens = $6, completion_tokens = $7, latency_ms = $8, updated_at = $9 WHERE id = $1 AND status = 'pending'")
        .bind(id)
        .bind(f.content)
        .bind(f.tool_calls.map(|v| v.to_string()))
        .bind(status)
        .bind(f.error)
        .bind(f.usage.map(|u| u.prompt_tokens))
        .bind(f.usage.map(|u| u.completion_tokens))
        .bind(f.latency_ms)
        .bind(now())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
