//! What differs between the SQL databases: quoting, how a batch arrives as one JSON
//! parameter and is unpacked into rows, how a table's unique keys are found, how times
//! are written, our table's migrations, and what each error code means for a punch.
//! Everything else — the batch algorithm and the outcomes — is shared (see `super`).

use super::config::TableName;
use super::fields::TimeStyle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    /// MySQL 8 and MariaDB 10.6 or later (both have `JSON_TABLE`).
    Mysql,
}

/// One step of our table's schema; `{table}` stands for our table's quoted name.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sql: &'static str,
}

const POSTGRES_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_punches",
    sql: include_str!("../../../migrations/sink/postgres/0001_punches.sql"),
}];

const MYSQL_MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "0001_punches",
    sql: include_str!("../../../migrations/sink/mysql/0001_punches.sql"),
}];

/// What an error means for the punches of the statement that hit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trouble {
    /// This row's data: a NOT NULL, CHECK or foreign key constraint, a value the column
    /// cannot hold. The punch is rejected; the others go on.
    Row(String),
    /// A row with this key is there already.
    Duplicate,
    /// Something a person must change (password, privileges, a missing table or
    /// column): the punches wait, the message says what to do.
    Setup { problem: String, fix: String },
    /// Down, restarting, dropped, read-only for now: the punches wait and are retried.
    Outage { problem: String, fix: String },
}

impl Dialect {
    /// `postgres`, `mysql`: the `[sink.KIND]`.
    pub fn kind(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }

