-- When each McpToken (by the SHA-256 of the raw token) was last used, and how often: written by
-- the gateway in batches, read by `mcpctl get mcptokens`. A re-minted token has a new hash and
-- starts at "never".
CREATE TABLE token_usage (
    hash         TEXT PRIMARY KEY,
    project      TEXT NOT NULL,
    token        TEXT NOT NULL,
    last_used_at TEXT NOT NULL,
    uses         BIGINT NOT NULL
);
