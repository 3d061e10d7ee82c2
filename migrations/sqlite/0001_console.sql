-- The console's store (SQLite). Times are ms since the epoch; `tier` is the resolution:
-- 0 = every collector cycle, 1 = last sample per minute, 2 = last sample per 10 minutes.
CREATE TABLE partition_offsets (
    topic TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    tier BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    earliest BIGINT NOT NULL,
    latest BIGINT NOT NULL,
    PRIMARY KEY (topic, partition_id, tier, ts)
);
CREATE INDEX partition_offsets_expiry ON partition_offsets (tier, ts);

CREATE TABLE group_offsets (
    group_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    partition_id BIGINT NOT NULL,
    tier BIGINT NOT NULL,
    ts BIGINT NOT NULL,
    committed BIGINT NOT NULL,
    end_offset BIGINT NOT NULL,
    lag BIGINT NOT NULL,
    PRIMARY KEY (group_id, tier, ts, topic, partition_id)
);
CREATE INDEX group_offsets_expiry ON group_offsets (tier, ts);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts BIGINT NOT NULL,
    user_name TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    request TEXT NOT NULL,
    result TEXT NOT NULL,
    ok BIGINT NOT NULL
);
CREATE INDEX audit_log_ts ON audit_log (ts);

-- Status thresholds; group_id '*' holds the defaults for every group.
CREATE TABLE lag_thresholds (
    group_id TEXT PRIMARY KEY,
    max_lag BIGINT NOT NULL,
    max_lag_seconds DOUBLE PRECISION NOT NULL,
    stall_seconds BIGINT NOT NULL
);
