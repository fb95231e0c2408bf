//! The embedded default store: one SQLite file, one row per punch keyed by its ID —
//! the SQL sinks' SQLite dialect. Its columns and their values are those of the other
//! SQL databases (`super::fields`), plus the Python tool's ID in `legacy_id`; how it
//! writes is its own, because an embedded file fails differently from a server (below).
//!
//! Created and migrated on first use, so a fresh install needs no database set-up.
//! Each batch is one transaction: staged in a temporary table, the IDs already there
//! looked up, then written with one `INSERT OR IGNORE` — the rest were delivered now.
//! (`OR IGNORE` rather than `ON CONFLICT DO NOTHING`: with it SQLite keeps no statement
//! journal, which would copy every page the insert touches to a temporary file.)
//! WAL with `synchronous=FULL` means a committed batch survives a power cut, which the
//! ledger relies on when it records it as delivered.
//!
//! A store that failed once is not trusted again in the same cycle: after any I/O or
//! database error every further batch fails at once (the next cycle tries afresh), and
//! at the end of the cycle a fresh connection counts the rows added since it began,
//! which must be at least those acknowledged — so a commit that did not reach the file
//! is never recorded as delivered. A random identity kept in the file lets the ledger
//! notice a file deleted or replaced, and fill the new one.

mod config;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

pub use config::{KIND, SqliteConfig};

use super::fields::{self, Field, TimeStyle};
use crate::punch::Punch;
use crate::sink::{Sink, SinkError, SinkOutcome};

pub const DEFAULT_FILE_NAME: &str = "attendance.db";

/// Rows per statement, passed as one JSON parameter: a few hundred kilobytes of text.
const JSON_ROWS: usize = 1000;

/// Schema versions, applied in order and recorded in `PRAGMA user_version`.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE punches (
    id            TEXT PRIMARY KEY NOT NULL,  -- the punch ID under the configured scheme
    legacy_id     TEXT NOT NULL,              -- the Python tool's MD5 ID, for cross-reference
    device_name   TEXT NOT NULL,              -- the [[device]] name
    device_serial TEXT NOT NULL,              -- the terminal's serial number
    user_id       TEXT NOT NULL,              -- the PIN
    local_time    TEXT NOT NULL,              -- device wall time, 'YYYY-MM-DD HH:MM:SS'
    timezone      TEXT NOT NULL,              -- the device's IANA zone
    utc_time      TEXT NOT NULL,              -- the real instant, 'YYYY-MM-DDTHH:MM:SSZ'
    punch_state   INTEGER NOT NULL,           -- 0 in, 1 out, 2 break-out, 3 break-in, 4/5 OT, 255 none
    verify_mode   INTEGER NOT NULL,           -- 1 finger, 4 card, 15 face, ...
    work_code     TEXT NOT NULL,
    source        TEXT NOT NULL,              -- biotime, ...
    source_key    TEXT NOT NULL,              -- the source's own record key
    received_at   TEXT NOT NULL               -- when iclock-sync first read it (UTC; see migration 3)
);
CREATE INDEX punches_by_user_time ON punches (user_id, local_time);
"#,
    r#"
-- The store's identity: a new file (the old one deleted or replaced) has a new one, so
-- iclock-sync notices and fills it again from its ledger.
CREATE TABLE iclock_sync_store (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
INSERT INTO iclock_sync_store (key, value) VALUES ('identity', lower(hex(randomblob(16))));
"#,
    r#"
-- The columns and indexes the database sinks share (src/sink/sql/fields.rs):
-- delivered_at, when the row was written here, and received_at from now on when
-- iclock-sync first read the punch (until now it was when the row was written).
ALTER TABLE punches ADD COLUMN delivered_at TEXT NOT NULL DEFAULT '';
UPDATE punches SET delivered_at = received_at;
CREATE INDEX punches_by_device_time ON punches (device_name, local_time);
"#,
];

const COLUMNS: &str = "id, legacy_id, device_name, device_serial, user_id, local_time, timezone, \
                       utc_time, punch_state, verify_mode, work_code, source, source_key, received_at, \
                       delivered_at";

/// The shared fields of [`COLUMNS`] after `legacy_id`, in order.
const FIELDS: [Field; 13] = [
    Field::DeviceName,
    Field::DeviceSerial,
    Field::UserId,
    Field::LocalTime,
    Field::Timezone,
    Field::UtcTime,
    Field::PunchState,
    Field::VerifyMode,
    Field::WorkCode,
    Field::Source,
    Field::SourceKey,
    Field::ReceivedAt,
    Field::DeliveredAt,
];

