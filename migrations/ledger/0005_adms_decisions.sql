-- Version 5: what a person decided about pushing terminals nobody configured (held
-- ones, `unknown_devices = "hold"`), from the dashboard or the API: approved ones are
-- taken under `name` in `timezone`; rejected ones are refused without being noted.
CREATE TABLE adms_decisions (
    serial      TEXT PRIMARY KEY NOT NULL,
    decision    TEXT NOT NULL,           -- approved, rejected
    name        TEXT NOT NULL,           -- the device name its punches carry (approved)
    timezone    TEXT NOT NULL,           -- its IANA zone (approved)
    decided_at  TEXT NOT NULL,
    decided_by  TEXT NOT NULL
) WITHOUT ROWID;
