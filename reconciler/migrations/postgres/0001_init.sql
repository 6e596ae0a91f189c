CREATE TABLE resources (
    kind       TEXT NOT NULL,
    project    TEXT NOT NULL DEFAULT '',
    name       TEXT NOT NULL,
    body       TEXT NOT NULL,
    hash       TEXT NOT NULL,
    source     TEXT,
    revision   TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, project, name)
);
CREATE TABLE deploys (
    id          BIGSERIAL PRIMARY KEY,
    revision    TEXT NOT NULL,
    actor       TEXT NOT NULL,
    message     TEXT,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    summary     TEXT NOT NULL,
    error       TEXT
);
CREATE TABLE store_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
INSERT INTO store_meta (key, value) VALUES ('lock', '0');