pub struct SqliteSink {
    pool: SqlitePool,
    path: PathBuf,
    options: SqliteConnectOptions,
    /// Why the store failed this cycle, if it did.
    failure: Mutex<Option<String>>,
    /// The highest row number at the start of the cycle, and rows inserted since.
    last_row_at_start: AtomicI64,
    inserted: AtomicU64,
}

impl SqliteSink {
    /// Opens (creating and migrating as needed) the database at `path`.
    pub async fn open(path: &Path) -> Result<SqliteSink, SinkError> {
        let error = |problem: String, fix: &str| SinkError {
            sink: "sqlite".into(),
            target: path.display().to_string(),
            problem,
            fix: fix.to_owned(),
            outage: false,
        };
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|cause| {
                error(
                    format!("cannot create the directory {}: {cause}", dir.display()),
                    "choose a writable [sink.sqlite] path",
                )
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|cause| error(cause.to_string(), "report this as a bug"))?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .map_err(|cause| {
                error(
                    format!("cannot open the database: {cause}"),
                    "check that the path is writable and is a SQLite file",
                )
            })?;
        migrate(&pool).await.map_err(|cause| {
            error(
                format!("cannot create or upgrade the tables: {cause}"),
                "check that the file is an iclock-sync database and the disk is not full",
            )
        })?;
        Ok(SqliteSink {
            pool,
            path: path.to_path_buf(),
            options,
            failure: Mutex::new(None),
            last_row_at_start: AtomicI64::new(0),
            inserted: AtomicU64::new(0),
        })
    }

    fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn fail(&self, reason: String) {
        tracing::error!("sink sqlite ({}): {reason}", self.path.display());
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(reason);
    }

    /// Runs `sql` (one number back) through a connection of its own, as a later
    /// reader would.
    async fn ask_afresh(&self, sql: &'static str, bind: i64) -> Result<i64, sqlx::Error> {
        let mut connection = self.options.clone().read_only(true).connect().await?;
        let answer: Option<i64> = sqlx::query_scalar(sql)
            .bind(bind)
            .fetch_one(&mut connection)
            .await?;
        let _ = connection.close().await;
        Ok(answer.unwrap_or(0))
    }

    /// Writes the batch in one transaction; the IDs it added (the rest were there).
    async fn insert(&self, batch: &[Punch]) -> Result<HashSet<String>, sqlx::Error> {
        // In ID order, the inserts walk the ID index from one end to the other instead
        // of jumping about it, touching each of its pages once per batch.
        let mut ordered: Vec<&Punch> = batch.iter().collect();
        ordered.sort_unstable_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        let delivered_at = Utc::now();
        // BEGIN IMMEDIATE: nothing can slip in between asking what is there and adding.
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(AssertSqlSafe(format!(
            "CREATE TEMP TABLE IF NOT EXISTS iclock_sync_batch ({COLUMNS})"
        )))
        .execute(&mut *transaction)
        .await?;
        // The rows go over in JSON chunks (one statement and one trip to sqlx's worker
        // thread each, where row by row the trips cost more than the writing) into a
        // staging table, and from there into the store in one statement. Written
        // straight from `jsonb_each`, each statement after the first would copy every
        // page it touched to a statement journal: SQLite keeps one whenever a statement
        // reads a virtual table inside a transaction.
        for chunk in ordered.chunks(JSON_ROWS) {
            let rows: Vec<Vec<Value>> = chunk
                .iter()
                .map(|punch| {
                    let mut row = Vec::with_capacity(FIELDS.len() + 2);
                    row.push(Value::String(punch.id.as_str().to_owned()));
                    row.push(Value::String(punch.legacy_id().into_string()));
                    row.extend(FIELDS.iter().map(|field| {
                        fields::value(*field, punch, TimeStyle::Sqlite, delivered_at, false)
                    }));
                    row
                })
                .collect();
            let rows =
                serde_json::to_string(&rows).map_err(|error| sqlx::Error::Encode(error.into()))?;
            let values: Vec<String> = (0..FIELDS.len() + 2)
                .map(|index| format!("value ->> {index}"))
                .collect();
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO temp.iclock_sync_batch SELECT {} FROM jsonb_each(?1)",
                values.join(", ")
            )))
            .bind(rows)
            .execute(&mut *transaction)
            .await?;
        }
        let present: HashSet<String> = sqlx::query_scalar(
            "SELECT id FROM main.punches WHERE id IN (SELECT id FROM temp.iclock_sync_batch)",
        )
        .fetch_all(&mut *transaction)
        .await?
        .into_iter()
        .collect();
        sqlx::query(AssertSqlSafe(format!(
            "INSERT OR IGNORE INTO main.punches ({COLUMNS}) \
             SELECT {COLUMNS} FROM temp.iclock_sync_batch ORDER BY rowid"
        )))
        .execute(&mut *transaction)
        .await?;
        sqlx::query("DELETE FROM temp.iclock_sync_batch")
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(batch
            .iter()
            .map(|punch| punch.id.as_str())
            .filter(|id| !present.contains(*id))
            .map(str::to_owned)
            .collect())
    }
}

