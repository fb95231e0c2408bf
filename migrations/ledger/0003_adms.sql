-- Version 3: terminals that push (ADMS): the commands queued for them, and who is who
-- on each (from their user uploads).
--
-- Commands: a terminal asks for commands when
-- it polls (`getrequest`); each open one is handed over as `C:<id>:<command>` and handed
-- over again if no result came within a while; the result (`devicecmd`) closes it.
CREATE TABLE adms_commands (
    id          INTEGER PRIMARY KEY,
    serial      TEXT NOT NULL,
    command     TEXT NOT NULL,
    queued_at   TEXT NOT NULL,
    sent_at     TEXT,
    sends       INTEGER NOT NULL DEFAULT 0,
    result_at   TEXT,
    return_code INTEGER,
    result      TEXT
);
CREATE INDEX adms_commands_open ON adms_commands (serial, id) WHERE result_at IS NULL;

-- Who is who on each pushing terminal, from its USER / USERINFO uploads.
CREATE TABLE adms_users (
    serial     TEXT NOT NULL,
    pin        TEXT NOT NULL,
    name       TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (serial, pin)
);
