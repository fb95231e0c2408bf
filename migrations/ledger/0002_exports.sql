-- Exports: the Python tool's files — the JSON cache of delivered IDs and the audit files
-- output/logs_*.json — are written from the ledger, each punch once, when every active
-- sink has it (delivered, already present, skipped or withheld).
--   punches.exported: 0 not yet, -1 in the export under way, 1 exported,
--   2 delivered before the ledger (its ID came from the JSON cache: never exported)
ALTER TABLE punches ADD COLUMN exported INTEGER NOT NULL DEFAULT 0;
CREATE INDEX punches_unexported ON punches (seq) WHERE exported <= 0;

-- Each export, so that one a crash interrupted is redone exactly: the JSON cache is cut
-- back to `cache_length` and the same audit file written again.
CREATE TABLE exports (
    id                  INTEGER PRIMARY KEY,
    started_at          TEXT NOT NULL,
    cache_length        INTEGER,          -- the JSON cache's length before (NULL: no file)
    audit_file          TEXT NOT NULL,    -- the audit file's name in the output folder
    punches             INTEGER NOT NULL,
    finished_at         TEXT,
    cache_length_after  INTEGER,          -- and after: the file as this tool left it
    cache_ids           INTEGER           -- how many IDs the file then holds
);