async fn migrate(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    let version: i64 = sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let mut transaction = pool.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(*migration))
            .execute(&mut *transaction)
            .await?;
        sqlx::raw_sql(AssertSqlSafe(format!(
            "PRAGMA user_version = {}",
            index + 1
        )))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
    }
    Ok(())
}

#[async_trait]
impl Sink for SqliteSink {
    fn name(&self) -> &str {
        "sqlite"
    }

    fn target(&self) -> String {
        self.path.display().to_string()
    }

    async fn begin_cycle(&self) {
        *self.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
        self.inserted.store(0, Ordering::SeqCst);
        match self
            .ask_afresh("SELECT MAX(rowid) + ? FROM punches", 0)
            .await
        {
            Ok(last) => self.last_row_at_start.store(last, Ordering::SeqCst),
            Err(error) => self.fail(format!("cannot read the database: {error}")),
        }
    }

    async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome> {
        if let Some(failure) = self.failure() {
            let reason = format!(
                "{}: an earlier write failed this cycle ({failure}); nothing more is written until the next cycle",
                self.path.display()
            );
            return vec![SinkOutcome::Failed(reason); batch.len()];
        }
        match self.insert(batch).await {
            Ok(inserted) => {
                self.inserted
                    .fetch_add(inserted.len() as u64, Ordering::SeqCst);
                batch
                    .iter()
                    .map(|punch| {
                        if inserted.contains(punch.id.as_str()) {
                            SinkOutcome::Delivered
                        } else {
                            SinkOutcome::AlreadyPresent
                        }
                    })
                    .collect()
            }
            Err(error) => {
                self.fail(error.to_string());
                let reason = format!(
                    "{}: {error} — check free disk space, permissions and the disk's health",
                    self.path.display()
                );
                vec![SinkOutcome::Failed(reason); batch.len()]
            }
        }
    }

    /// Counts, through a fresh connection, the rows added since the cycle began (new
    /// rows take row numbers above the highest, so this costs what the cycle wrote).
    async fn confirm(&self) -> Result<(), String> {
        let expected = self.inserted.load(Ordering::SeqCst) as i64;
        if expected == 0 {
            return Ok(());
        }
        let since = self.last_row_at_start.load(Ordering::SeqCst);
        match self
            .ask_afresh("SELECT COUNT(*) FROM punches WHERE rowid > ?", since)
            .await
        {
            Ok(rows) if rows >= expected => Ok(()),
            Ok(rows) => Err(format!(
                "the database shows {rows} of the {expected} punches it acknowledged this cycle — the disk or the file system lost writes"
            )),
            Err(error) => Err(format!("cannot read the database back: {error}")),
        }
    }

    async fn identity(&self) -> Option<String> {
        sqlx::query_scalar("SELECT value FROM iclock_sync_store WHERE key = 'identity'")
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
    }

