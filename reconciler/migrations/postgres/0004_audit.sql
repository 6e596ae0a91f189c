-- The gateway's audit log: one row per MCP session start, tools/call, prompts/get, resources/read.
CREATE TABLE audit_events (
    id           BIGSERIAL PRIMARY KEY,
    at           TEXT NOT NULL,
    project      TEXT NOT NULL,
    token        TEXT NOT NULL,
    token_prefix TEXT NOT NULL,
    session      TEXT NOT NULL,
    method       TEXT NOT NULL,
    server       TEXT NOT NULL,
    target       TEXT NOT NULL,
    duration_us  BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    error        TEXT,
    revision     TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_project ON audit_events (project, at);

-- Gated projects: who has called begin_session (per token), so any gateway replica knows.
CREATE TABLE gate_openings (
    project   TEXT NOT NULL,
    subject   TEXT NOT NULL,
    opened_at TEXT NOT NULL,
    PRIMARY KEY (project, subject)
);
