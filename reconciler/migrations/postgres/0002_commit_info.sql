ALTER TABLE deploys ADD COLUMN author TEXT;
ALTER TABLE deploys ADD COLUMN committer TEXT;
ALTER TABLE deploys ADD COLUMN committed_at TEXT;
INSERT INTO store_meta (key, value) VALUES ('drift', '');
