-- Per-minute aggregates of the audit log, the data of the web UI's plots (calls per minute,
-- latency percentiles, error rate per server). Maintained by `Store::insert_audit` in the same
-- transaction as the events (`reconciler::audit_minutes`), pruned with them; never read by
-- anything that needs exact single events. `initialize` is not counted (it is no call).
CREATE TABLE audit_minutes (
    project  TEXT NOT NULL,
    -- 'YYYY-MM-DDTHH:MM', UTC: the first 16 characters of audit_events.at.
    minute   TEXT NOT NULL,
    server   TEXT NOT NULL,
    calls    BIGINT NOT NULL,
    errors   BIGINT NOT NULL,
    denied   BIGINT NOT NULL,
    total_us BIGINT NOT NULL,
    -- Latency histogram: hN counts the calls in bucket N of audit_minutes::BOUNDS_US
    -- (< 1 ms, < 2.5 ms, < 5 ms, < 10 ms, < 25 ms, < 50 ms, < 100 ms, < 250 ms, < 500 ms, < 1 s,
    -- < 2.5 s, the rest).
    h0 BIGINT NOT NULL, h1 BIGINT NOT NULL, h2 BIGINT NOT NULL, h3 BIGINT NOT NULL,
    h4 BIGINT NOT NULL, h5 BIGINT NOT NULL, h6 BIGINT NOT NULL, h7 BIGINT NOT NULL,
    h8 BIGINT NOT NULL, h9 BIGINT NOT NULL, h10 BIGINT NOT NULL, h11 BIGINT NOT NULL,
    PRIMARY KEY (project, minute, server)
);
CREATE INDEX audit_minutes_minute ON audit_minutes (minute);
INSERT INTO audit_minutes (project, minute, server, calls, errors, denied, total_us, h0, h1, h2, h3, h4, h5, h6, h7, h8, h9, h10, h11)
SELECT project, substr(at, 1, 16), server, COUNT(*),
    SUM(CASE WHEN outcome = 'error' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'denied' THEN 1 ELSE 0 END),
    CAST(SUM(duration_us) AS BIGINT),
    SUM(CASE WHEN duration_us < 1000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 1000 AND duration_us < 2500 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 2500 AND duration_us < 5000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 5000 AND duration_us < 10000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 10000 AND duration_us < 25000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 25000 AND duration_us < 50000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 50000 AND duration_us < 100000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 100000 AND duration_us < 250000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 250000 AND duration_us < 500000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 500000 AND duration_us < 1000000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 1000000 AND duration_us < 2500000 THEN 1 ELSE 0 END),
    SUM(CASE WHEN duration_us >= 2500000 THEN 1 ELSE 0 END)
FROM audit_events WHERE method <> 'initialize'
GROUP BY project, substr(at, 1, 16), server;

-- The audit log's filters (project, token, server + tool, outcome), newest first by id (the
-- UI's keyset pagination: `id < before ORDER BY id DESC`).
CREATE INDEX audit_events_project_id ON audit_events (project, id);
CREATE INDEX audit_events_token_id ON audit_events (project, token, id);
CREATE INDEX audit_events_server_id ON audit_events (project, server, target, id);
CREATE INDEX audit_events_outcome_id ON audit_events (project, outcome, id);
