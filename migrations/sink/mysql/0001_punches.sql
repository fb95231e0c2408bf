-- iclock-sync's own table in MySQL / MariaDB: one row per punch, keyed by its ID.
-- DATETIME columns hold UTC instants except local_time (the terminal's wall time).
-- MySQL commits each CREATE on its own, so every statement here may safely run twice
-- (a migration interrupted half-way is simply run again).
CREATE TABLE IF NOT EXISTS iclock_punches (
    id            CHAR(32) NOT NULL PRIMARY KEY,  -- the punch ID (32 hex digits)
    device_name   VARCHAR(100) NOT NULL,          -- the [[device]] name
    device_serial VARCHAR(64) NOT NULL,           -- the terminal's serial number
    user_id       VARCHAR(64) NOT NULL,           -- the PIN
    local_time    DATETIME NOT NULL,              -- the wall time the terminal showed
    `utc_time`    DATETIME(6) NOT NULL,           -- the real instant, UTC
    timezone      VARCHAR(64) NOT NULL,           -- the device's IANA time zone
    punch_state   INT NOT NULL,                   -- 0 in, 1 out, 2 break-out, 3 break-in, 4/5 overtime, 255 none
    verify_mode   INT NOT NULL,                   -- 1 finger, 4 card, 15 face, ...
    work_code     VARCHAR(64) NOT NULL,
    source        VARCHAR(16) NOT NULL,           -- biotime, zk
    source_key    VARCHAR(255) NOT NULL,          -- the source's own key for the record
    received_at   DATETIME(6) NOT NULL,           -- when iclock-sync first read it, UTC
    delivered_at  DATETIME(6) NOT NULL,           -- when it was written here, UTC
    INDEX iclock_punches_by_user_time (user_id, local_time),
    INDEX iclock_punches_by_device_time (device_name, local_time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The store's identity: a new database (the old one dropped or replaced) has a new
-- one, so iclock-sync notices and fills it again from its ledger.
CREATE TABLE IF NOT EXISTS iclock_sync_store (
    `key`   VARCHAR(64) NOT NULL PRIMARY KEY,
    `value` VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
INSERT IGNORE INTO iclock_sync_store (`key`, `value`) VALUES ('identity', REPLACE(UUID(), '-', ''));
