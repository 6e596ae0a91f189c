-- The store's fingerprint (see `plan::fingerprint`) as of the last apply that knew it, so an
-- apply checks it without hashing every stored body. Any change to `resources` by anyone, in
-- any way, clears it in the same transaction (the trigger, once per statement); '' means
-- "unknown: compute it from the table". So the value is always either empty or exact.
INSERT INTO store_meta (key, value) VALUES ('fingerprint', '');
CREATE FUNCTION resources_fingerprint_clear() RETURNS trigger AS $$
BEGIN
    UPDATE store_meta SET value = '' WHERE key = 'fingerprint' AND value <> '';
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER resources_fingerprint_change AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON resources
    FOR EACH STATEMENT EXECUTE FUNCTION resources_fingerprint_clear();