    pub fn url_schemes(self) -> &'static [&'static str] {
        match self {
            Dialect::Postgres => &["postgres", "postgresql"],
            Dialect::Mysql => &["mysql", "mariadb"],
        }
    }

    pub fn url_example(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "url = \"postgres://USER:${PGPASSWORD}@HOST:5432/DATABASE?sslmode=require\""
            }
            Dialect::Mysql => {
                "url = \"mysql://USER:${MYSQL_PASSWORD}@HOST:3306/DATABASE?ssl-mode=required\""
            }
        }
    }

    pub fn migrations(self) -> &'static [Migration] {
        match self {
            Dialect::Postgres => POSTGRES_MIGRATIONS,
            Dialect::Mysql => MYSQL_MIGRATIONS,
        }
    }

    pub fn time_style(self) -> TimeStyle {
        match self {
            Dialect::Postgres => TimeStyle::Postgres,
            Dialect::Mysql => TimeStyle::Mysql,
        }
    }

    pub fn quote(self, identifier: &str) -> String {
        match self {
            Dialect::Postgres => format!("\"{identifier}\""),
            Dialect::Mysql => format!("`{identifier}`"),
        }
    }

    pub fn table(self, table: &TableName) -> String {
        match &table.schema {
            Some(schema) => format!("{}.{}", self.quote(schema), self.quote(&table.name)),
            None => self.quote(&table.name),
        }
    }

    /// Statements run on every new connection.
    pub fn session_setup(self) -> &'static [&'static str] {
        match self {
            Dialect::Postgres => &["SET TIME ZONE 'UTC'"],
            // Strict: a value the column cannot hold is an error, never a silent blank
            // or zero; UTC: DATETIME columns hold UTC instants.
            Dialect::Mysql => &[
                "SET SESSION sql_mode = CONCAT(@@SESSION.sql_mode, ',STRICT_ALL_TABLES')",
                "SET time_zone = '+00:00'",
            ],
        }
    }

    /// One row per element of the JSON array `$1` (objects keyed by column name) whose
    /// key is already in `table`: its 0-based position, as a 64-bit integer.
    pub fn present_sql(self, table: &TableName, keys: &[String]) -> String {
        let target = self.table(table);
        match self {
            Dialect::Postgres => {
                let matches: Vec<String> = keys
                    .iter()
                    .map(|key| format!("t.{0} = r.{0}", self.quote(key)))
                    .collect();
                format!(
                    "SELECT (o.n - 1)::int8 FROM json_array_elements($1::json) WITH ORDINALITY AS o(value, n) \
                     CROSS JOIN LATERAL json_populate_record(NULL::{target}, o.value) AS r \
                     WHERE EXISTS (SELECT 1 FROM {target} AS t WHERE {})",
                    matches.join(" AND ")
                )
            }
            Dialect::Mysql => {
                let columns: Vec<String> = keys
                    .iter()
                    .enumerate()
                    .map(|(index, key)| format!("k{index} TEXT PATH '$.{key}'"))
                    .collect();
                let matches: Vec<String> = keys
                    .iter()
                    .enumerate()
                    .map(|(index, key)| format!("t.{} = j.k{index}", self.quote(key)))
                    .collect();
                format!(
                    "SELECT CAST(j.n - 1 AS SIGNED) FROM JSON_TABLE(?, '$[*]' COLUMNS (n FOR ORDINALITY, {})) AS j \
                     WHERE EXISTS (SELECT 1 FROM {target} AS t WHERE {})",
                    columns.join(", "),
                    matches.join(" AND ")
                )
            }
        }
    }

    /// Where the database can do both in one statement (PostgreSQL): inserts every
    /// element of the JSON array `$1` whose key is not there yet, and answers the
    /// 0-based positions of those it inserted — the rest were there.
    pub fn insert_returning_sql(
        self,
        table: &TableName,
        columns: &[String],
        keys: &[String],
    ) -> Option<String> {
        let Dialect::Postgres = self else {
            return None;
        };
        let target = self.table(table);
        let quoted: Vec<String> = columns.iter().map(|column| self.quote(column)).collect();
        let quoted = quoted.join(", ");
        let returned: Vec<String> = keys.iter().map(|key| self.quote(key)).collect();
        let matches: Vec<String> = keys
            .iter()
            .map(|key| format!("s.{0} = i.{0}", self.quote(key)))
            .collect();
        Some(format!(
            "WITH s AS MATERIALIZED (SELECT * FROM json_populate_recordset(NULL::{target}, $1::json) WITH ORDINALITY), \
             i AS (INSERT INTO {target} ({quoted}) SELECT {quoted} FROM s ON CONFLICT DO NOTHING RETURNING {}) \
             SELECT (s.ordinality - 1)::int8 FROM s JOIN i ON {}",
            returned.join(", "),
            matches.join(" AND ")
        ))
    }

    /// Inserts every element of the JSON array `$1` into `columns` of `table`.
    pub fn insert_sql(self, table: &TableName, columns: &[String]) -> String {
        let target = self.table(table);
        let quoted: Vec<String> = columns.iter().map(|column| self.quote(column)).collect();
        let quoted = quoted.join(", ");
        match self {
            // A key that turned up since the check (another writer) is left alone.
            Dialect::Postgres => format!(
                "INSERT INTO {target} ({quoted}) SELECT {quoted} FROM json_populate_recordset(NULL::{target}, $1::json) \
                 ON CONFLICT DO NOTHING"
            ),
            // Not INSERT IGNORE: it would turn a NOT NULL or type error into a warning
            // and a blank value. A duplicate key fails the statement, and the batch is
            // then written row by row, where it is told apart.
            Dialect::Mysql => {
                let paths: Vec<String> = columns
                    .iter()
                    .enumerate()
                    .map(|(index, column)| format!("c{index} TEXT PATH '$.{column}'"))
                    .collect();
                let selected: Vec<String> = (0..columns.len())
                    .map(|index| format!("j.c{index}"))
                    .collect();
                format!(
                    "INSERT INTO {target} ({quoted}) SELECT {} FROM JSON_TABLE(?, '$[*]' COLUMNS ({})) AS j",
                    selected.join(", "),
                    paths.join(", ")
                )
            }
        }
    }

    /// The table's columns (one text column, `$1` = the table): empty if there is no
    /// such table.
    pub fn columns_sql(self, table: &TableName) -> (String, Vec<String>) {
        match self {
            Dialect::Postgres => (
                "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1::text) \
                 AND attnum > 0 AND NOT attisdropped"
                    .to_owned(),
                vec![self.table(table)],
            ),
            Dialect::Mysql => (
                "SELECT CAST(COLUMN_NAME AS CHAR) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ?"
                    .to_owned(),
                vec![table.schema.clone().unwrap_or_default(), table.name.clone()],
            ),
        }
    }

    /// The table's full unique keys (no partial or expression indexes): index name and
    /// column, one row per column.
    pub fn unique_keys_sql(self, table: &TableName) -> (String, Vec<String>) {
        match self {
            Dialect::Postgres => (
                "SELECT c.relname::text, a.attname::text FROM pg_index i \
                 JOIN pg_class c ON c.oid = i.indexrelid \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = to_regclass($1::text) AND i.indisunique \
                 AND i.indpred IS NULL AND i.indexprs IS NULL"
                    .to_owned(),
                vec![self.table(table)],
            ),
            Dialect::Mysql => (
                "SELECT CAST(INDEX_NAME AS CHAR), CAST(COLUMN_NAME AS CHAR) FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = COALESCE(NULLIF(?, ''), DATABASE()) AND TABLE_NAME = ? AND NON_UNIQUE = 0 \
                 AND COLUMN_NAME IS NOT NULL"
                    .to_owned(),
                vec![table.schema.clone().unwrap_or_default(), table.name.clone()],
            ),
        }
    }

    /// The statement that gives `table` the unique key it needs.
    pub fn create_unique_index(self, table: &TableName, keys: &[String]) -> String {
        let quoted: Vec<String> = keys.iter().map(|key| self.quote(key)).collect();
        format!(
            "CREATE UNIQUE INDEX {} ON {} ({});",
            self.quote(&format!("{}_iclock_sync_key", table.name)),
            self.table(table),
            quoted.join(", ")
        )
    }

    /// Our bookkeeping table of applied migrations, created if missing.
    pub fn migrations_table_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "CREATE TABLE IF NOT EXISTS iclock_sync_migrations (version bigint PRIMARY KEY, \
                 name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            }
            Dialect::Mysql => {
                "CREATE TABLE IF NOT EXISTS iclock_sync_migrations (version BIGINT PRIMARY KEY, \
                 name VARCHAR(200) NOT NULL, applied_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6))"
            }
        }
    }

    /// Whether our bookkeeping table exists (one integer: 0 or 1).
    pub fn has_migrations_table_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "SELECT CASE WHEN to_regclass('iclock_sync_migrations') IS NULL THEN 0::int8 ELSE 1::int8 END"
            }
            Dialect::Mysql => {
                "SELECT CAST(COUNT(*) AS SIGNED) FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'iclock_sync_migrations'"
            }
        }
    }

    pub fn record_migration_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => {
                "INSERT INTO iclock_sync_migrations (version, name) VALUES ($1, $2)"
            }
            Dialect::Mysql => "INSERT INTO iclock_sync_migrations (version, name) VALUES (?, ?)",
        }
    }

    /// What `error` means (see [`Trouble`]).
    pub fn trouble(self, error: &sqlx::Error) -> Trouble {
        let sqlx::Error::Database(database) = error else {
            return match error {
                sqlx::Error::Configuration(cause) => Trouble::Setup {
                    problem: format!("the connection settings are refused: {cause}"),
                    fix: format!("check url (see {})", self.url_example()),
                },
                sqlx::Error::Tls(cause) => tls_trouble(cause),
                // rustls reports a certificate it cannot trust as an I/O error.
                sqlx::Error::Io(cause)
                    if cause
                        .get_ref()
                        .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
                {
                    tls_trouble(cause)
                }
                other => Trouble::Outage {
                    problem: format!("cannot reach the database: {other}"),
                    fix: "check that the server is running and reachable from here (host, port, firewall)".into(),
                },
            };
        };
        let message = database.message().to_owned();
        match self {
            Dialect::Postgres => {
                postgres_trouble(database.code().as_deref().unwrap_or(""), message)
            }
            Dialect::Mysql => {
                let number = database
                    .try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                    .map_or(0, |error| error.number());
                mysql_trouble(number, message)
            }
        }
    }
}

