-- Chat threads with agents (gateway/src/chat) and their messages. A reply is written `pending`
-- before the model answers and kept current while it streams; a gateway that restarts marks the
-- pending rows it finds `failed`, keeping what was received.
CREATE TABLE chat_threads (
    id          TEXT PRIMARY KEY,
    project     TEXT NOT NULL,
    agent       TEXT NOT NULL,
    owner       TEXT NOT NULL,
    personality TEXT,
    title       TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
CREATE INDEX chat_threads_owner ON chat_threads (owner, updated_at);
CREATE INDEX chat_threads_project ON chat_threads (project, updated_at);

CREATE TABLE chat_messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id         TEXT NOT NULL REFERENCES chat_threads (id) ON DELETE CASCADE,
    role              TEXT NOT NULL,
    content           TEXT NOT NULL,
    tool_calls        TEXT,
    tool_call_id      TEXT,
    is_error          BIGINT NOT NULL DEFAULT 0,
    status            TEXT NOT NULL,
    error             TEXT,
    personality       TEXT,
    model             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    latency_ms        BIGINT,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL
);
CREATE INDEX chat_messages_thread ON chat_messages (thread_id, id);
CREATE INDEX chat_messages_pending ON chat_messages (status, updated_at);

-- Tool calls made by an agent during a chat carry the thread.
ALTER TABLE audit_events ADD COLUMN thread_id TEXT;
CREATE INDEX audit_events_thread ON audit_events (thread_id);
