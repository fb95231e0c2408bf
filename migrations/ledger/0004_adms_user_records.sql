-- Version 4: each pushing terminal's user record as it uploaded it (the `USER` line's
-- tab-separated fields), so that user control can send it back with only the validity
-- fields changed (`DATA UPDATE USERINFO` replaces the whole record on the terminal).
-- Empty for users recorded before this version: they are switched once the terminal
-- uploads them again.
ALTER TABLE adms_users ADD COLUMN record TEXT NOT NULL DEFAULT '';