    /// Closing the last connection checkpoints the WAL into the database file, so the
    /// file alone holds every punch when someone copies it.
    async fn close(&self) {
        self.pool.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::punch::{DeviceLabel, PunchId, SourceKind};
    use chrono::NaiveDateTime;
    use std::sync::Arc;

    fn punch(user: &str, second: u32) -> Punch {
        let local_time = NaiveDateTime::parse_from_str(
            &format!("2026-01-05 08:00:{second:02}"),
            "%Y-%m-%d %H:%M:%S",
        )
        .unwrap();
        Punch {
            id: PunchId::native("SN1", user, local_time, 0),
            device: Arc::new(DeviceLabel {
                name: "Office".into(),
                timezone: "Asia/Kolkata".parse().unwrap(),
            }),
            serial: "SN1".into(),
            terminal: "".into(),
            user_id: user.into(),
            local_time,
            state: 0,
            verify_mode: 1,
            work_code: "0".into(),
            source: SourceKind::Biotime,
            source_key: format!("biotime:x#{user}{second}"),
            received_at: None,
        }
    }

    #[tokio::test]
    async fn inserts_once_and_reports_already_present_afterwards() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db").join("attendance.db");
        let sink = SqliteSink::open(&path).await.unwrap();
        let first: Vec<Punch> = (0..1200).map(|i| punch(&i.to_string(), 1)).collect();
        let outcomes = sink.deliver(&first).await;
        assert!(outcomes.iter().all(|o| *o == SinkOutcome::Delivered));
        let mut second = first[..10].to_vec();
        second.push(punch("new", 2));
        let outcomes = sink.deliver(&second).await;
        assert_eq!(outcomes[..10], vec![SinkOutcome::AlreadyPresent; 10][..]);
        assert_eq!(outcomes[10], SinkOutcome::Delivered);
        drop(sink);

        // Reopening does not re-run migrations or lose rows.
        let sink = SqliteSink::open(&path).await.unwrap();
        let (count, utc): (i64, String) =
            sqlx::query_as("SELECT COUNT(*), MIN(utc_time) FROM punches")
                .fetch_one(&sink.pool)
                .await
                .unwrap();
        assert_eq!(count, 1201);
        assert_eq!(utc, "2026-01-05T02:30:01Z");
    }

    /// Commits the connection believes in but a fresh reader cannot see (here: the WAL
    /// they sit in was deleted under it) are not confirmed.
    #[tokio::test]
    async fn writes_a_fresh_reader_cannot_see_are_not_confirmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attendance.db");
        let sink = SqliteSink::open(&path).await.unwrap();
        sink.begin_cycle().await;
        let batch: Vec<Punch> = (0..100).map(|i| punch(&i.to_string(), 1)).collect();
        assert!(
            sink.deliver(&batch)
                .await
                .iter()
                .all(|o| *o == SinkOutcome::Delivered)
        );
        assert_eq!(sink.confirm().await, Ok(()));

        sink.begin_cycle().await;
        let more: Vec<Punch> = (0..100).map(|i| punch(&i.to_string(), 2)).collect();
        assert!(
            sink.deliver(&more)
                .await
                .iter()
                .all(|o| *o == SinkOutcome::Delivered)
        );
        std::fs::remove_file(dir.path().join("attendance.db-wal")).unwrap();
        assert!(sink.confirm().await.is_err());
    }

    /// A store written by the previous version (schema 2) is migrated in place: its
    /// rows kept, delivered_at taken from the old received_at (the time it was written).
    #[tokio::test]
    async fn a_previous_store_is_migrated_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attendance.db");
        {
            let options = SqliteConnectOptions::from_str("sqlite:")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let mut connection = options.connect().await.unwrap();
            for (index, migration) in MIGRATIONS[..2].iter().enumerate() {
                sqlx::raw_sql(AssertSqlSafe(*migration))
                    .execute(&mut connection)
                    .await
                    .unwrap();
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "PRAGMA user_version = {}",
                    index + 1
                )))
                .execute(&mut connection)
                .await
                .unwrap();
            }
            sqlx::query(
                "INSERT INTO punches VALUES ('old', 'legacy', 'Gate', 'SN1', '7', '2025-01-05 08:00:00', \
                 'UTC', '2025-01-05T08:00:00Z', 0, 1, '0', 'zk', 'zk:Gate#7', '2025-01-05T08:01:00Z')",
            )
            .execute(&mut connection)
            .await
            .unwrap();
        }
        let sink = SqliteSink::open(&path).await.unwrap();
        let outcomes = sink.deliver(&[punch("new", 1)]).await;
        assert_eq!(outcomes, [SinkOutcome::Delivered]);
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT id, received_at, delivered_at FROM punches ORDER BY id")
                .fetch_all(&sink.pool)
                .await
                .unwrap();
        assert_eq!(
            rows[1].clone(),
            (
                "old".into(),
                "2025-01-05T08:01:00Z".into(),
                "2025-01-05T08:01:00Z".into()
            )
        );
        assert_eq!(rows[0].0, punch("new", 1).id.as_str());
        assert!(
            rows[0].2.ends_with('Z') && rows[0].2.len() == 20,
            "{rows:?}"
        );
        let indexes: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'punches_by_device_time'",
        )
        .fetch_one(&sink.pool)
        .await
        .unwrap();
        assert_eq!(indexes, 1);
    }

    #[tokio::test]
    async fn an_unwritable_location_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, "not a directory").unwrap();
        let error = SqliteSink::open(&blocker.join("attendance.db"))
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(error.starts_with("sink sqlite ("), "{error}");
        assert!(error.contains("writable"), "{error}");
    }
}
