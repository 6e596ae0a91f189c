-- The store's fingerprint (see `plan::fingerprint`) as of the last apply that knew it, so an
-- apply checks it without hashing every stored body. Any change to `resources` by anyone, in
-- any way, clears it in the same transaction (the triggers); '' means "unknown: compute it from
-- the table". So the value is always either empty or exact.
INSERT INTO store_meta (key, value) VALUES ('fingerprint', '');
CREATE TRIGGER resources_fingerprint_insert AFTER INSERT ON resources
BEGIN
    UPDATE store_meta SET value = '' WHERE key = 'fingerprint' AND value <> '';
END;
CREATE TRIGGER resources_fingerprint_update AFTER UPDATE ON resources
BEGIN
    UPDATE store_meta SET value = '' WHERE key = 'fingerprint' AND value <> '';
END;
CREATE TRIGGER resources_fingerprint_delete AFTER DELETE ON resources
BEGIN
    UPDATE store_meta SET value = '' WHERE key = 'fingerprint' AND value <> '';
END;
