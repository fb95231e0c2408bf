-- Version 6: what the dashboard and the API read often, made cheap to read.
-- - What each cycle delivered per sink, as numbers ("delivered today" sums these
--   instead of parsing every report of the day; `serve` runs a cycle every few seconds
--   while terminals push). Only cycles that delivered something have a row.
-- - Cycles by start time (today's first cycle), punches by device and time (a device's
--   punches, newest first).
CREATE TABLE cycle_sinks (
    sink       TEXT NOT NULL,
    cycle      INTEGER NOT NULL,
    delivered  INTEGER NOT NULL,
    PRIMARY KEY (sink, cycle)
) WITHOUT ROWID;
INSERT OR IGNORE INTO cycle_sinks (sink, cycle, delivered)
    SELECT json_extract(s.value, '$.name'), c.id, json_extract(s.value, '$.delivered')
    FROM cycles c, json_each(c.report, '$.sinks') s
    WHERE c.report IS NOT NULL AND json_valid(c.report)
      AND json_extract(s.value, '$.delivered') > 0;
CREATE INDEX cycles_by_start ON cycles (started_at);
CREATE INDEX punches_by_device ON punches (device, local_time);
