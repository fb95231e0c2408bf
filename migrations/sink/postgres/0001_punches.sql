-- iclock-sync's own table in PostgreSQL: one row per punch, keyed by its ID.
CREATE TABLE iclock_punches (
    id            text PRIMARY KEY,       -- the punch ID (32 hex digits)
    device_name   text NOT NULL,          -- the [[device]] name
    device_serial text NOT NULL,          -- the terminal's serial number
    user_id       text NOT NULL,          -- the PIN
    local_time    timestamp(0) NOT NULL,  -- the wall time the terminal showed
    utc_time      timestamptz NOT NULL,   -- the real instant
    timezone      text NOT NULL,          -- the device's IANA time zone
    punch_state   integer NOT NULL,       -- 0 in, 1 out, 2 break-out, 3 break-in, 4/5 overtime, 255 none
    verify_mode   integer NOT NULL,       -- 1 finger, 4 card, 15 face, ...
    work_code     text NOT NULL,
    source        text NOT NULL,          -- biotime, zk
    source_key    text NOT NULL,          -- the source's own key for the record
    received_at   timestamptz NOT NULL,   -- when iclock-sync first read it
    delivered_at  timestamptz NOT NULL    -- when it was written here
);
CREATE INDEX iclock_punches_by_user_time ON iclock_punches (user_id, local_time);
CREATE INDEX iclock_punches_by_device_time ON iclock_punches (device_name, local_time);

-- The store's identity: a new database (the old one dropped or replaced) has a new
-- one, so iclock-sync notices and fills it again from its ledger.
CREATE TABLE iclock_sync_store (
    key   text PRIMARY KEY,
    value text NOT NULL
);
INSERT INTO iclock_sync_store (key, value) VALUES ('identity', md5(random()::text || clock_timestamp()::text));
