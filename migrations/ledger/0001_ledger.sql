-- The ledger: iclock-sync's own state, in one SQLite file in the cache folder.
-- Every punch read, where each went, the devices' cursors, the quarantine and the
-- history of cycles. Delivery states (deliveries.state):
--   0 pending   1 failed (retried at due_at)   2 delivered   3 already present
--   4 skipped   5 withheld   6 rejected   7 unmapped
-- 0 and 1 are "open"; the rest are settled.

-- Every punch read, once. `seq` orders them by arrival and keys the deliveries.
CREATE TABLE punches (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,  -- the punch ID under the configured scheme
    device      TEXT NOT NULL,         -- the [[device]] name
    timezone    TEXT NOT NULL,         -- its IANA zone
    serial      TEXT NOT NULL,         -- the terminal's serial number
    terminal    TEXT NOT NULL,         -- its name at the source (BioTime's alias), or ''
    user_id     TEXT NOT NULL,         -- the PIN
    local_time  TEXT NOT NULL,         -- device wall time, 'YYYY-MM-DD HH:MM:SS'
    state       INTEGER NOT NULL,
    verify_mode INTEGER NOT NULL,
    work_code   TEXT NOT NULL,
    source      TEXT NOT NULL,         -- zk, biotime
    source_key  TEXT NOT NULL,
    read_at     TEXT NOT NULL          -- when it was first read (UTC)
);
CREATE INDEX punches_by_user ON punches (user_id, local_time);
CREATE INDEX punches_by_device ON punches (device, local_time);

-- IDs known to be delivered everywhere before the ledger (the Python tool's cache, an
-- earlier version's cache): a punch read with one of them is not sent again.
CREATE TABLE delivered_before (
    id TEXT PRIMARY KEY NOT NULL
) WITHOUT ROWID;

-- The destinations, as configured; `identity` is the store's own marker, so that a
-- store replaced or emptied is noticed.
CREATE TABLE sinks (
    id        INTEGER PRIMARY KEY,
    name      TEXT NOT NULL UNIQUE,
    target    TEXT NOT NULL,
    identity  TEXT,
    active    INTEGER NOT NULL DEFAULT 1,
    added_at  TEXT NOT NULL
);

-- Per punch and sink: where it stands.
CREATE TABLE deliveries (
    sink_id   INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    state     INTEGER NOT NULL,
    reason    TEXT,
    attempts  INTEGER NOT NULL DEFAULT 0,
    due_at    TEXT,                   -- open: not before then (UTC); NULL: at once
    cycle     INTEGER,                -- the cycle that settled it
    PRIMARY KEY (sink_id, seq)
) WITHOUT ROWID;
CREATE INDEX deliveries_open ON deliveries (sink_id, seq) WHERE state <= 1;
CREATE INDEX deliveries_refused ON deliveries (sink_id, state) WHERE state >= 5;

-- Per device: where the next read starts, and how it last went.
CREATE TABLE devices (
    name             TEXT PRIMARY KEY NOT NULL,
    kind             TEXT NOT NULL,
    location         TEXT NOT NULL,
    cursor           TEXT,            -- JSON, the source's own
    last_read_at     TEXT,            -- last read without an error
    last_error       TEXT,
    last_error_at    TEXT,
    facts            TEXT             -- JSON: serial, firmware, clock drift, when known
) WITHOUT ROWID;

-- Records refused before any sink saw them, with the reason.
CREATE TABLE quarantine (
    source_key      TEXT PRIMARY KEY NOT NULL,
    device          TEXT NOT NULL,
    reason          TEXT NOT NULL,
    record          TEXT NOT NULL,    -- JSON, as the source gave it (cut to a readable size)
    quarantined_at  TEXT NOT NULL
) WITHOUT ROWID;

-- The history of cycles: the report each ended with.
CREATE TABLE cycles (
    id           INTEGER PRIMARY KEY,
    started_at   TEXT NOT NULL,
    duration_ms  INTEGER,
    exit_code    INTEGER,
    report       TEXT                 -- JSON, the cycle's report
);

-- One-time steps done (imports of older state).
CREATE TABLE milestones (
    name     TEXT PRIMARY KEY NOT NULL,
    done_at  TEXT NOT NULL,
    detail   TEXT
) WITHOUT ROWID;