fn tls_trouble(cause: &dyn std::fmt::Display) -> Trouble {
    Trouble::Setup {
        problem: format!("TLS failed: {cause}"),
        fix: "check the url's sslmode / ssl-mode and its CA file (sslrootcert / ssl-ca) against the server's certificate".into(),
    }
}

fn postgres_trouble(code: &str, message: String) -> Trouble {
    let setup = |problem: String, fix: &str| Trouble::Setup {
        problem,
        fix: fix.to_owned(),
    };
    match code {
        "23505" => Trouble::Duplicate,
        "23502" | "23503" | "23514" | "23P01" => Trouble::Row(message),
        code if code.starts_with("22") => Trouble::Row(message),
        "28P01" | "28000" => setup(
            format!("the server refused the login: {message}"),
            "check the user and password in url (a password belongs in .env, e.g. ${PGPASSWORD})",
        ),
        "3D000" => setup(
            message,
            "create the database (CREATE DATABASE …) or correct its name at the end of url",
        ),
        "42501" => setup(
            format!("missing privilege: {message}"),
            "grant the user what it needs: GRANT USAGE, CREATE ON SCHEMA … and GRANT SELECT, INSERT ON the table",
        ),
        "42P01" | "42703" | "42804" => setup(
            message,
            "check table and [sink.…columns] against the database (our own table is created by `iclock-sync db migrate`)",
        ),
        "25006" => Trouble::Outage {
            problem: format!("{message}: the server is a read-only replica (or in recovery)"),
            fix: "point url at the primary".into(),
        },
        // Connection lost, server shutting down or starting, out of resources, a
        // deadlock or serialization failure: worth trying again.
        code if ["08", "40", "53", "57", "58"]
            .iter()
            .any(|class| code.starts_with(class)) =>
        {
            Trouble::Outage {
                problem: message,
                fix: "it is tried again; if it persists, check the server's log".into(),
            }
        }
        _ => setup(
            format!("the database refused the statement: {message} (SQLSTATE {code})"),
            "check the table against the one iclock-sync expects; if it is iclock-sync's own table, report this",
        ),
    }
}

