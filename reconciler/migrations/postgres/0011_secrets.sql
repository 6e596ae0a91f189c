-- Where each Secret's values are kept when that differs from the repo (set by `mcpctl migrate
-- secrets`), and the values the plaintext backend holds itself: age ciphertext to the
-- installation's own recipient, never plaintext.
CREATE TABLE secret_locations (
    secret     TEXT PRIMARY KEY,
    backend    TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE secret_values (
    secret     TEXT NOT NULL,
    key        TEXT NOT NULL,
    ciphertext TEXT NOT NULL,
    PRIMARY KEY (secret, key)
);
