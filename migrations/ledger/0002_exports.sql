-- Version 2: punches are unique on (local_time, id) rather than on the ID alone — the
-- ID is derived from the wall time, so this is the same rule, but new punches (recent
-- times) land at the end of the index instead of at random places in it, which makes
-- journaling cheap however large the ledger grows. The per-device index goes (nothing
-- needs it), and punches gain `exported`:
--
-- Exports: the Python tool's files — the JSON cache of delivered IDs and the audit files
-- output/logs_*.json — are written from the ledger, each punch once, when every active
-- sink has it (delivered, already present, skipped or withheld).
--   punches.exported: 0 not yet; n > 0 by export n; -1 delivered before the ledger (its
--   ID came from the JSON cache: never exported)
CREATE TABLE punches_v2 (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL,
    device      TEXT NOT NULL,
    timezone    TEXT NOT NULL,
    serial      TEXT NOT NULL,
    terminal    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    local_time  TEXT NOT NULL,
    state       INTEGER NOT NULL,
    verify_mode INTEGER NOT NULL,
    work_code   TEXT NOT NULL,
    source      TEXT NOT NULL,
    source_key  TEXT NOT NULL,
    read_at     TEXT NOT NULL,
    exported    INTEGER NOT NULL DEFAULT 0,
    UNIQUE (local_time, id)
);
INSERT INTO punches_v2 (seq, id, device, timezone, serial, terminal, user_id, local_time,
                        state, verify_mode, work_code, source, source_key, read_at)
    SELECT seq, id, device, timezone, serial, terminal, user_id, local_time,
           state, verify_mode, work_code, source, source_key, read_at FROM punches;
DROP TABLE punches;
ALTER TABLE punches_v2 RENAME TO punches;
CREATE INDEX punches_by_user ON punches (user_id, local_time);
CREATE INDEX punches_unexported ON punches (seq) WHERE exported = 0;

-- Each export, so that one a crash interrupted is redone exactly: the JSON cache is cut
-- back to `cache_append_at` and the same audit file written again.
CREATE TABLE exports (
    id                  INTEGER PRIMARY KEY,
    started_at          TEXT NOT NULL,
    cache_append_at     INTEGER,          -- where its IDs begin in the JSON cache (NULL: no file)
    audit_file          TEXT NOT NULL,    -- the audit file's name in the output folder
    punches             INTEGER NOT NULL,
    finished_at         TEXT,
    cache_length_after  INTEGER,          -- the JSON cache's length after: as this tool left it
    cache_ids           INTEGER           -- how many IDs the file then holds
);