fn mysql_trouble(number: u16, message: String) -> Trouble {
    let setup = |problem: String, fix: &str| Trouble::Setup {
        problem,
        fix: fix.to_owned(),
    };
    match number {
        1062 => Trouble::Duplicate,
        1048 | 1364 | 1366 | 1292 | 1406 | 1264 | 1265 | 1411 | 1452 | 3819 | 4025 => {
            Trouble::Row(message)
        }
        1045 | 1698 => setup(
            format!("the server refused the login: {message}"),
            "check the user and password in url (a password belongs in .env, e.g. ${MYSQL_PASSWORD})",
        ),
        1049 => setup(
            message,
            "create the database (CREATE DATABASE …) or correct its name at the end of url",
        ),
        1044 | 1142 | 1143 | 1227 => setup(
            format!("missing privilege: {message}"),
            "grant the user what it needs: GRANT SELECT, INSERT, CREATE, INDEX ON database.* TO user",
        ),
        1146 | 1054 => setup(
            message,
            "check table and [sink.…columns] against the database (our own table is created by `iclock-sync db migrate`)",
        ),
        1290 | 1792 | 1836 => Trouble::Outage {
            problem: format!("{message}: the server is read-only (a replica, or read_only is set)"),
            fix: "point url at the primary".into(),
        },
        // Gone away, lost, killed, shutting down, lock wait or deadlock, too many
        // connections: worth trying again.
        1040 | 1053 | 1205 | 1213 | 1927 | 2002 | 2003 | 2006 | 2013 | 4031 => Trouble::Outage {
            problem: message,
            fix: "it is tried again; if it persists, check the server's log".into(),
        },
        _ => setup(
            format!("the database refused the statement: {message} (error {number})"),
            "check the table against the one iclock-sync expects; if it is iclock-sync's own table, report this",
        ),
    }
}
