CREATE TABLE server_status (
    runtime    TEXT NOT NULL,
    server     TEXT NOT NULL,
    state      TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (runtime, server)
);
