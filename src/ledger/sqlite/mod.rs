//! The ledger in one SQLite file (`cache/ledger.db`), its schema created and upgraded by
//! the versioned migrations in `migrations/ledger/`.
//!
//! Durability: WAL with `synchronous = FULL`, so a commit that journals a device's batch
//! (and so may acknowledge a pushing terminal, or move a cursor) has reached the disk
//! before it returns. A batch is one transaction of a few statements, its rows passed in
//! and read back as JSON (see [`json_rows`]).
//!
//! Cost follows new work, not history: what is open or refused is found through
//! partial indexes (`deliveries_open`, `deliveries_refused`, `punches_unexported`),
//! named with `INDEXED BY` where SQLite, without statistics, would rather walk a
//! sink's every delivery by primary key.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, Sqlite, Transaction};

use super::{
    AdmsCommand, CacheFile, CycleId, DeviceRecord, DeviceStanding, Export, Exported, Journal,
    Journaled, Ledger, LedgerError, PunchQuery, PunchRecord, QuarantineRecord, Queued, Refusal,
    RegisteredSink, RetryFilter, Seq, SinkId, SinkRegistration, SinkStanding, TerminalDecision,
};
use crate::adms::users::TerminalUser;
use crate::punch::{
    DeviceLabel, Punch, PunchId, SourceKind, WALL_TIME_FORMAT, utc_text, wall_time_text,
};
use crate::sink::SinkOutcome;

pub const LEDGER_FILE_NAME: &str = "ledger.db";

/// Rows per JSON parameter or answer (see [`json_rows`]): a few hundred kilobytes of
/// text, so that a batch of thousands never has several megabytes in flight at once.
const JSON_ROWS: usize = 1000;

/// Delivery states as stored.
mod adms;

mod state {
    pub const PENDING: i64 = 0;
    pub const FAILED: i64 = 1;
    pub const DELIVERED: i64 = 2;
    pub const ALREADY: i64 = 3;
    pub const SKIPPED: i64 = 4;
    pub const WITHHELD: i64 = 5;
    pub const REJECTED: i64 = 6;
    pub const UNMAPPED: i64 = 7;

    use super::super::DeliveryState;

    /// The stored number of a state (its place in [`DeliveryState::ALL`]).
    pub fn number(state: DeliveryState) -> i64 {
        DeliveryState::ALL
            .iter()
            .position(|known| *known == state)
            .unwrap_or(0) as i64
    }

    /// SQL giving the name of the state stored in `column`.
    pub fn name_sql(column: &str) -> String {
        let cases: String = DeliveryState::ALL
            .iter()
            .enumerate()
            .map(|(number, state)| format!(" WHEN {number} THEN '{}'", state.name()))
            .collect();
        format!("CASE {column}{cases} ELSE 'unknown' END")
    }
}

/// A clone shares the connection.
#[derive(Clone)]
pub struct SqliteLedger {
    pool: SqlitePool,
    path: PathBuf,
}

impl SqliteLedger {
    /// Opens (creating and migrating as needed) the ledger at `path`. `read_only` opens
    /// an existing one for looking only.
    pub async fn open(path: &Path, read_only: bool) -> Result<SqliteLedger, LedgerError> {
        let error = |problem: String| LedgerError {
            path: path.display().to_string(),
            problem,
        };
        if !read_only && let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|cause| {
                error(format!(
                    "cannot create the folder {}: {cause} — check cache_dir in [sync]",
                    dir.display()
                ))
            })?;
        }
        // Looking only (a dry run) must not leave even the WAL's side files behind:
        // with no write-ahead log waiting to be folded in, the file is opened as
        // immutable, which creates nothing.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let immutable = read_only && std::fs::metadata(&wal).map_or(true, |wal| wal.len() == 0);
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|cause| error(cause.to_string()))?
            .filename(path)
            .create_if_missing(!read_only)
            .read_only(read_only)
            .immutable(immutable)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-4096");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .map_err(|cause| {
                error(format!(
                    "cannot open it: {cause} — check that cache_dir in [sync] is writable"
                ))
            })?;
        if !read_only {
            sqlx::migrate!("./migrations/ledger")
                .run(&pool)
                .await
                .map_err(|cause| {
                    error(format!(
                        "cannot create or upgrade its tables: {cause} — it may belong to a newer iclock-sync"
                    ))
                })?;
        }
        Ok(SqliteLedger {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// A second handle on the ledger another handle has open, for reading only, with
    /// `connections` of its own: the API's many readers then neither wait behind the
    /// writer's single connection nor hold it up (SQLite's write-ahead log lets readers
    /// and one writer work at once).
    pub async fn open_reader(path: &Path, connections: u32) -> Result<SqliteLedger, LedgerError> {
        let error = |problem: String| LedgerError {
            path: path.display().to_string(),
            problem,
        };
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|cause| error(cause.to_string()))?
            .filename(path)
            .read_only(true)
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-8192");
        let pool = SqlitePoolOptions::new()
            .max_connections(connections.max(1))
            .connect_with(options)
            .await
            .map_err(|cause| error(format!("cannot open it for reading: {cause}")))?;
        Ok(SqliteLedger {
            pool,
            path: path.to_path_buf(),
        })
    }

    /// Closes it, checkpointing the WAL into the file.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    fn error(&self, cause: impl std::fmt::Display) -> LedgerError {
        LedgerError {
            path: self.path.display().to_string(),
            problem: cause.to_string(),
        }
    }

    async fn begin(&self) -> Result<Transaction<'static, Sqlite>, LedgerError> {
        self.pool.begin().await.map_err(|error| self.error(error))
    }

    async fn active_sinks(&self) -> Result<Vec<SinkId>, LedgerError> {
        sqlx::query_scalar("SELECT id FROM sinks WHERE active = 1 ORDER BY id")
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))
    }
}

/// `1, 2, 3` for an `IN (…)` of sink IDs (`NULL` when there are none: matches nothing).
fn id_list(ids: &[i64]) -> String {
    if ids.is_empty() {
        return "NULL".to_owned();
    }
    ids.iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Puts `punches` in the temporary table `staged_punches`, in their order, [`JSON_ROWS`]
/// at a time. Written straight from `jsonb_each` into `punches`, every statement after
/// the first in a transaction would copy each page it touched to a statement journal
/// (SQLite keeps one whenever a statement reads a virtual table inside a transaction);
/// from a table it keeps none.
async fn stage_punches(
    tx: &mut Transaction<'static, Sqlite>,
    punches: &[Punch],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "CREATE TEMP TABLE IF NOT EXISTS staged_punches (id, device, timezone, serial, terminal, \
         user_id, local_time, state, verify_mode, work_code, source, source_key)",
    )
    .execute(&mut **tx)
    .await?;
    for chunk in punches.chunks(JSON_ROWS) {
        let rows = json_rows(chunk.iter().map(|punch| {
            (
                punch.id.as_str(),
                &*punch.device.name,
                punch.device.timezone.name(),
                &*punch.serial,
                &*punch.terminal,
                &punch.user_id,
                punch.local_time_text(),
                punch.state,
                punch.verify_mode,
                &punch.work_code,
                punch.source.as_str(),
                &punch.source_key,
            )
        }))?;
        sqlx::query(
            "INSERT INTO temp.staged_punches SELECT value ->> 0, value ->> 1, value ->> 2, \
             value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, value ->> 8, \
             value ->> 9, value ->> 10, value ->> 11 FROM jsonb_each(?) ORDER BY key",
        )
        .bind(rows)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

fn now_text() -> String {
    utc_text(Utc::now())
}

/// A punch as stored: the columns of [`PUNCH_COLUMNS`], read from a row or from one
/// element of a [`JSON_PUNCHES`] array.
#[derive(Deserialize)]
struct PunchRow(
    String, // id
    String, // device
    String, // timezone
    String, // serial
    String, // terminal
    String, // user_id
    String, // local_time
    i32,    // state
    i32,    // verify_mode
    String, // work_code
    String, // source
    String, // source_key
    String, // read_at
);

impl PunchRow {
    /// From a row holding [`PUNCH_COLUMNS`] after its first `skip` columns.
    fn from_row(row: &SqliteRow, skip: usize) -> Result<Self, sqlx::Error> {
        let text = |index: usize| row.try_get::<String, _>(skip + index);
        Ok(Self(
            text(0)?,
            text(1)?,
            text(2)?,
            text(3)?,
            text(4)?,
            text(5)?,
            text(6)?,
            row.try_get(skip + 7)?,
            row.try_get(skip + 8)?,
            text(9)?,
            text(10)?,
            text(11)?,
            text(12)?,
        ))
    }

    /// The punch; `labels` shares one device label among the punches of a device.
    fn into_punch(
        self,
        labels: &mut HashMap<(String, String), Arc<DeviceLabel>>,
    ) -> Result<Punch, sqlx::Error> {
        let Self(
            id,
            device,
            timezone,
            serial,
            terminal,
            user_id,
            local_time,
            state,
            verify_mode,
            work_code,
            source,
            source_key,
            read_at,
        ) = self;
        let local_time = NaiveDateTime::parse_from_str(&local_time, WALL_TIME_FORMAT)
            .map_err(|error| sqlx::Error::Decode(error.into()))?;
        let device = labels
            .entry((device, timezone))
            .or_insert_with_key(|(device, timezone)| {
                Arc::new(DeviceLabel {
                    name: Arc::from(device.as_str()),
                    timezone: timezone.parse().unwrap_or(chrono_tz::UTC),
                })
            })
            .clone();
        Ok(Punch {
            id: PunchId::from_stored(id),
            device,
            serial: Arc::from(serial),
            terminal: Arc::from(terminal),
            user_id,
            local_time,
            state,
            verify_mode,
            work_code,
            source: SourceKind::parse(&source).unwrap_or(SourceKind::Biotime),
            source_key,
            received_at: NaiveDateTime::parse_from_str(&read_at, "%Y-%m-%dT%H:%M:%SZ")
                .ok()
                .map(|time| time.and_utc()),
        })
    }
}

/// Rows in bulk, both ways, as JSON: up to [`JSON_ROWS`] go in as one array parameter
/// unpacked by `jsonb_each`, and come back as one `json_group_array` value. SQLite does
/// the work in one statement, and the rows cross to and from sqlx's worker thread once
/// rather than once per row — which, row by row, cost more than the writing itself.
/// (`jsonb_each` hands each row to `->>` already parsed; `json_each` would hand it
/// over as text, parsed again for every column.)
fn json_rows<T: Serialize>(rows: impl Iterator<Item = T>) -> Result<String, sqlx::Error> {
    let rows: Vec<T> = rows.collect();
    serde_json::to_string(&rows).map_err(|error| sqlx::Error::Encode(error.into()))
}

fn from_json_rows<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, sqlx::Error> {
    serde_json::from_str(text).map_err(|error| sqlx::Error::Decode(error.into()))
}

/// A punch every active sink has taken, in one way or another (`{sinks}`: their IDs).
const EXPORTABLE: &str = "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = punches.seq \
     AND d.sink_id IN ({sinks}) AND d.state NOT IN (2, 3, 4, 5))";

const PUNCH_COLUMNS: &str = "p.id, p.device, p.timezone, p.serial, p.terminal, p.user_id, \
                             p.local_time, p.state, p.verify_mode, p.work_code, p.source, p.source_key, p.read_at";

/// `[seq, [PUNCH_COLUMNS]]` of each punch `p`, for `json_group_array`.
const JSON_PUNCHES: &str = "json_array(p.seq, json_array(p.id, p.device, p.timezone, p.serial, \
                            p.terminal, p.user_id, p.local_time, p.state, p.verify_mode, p.work_code, \
                            p.source, p.source_key, p.read_at))";

#[async_trait]
impl Ledger for SqliteLedger {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn register_sinks(
        &self,
        sinks: &[SinkRegistration],
        backfill: Option<Duration>,
    ) -> Result<Vec<RegisteredSink>, LedgerError> {
        let mut tx = self.begin().await?;
        let result: Result<Vec<RegisteredSink>, sqlx::Error> = async {
            let any_punch: bool = sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM punches)")
                .fetch_one(&mut *tx)
                .await?;
            sqlx::query("UPDATE sinks SET active = 0")
                .execute(&mut *tx)
                .await?;
            let mut registered = Vec::new();
            for sink in sinks {
                let known: Option<(i64, Option<String>)> =
                    sqlx::query_as("SELECT id, identity FROM sinks WHERE name = ?")
                        .bind(&sink.name)
                        .fetch_optional(&mut *tx)
                        .await?;
                let (id, queued_because, since) = match known {
                    None => {
                        let id: i64 = sqlx::query_scalar(
                            "INSERT INTO sinks (name, target, identity, added_at) VALUES (?, ?, ?, ?) RETURNING id",
                        )
                        .bind(&sink.name)
                        .bind(&sink.target)
                        .bind(&sink.identity)
                        .bind(now_text())
                        .fetch_one(&mut *tx)
                        .await?;
                        let since = backfill
                            .and_then(|window| chrono::Duration::from_std(window).ok())
                            .map(|window| Utc::now() - window);
                        let because = any_punch.then(|| {
                            "a new sink: offered the punches of the backfill window ([ledger] backfill)"
                                .to_owned()
                        });
                        (id, because, since.filter(|_| any_punch))
                    }
                    Some((id, identity)) => {
                        sqlx::query(
                            "UPDATE sinks SET active = 1, target = ?, identity = COALESCE(?, identity) WHERE id = ?",
                        )
                        .bind(&sink.target)
                        .bind(&sink.identity)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                        let replaced = matches!((&identity, &sink.identity), (Some(was), Some(now)) if was != now);
                        if replaced {
                            // The store was replaced or emptied: nothing it was given counts.
                            sqlx::query(
                                "UPDATE deliveries SET state = 0, reason = NULL, attempts = 0, due_at = NULL, cycle = NULL WHERE sink_id = ?",
                            )
                            .bind(id)
                            .execute(&mut *tx)
                            .await?;
                        }
                        (
                            id,
                            replaced.then(|| {
                                "its store was replaced or emptied (a new identity): everything is sent again"
                                    .to_owned()
                            }),
                            replaced.then_some(DateTime::<Utc>::MIN_UTC),
                        )
                    }
                };
                let queued = match since {
                    Some(since) => {
                        sqlx::query(
                            "INSERT OR IGNORE INTO deliveries (sink_id, seq, state) SELECT ?, seq, 0 FROM punches WHERE read_at >= ?",
                        )
                        .bind(id)
                        .bind(utc_text(since))
                        .execute(&mut *tx)
                        .await?;
                        sqlx::query_scalar::<_, i64>(
                            "SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_open WHERE sink_id = ? AND state <= 1",
                        )
                        .bind(id)
                        .fetch_one(&mut *tx)
                        .await?
                        .max(0) as u64
                    }
                    None => 0,
                };
                registered.push(RegisteredSink {
                    id,
                    name: sink.name.clone(),
                    queued,
                    queued_because: queued_because.filter(|_| queued > 0),
                });
            }
            Ok(registered)
        }
        .await;
        let registered = result.map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(registered)
    }

    async fn backfill(&self, sink: &str, since: DateTime<Utc>) -> Result<u64, LedgerError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT id FROM sinks WHERE name = ?")
            .bind(sink)
            .fetch_optional(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        let Some(id) = id else {
            return Err(self.error(format!(
                "no sink named '{sink}' has run yet — run a sync once with it configured"
            )));
        };
        let done = sqlx::query(
            "INSERT OR IGNORE INTO deliveries (sink_id, seq, state) SELECT ?, seq, 0 FROM punches WHERE read_at >= ?",
        )
        .bind(id)
        .bind(utc_text(since))
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(done.rows_affected())
    }

    async fn cursor(&self, device: &str) -> Result<Option<Value>, LedgerError> {
        let text: Option<Option<String>> =
            sqlx::query_scalar("SELECT cursor FROM devices WHERE name = ?")
                .bind(device)
                .fetch_optional(&self.pool)
                .await
                .map_err(|error| self.error(error))?;
        Ok(text
            .flatten()
            .and_then(|text| serde_json::from_str(&text).ok()))
    }

    async fn journal(&self, journal: Journal<'_>) -> Result<Journaled, LedgerError> {
        let mut tx = self.begin().await?;
        let result: Result<Journaled, sqlx::Error> = async {
            let device = journal.device;
            sqlx::query(
                "INSERT INTO devices (name, kind, location) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET kind = excluded.kind, location = excluded.location",
            )
            .bind(&device.name)
            .bind(&device.kind)
            .bind(&device.location)
            .execute(&mut *tx)
            .await?;
            // New punches take numbers above every one there: what this batch added is
            // what lies above the highest number before it, with no row coming back.
            let before: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM punches")
                .fetch_one(&mut *tx)
                .await?;
            let read_at = now_text();
            // Staged first, then added in one statement: see `stage_punches`.
            stage_punches(&mut tx, journal.punches).await?;
            let new = sqlx::query(
                "INSERT OR IGNORE INTO main.punches (id, device, timezone, serial, terminal, user_id, local_time, state, verify_mode, work_code, source, source_key, read_at) \
                 SELECT id, device, timezone, serial, terminal, user_id, local_time, state, verify_mode, work_code, source, source_key, ? \
                 FROM temp.staged_punches ORDER BY rowid",
            )
            .bind(&read_at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("DELETE FROM temp.staged_punches")
                .execute(&mut *tx)
                .await?;
            let mut delivered_before = 0;
            if new > 0 {
                let any_before: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM delivered_before)")
                        .fetch_one(&mut *tx)
                        .await?;
                if any_before {
                    // Those are in the JSON cache already: never exported again.
                    delivered_before = sqlx::query(
                        "UPDATE punches SET exported = -1 WHERE seq > ? AND id IN (SELECT id FROM delivered_before)",
                    )
                    .bind(before)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                }
                let sinks = id_list(journal.sinks);
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT OR IGNORE INTO deliveries (sink_id, seq, state, reason) \
                     SELECT s.id, p.seq, CASE WHEN p.exported = -1 THEN {already} ELSE {pending} END, \
                     CASE WHEN p.exported = -1 THEN 'delivered before the ledger' END \
                     FROM punches p JOIN sinks s ON s.id IN ({sinks}) WHERE p.seq > ?",
                    already = state::ALREADY,
                    pending = state::PENDING,
                )))
                .bind(before)
                .execute(&mut *tx)
                .await?;
            }
            let mut newly_quarantined = 0;
            for entry in journal.quarantine {
                let done = sqlx::query(
                    "INSERT INTO quarantine (source_key, device, reason, record, quarantined_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(source_key) DO NOTHING",
                )
                .bind(&entry.source_key)
                .bind(&entry.device)
                .bind(&entry.reason)
                .bind(entry.record.to_string())
                .bind(&read_at)
                .execute(&mut *tx)
                .await?;
                newly_quarantined += done.rows_affected();
            }
            if let Some(cursor) = journal.cursor {
                sqlx::query("UPDATE devices SET cursor = ? WHERE name = ?")
                    .bind(cursor.to_string())
                    .bind(&device.name)
                    .execute(&mut *tx)
                    .await?;
            }
            Ok(Journaled {
                new,
                delivered_before,
                newly_quarantined,
            })
        }
        .await;
        let journaled = result.map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(journaled)
    }

    async fn device_read(
        &self,
        device: &DeviceRecord,
        error: Option<&str>,
        facts: Option<&Value>,
    ) -> Result<(), LedgerError> {
        let now = now_text();
        let sql = match error {
            None => {
                "INSERT INTO devices (name, kind, location, last_read_at, facts) VALUES (?1, ?2, ?3, ?4, ?6) ON CONFLICT(name) DO UPDATE SET kind = ?2, location = ?3, last_read_at = ?4, facts = COALESCE(?6, facts)"
            }
            Some(_) => {
                "INSERT INTO devices (name, kind, location, last_error, last_error_at, facts) VALUES (?1, ?2, ?3, ?5, ?4, ?6) ON CONFLICT(name) DO UPDATE SET kind = ?2, location = ?3, last_error = ?5, last_error_at = ?4, facts = COALESCE(?6, facts)"
            }
        };
        sqlx::query(sql)
            .bind(&device.name)
            .bind(&device.kind)
            .bind(&device.location)
            .bind(now)
            .bind(error)
            .bind(facts.map(Value::to_string))
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn due(
        &self,
        sink: SinkId,
        after: Seq,
        limit: usize,
        due_by: Option<DateTime<Utc>>,
    ) -> Result<Vec<Queued>, LedgerError> {
        let sql = format!(
            "SELECT json_group_array({JSON_PUNCHES}) FROM \
             (SELECT d.seq FROM deliveries d INDEXED BY deliveries_open \
              WHERE d.sink_id = ?1 AND d.state <= 1 AND d.seq > ?2 \
              AND (?3 IS NULL OR d.due_at IS NULL OR d.due_at <= ?3) ORDER BY d.seq LIMIT ?4) AS q \
             JOIN punches p ON p.seq = q.seq"
        );
        let due_by = due_by.map(utc_text);
        let mut labels = HashMap::new();
        let mut queued: Vec<Queued> = Vec::with_capacity(limit.min(JSON_ROWS * 5));
        while queued.len() < limit {
            let after = queued.last().map_or(after, |last| last.seq);
            let page = (limit - queued.len()).min(JSON_ROWS);
            let rows: String = sqlx::query_scalar(AssertSqlSafe(sql.as_str()))
                .bind(sink)
                .bind(after)
                .bind(&due_by)
                .bind(page as i64)
                .fetch_one(&self.pool)
                .await
                .map_err(|error| self.error(error))?;
            let mut rows: Vec<(Seq, PunchRow)> =
                from_json_rows(&rows).map_err(|error| self.error(error))?;
            rows.sort_unstable_by_key(|(seq, _)| *seq);
            let full = rows.len() == page;
            for (seq, row) in rows {
                let punch = row
                    .into_punch(&mut labels)
                    .map_err(|error| self.error(error))?;
                queued.push(Queued { seq, punch });
            }
            if !full {
                break;
            }
        }
        Ok(queued)
    }

    async fn settle(
        &self,
        sink: SinkId,
        cycle: CycleId,
        outcomes: &[(Seq, SinkOutcome)],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError> {
        let mut plain: HashMap<i64, Vec<Seq>> = HashMap::new();
        let mut explained: Vec<(Seq, i64, &str)> = Vec::new();
        let mut failed: Vec<(Seq, &str)> = Vec::new();
        for (seq, outcome) in outcomes {
            match outcome {
                SinkOutcome::Delivered => plain.entry(state::DELIVERED).or_default().push(*seq),
                SinkOutcome::AlreadyPresent => plain.entry(state::ALREADY).or_default().push(*seq),
                SinkOutcome::Skipped => plain.entry(state::SKIPPED).or_default().push(*seq),
                SinkOutcome::Withheld(reason) => explained.push((*seq, state::WITHHELD, reason)),
                SinkOutcome::Rejected(reason) => explained.push((*seq, state::REJECTED, reason)),
                SinkOutcome::Unmapped(reason) => explained.push((*seq, state::UNMAPPED, reason)),
                SinkOutcome::Failed(reason) => failed.push((*seq, reason)),
            }
        }
        let mut tx = self.begin().await?;
        let result: Result<(), sqlx::Error> = async {
            for (state, seqs) in &plain {
                sqlx::query(
                    "UPDATE deliveries SET state = ?, reason = NULL, due_at = NULL, cycle = ? \
                     WHERE sink_id = ? AND seq IN (SELECT value FROM json_each(?))",
                )
                .bind(*state)
                .bind(cycle)
                .bind(sink)
                .bind(json_rows(seqs.iter())?)
                .execute(&mut *tx)
                .await?;
            }
            for (seq, state, reason) in explained {
                sqlx::query(
                    "UPDATE deliveries SET state = ?, reason = ?, due_at = NULL, cycle = ? WHERE sink_id = ? AND seq = ?",
                )
                .bind(state)
                .bind(reason)
                .bind(cycle)
                .bind(sink)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            }
            // The pause before the next attempt doubles from 30 s up to an hour.
            for (seq, reason) in failed {
                sqlx::query(
                    "UPDATE deliveries SET state = 1, reason = ?, attempts = attempts + 1, \
                     due_at = strftime('%Y-%m-%dT%H:%M:%SZ', ?, '+' || min(3600, 30 * (1 << min(attempts, 7))) || ' seconds') \
                     WHERE sink_id = ? AND seq = ?",
                )
                .bind(reason)
                .bind(utc_text(now))
                .bind(sink)
                .bind(seq)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        }
        .await;
        result.map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))
    }

    async fn reopen_cycle(&self, sink: SinkId, cycle: CycleId) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let result: Result<u64, sqlx::Error> = async {
            // Not delivered after all, so not exported by the export under way either.
            sqlx::query(
                "UPDATE punches SET exported = 0 WHERE exported > 0 \
                 AND exported = (SELECT MAX(id) FROM exports WHERE finished_at IS NULL) \
                 AND seq IN (SELECT seq FROM deliveries WHERE sink_id = ? AND cycle = ? AND state = 2)",
            )
            .bind(sink)
            .bind(cycle)
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query(
                "UPDATE deliveries SET state = 0, cycle = NULL WHERE sink_id = ? AND cycle = ? AND state = 2",
            )
            .bind(sink)
            .bind(cycle)
            .execute(&mut *tx)
            .await?;
            Ok(done.rows_affected())
        }
        .await;
        let reopened = result.map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(reopened)
    }

    async fn open_count(
        &self,
        sink: SinkId,
    ) -> Result<(u64, u64, Option<DateTime<Utc>>), LedgerError> {
        let (open, failing, next): (i64, Option<i64>, Option<String>) = sqlx::query_as(
            "SELECT COUNT(*), SUM(state = 1), MIN(CASE WHEN state = 1 THEN due_at END) FROM deliveries INDEXED BY deliveries_open WHERE sink_id = ? AND state <= 1",
        )
        .bind(sink)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let next = next.and_then(|text| {
            DateTime::parse_from_rfc3339(&text)
                .ok()
                .map(|time| time.with_timezone(&Utc))
        });
        Ok((open.max(0) as u64, failing.unwrap_or(0).max(0) as u64, next))
    }

    async fn open_by_device(&self) -> Result<Vec<(String, u64)>, LedgerError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT p.device, COUNT(DISTINCT d.seq) FROM deliveries d INDEXED BY deliveries_open JOIN punches p ON p.seq = d.seq \
             WHERE d.state <= 1 AND d.sink_id IN (SELECT id FROM sinks WHERE active = 1) GROUP BY p.device",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(|(device, count)| (device, count.max(0) as u64))
            .collect())
    }

    async fn known(&self, punches: &[Punch]) -> Result<Vec<bool>, LedgerError> {
        let keys = json_rows(
            punches
                .iter()
                .map(|punch| (punch.local_time_text(), punch.id.as_str())),
        )
        .map_err(|error| self.error(error))?;
        let known: HashSet<String> = sqlx::query_scalar(
            "SELECT id FROM punches WHERE (local_time, id) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1)) \
             UNION SELECT id FROM delivered_before WHERE id IN (SELECT value ->> 1 FROM json_each(?1))",
        )
        .bind(keys)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?
        .into_iter()
        .collect();
        Ok(punches
            .iter()
            .map(|punch| known.contains(punch.id.as_str()))
            .collect())
    }

    async fn begin_cycle(&self, started_at: DateTime<Utc>) -> Result<CycleId, LedgerError> {
        sqlx::query_scalar("INSERT INTO cycles (started_at) VALUES (?) RETURNING id")
            .bind(utc_text(started_at))
            .fetch_one(&self.pool)
            .await
            .map_err(|error| self.error(error))
    }

    async fn finish_cycle(
        &self,
        cycle: CycleId,
        report: &Value,
        duration_ms: u64,
        exit_code: u8,
    ) -> Result<(), LedgerError> {
        let delivered: Vec<(&str, u64)> = report["sinks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|sink| Some((sink["name"].as_str()?, sink["delivered"].as_u64()?)))
            .filter(|(_, delivered)| *delivered > 0)
            .collect();
        let mut tx = self.begin().await?;
        let finished: Result<(), sqlx::Error> = async {
            sqlx::query(
                "UPDATE cycles SET report = ?, duration_ms = ?, exit_code = ? WHERE id = ?",
            )
            .bind(report.to_string())
            .bind(duration_ms as i64)
            .bind(i64::from(exit_code))
            .bind(cycle)
            .execute(&mut *tx)
            .await?;
            for (sink, count) in &delivered {
                sqlx::query(
                    "INSERT OR REPLACE INTO cycle_sinks (sink, cycle, delivered) VALUES (?, ?, ?)",
                )
                .bind(sink)
                .bind(cycle)
                .bind(*count as i64)
                .execute(&mut *tx)
                .await?;
            }
            Ok(())
        }
        .await;
        finished.map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))
    }

    async fn cycles(&self, count: usize) -> Result<Vec<Value>, LedgerError> {
        let reports: Vec<Option<String>> =
            sqlx::query_scalar("SELECT report FROM cycles ORDER BY id DESC LIMIT ?")
                .bind(count as i64)
                .fetch_all(&self.pool)
                .await
                .map_err(|error| self.error(error))?;
        Ok(reports
            .into_iter()
            .flatten()
            .filter_map(|text| serde_json::from_str(&text).ok())
            .collect())
    }

    async fn import_delivered(&self, ids: &[String]) -> Result<u64, LedgerError> {
        let mut tx = self.begin().await?;
        let mut added = 0;
        // A Python cache may hold millions: a slice at a time keeps the text small.
        for chunk in ids.chunks(10_000) {
            added += sqlx::query(
                "INSERT OR IGNORE INTO delivered_before (id) SELECT value FROM json_each(?)",
            )
            .bind(json_rows(chunk.iter()).map_err(|error| self.error(error))?)
            .execute(&mut *tx)
            .await
            .map_err(|error| self.error(error))?
            .rows_affected();
        }
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(added)
    }

    async fn import_cursor(&self, device: &str, cursor: &Value) -> Result<(), LedgerError> {
        sqlx::query(
            "INSERT INTO devices (name, kind, location, cursor) VALUES (?1, '', '', ?2) ON CONFLICT(name) DO UPDATE SET cursor = ?2",
        )
        .bind(device)
        .bind(cursor.to_string())
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn milestone(&self, name: &str) -> Result<bool, LedgerError> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM milestones WHERE name = ?)")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .map_err(|error| self.error(error))
    }

    async fn mark_milestone(&self, name: &str, detail: &str) -> Result<(), LedgerError> {
        sqlx::query("INSERT OR REPLACE INTO milestones (name, done_at, detail) VALUES (?, ?, ?)")
            .bind(name)
            .bind(now_text())
            .bind(detail)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn unfinished_export(&self) -> Result<Option<Export>, LedgerError> {
        let row: Option<(i64, Option<i64>, Option<i64>, String)> = sqlx::query_as(
            "SELECT e.id, e.cache_append_at, \
             (SELECT cache_ids FROM exports WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1), \
             e.audit_file FROM exports e WHERE e.finished_at IS NULL ORDER BY e.id LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(
            row.map(|(id, cache_append_at, cache_ids, audit_file)| Export {
                id,
                cache_append_at: cache_append_at.map(|length| length.max(0) as u64),
                cache_ids: cache_ids.unwrap_or(0).max(0) as u64,
                audit_file,
            }),
        )
    }

    async fn start_export(
        &self,
        cache_append_at: Option<u64>,
        audit_file: &str,
    ) -> Result<Export, LedgerError> {
        let cache_ids: Option<i64> = sqlx::query_scalar(
            "SELECT cache_ids FROM exports WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?
        .flatten();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO exports (started_at, cache_append_at, audit_file, punches) VALUES (?, ?, ?, 0) RETURNING id",
        )
        .bind(now_text())
        .bind(cache_append_at.map(|length| length as i64))
        .bind(audit_file)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(Export {
            id,
            cache_append_at,
            cache_ids: cache_ids.unwrap_or(0).max(0) as u64,
            audit_file: audit_file.to_owned(),
        })
    }

    async fn export_batch(
        &self,
        export: i64,
        seqs: &[Seq],
    ) -> Result<Vec<(Seq, bool)>, LedgerError> {
        let sinks = id_list(&self.active_sinks().await?);
        let mut tx = self.begin().await?;
        let seqs = json_rows(seqs.iter()).map_err(|error| self.error(error))?;
        let sql = format!(
            "UPDATE punches SET exported = ? WHERE seq IN (SELECT value FROM json_each(?)) \
             AND exported = 0 AND {EXPORTABLE} RETURNING seq"
        )
        .replace("{sinks}", &sinks);
        let result: Result<Vec<(Seq, bool)>, sqlx::Error> = async {
            // Only what this call marks: the same punches handed over again (the other
            // sink settled them too) were exported by the first call.
            let taken: Vec<Seq> = sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(export)
                .bind(&seqs)
                .fetch_all(&mut *tx)
                .await?;
            let seqs = json_rows(taken.iter())?;
            // What this call took, and whether a sink wrote it now (or had it already).
            let marked: String = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT json_group_array(json_array(p.seq, EXISTS (SELECT 1 FROM deliveries d \
                 WHERE d.seq = p.seq AND d.state = {delivered} AND d.sink_id IN ({sinks})))) \
                 FROM punches p WHERE p.seq IN (SELECT value FROM json_each(?)) AND p.exported = ?",
                delivered = state::DELIVERED,
            )))
            .bind(&seqs)
            .bind(export)
            .fetch_one(&mut *tx)
            .await?;
            let marked: Vec<(Seq, i64)> = from_json_rows(&marked)?;
            Ok(marked
                .into_iter()
                .map(|(seq, written)| (seq, written != 0))
                .collect())
        }
        .await;
        let mut marked = result.map_err(|error| self.error(error))?;
        sqlx::query("UPDATE exports SET punches = punches + ? WHERE id = ?")
            .bind(marked.len() as i64)
            .bind(export)
            .execute(&mut *tx)
            .await
            .map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))?;
        marked.sort_unstable_by_key(|(seq, _)| *seq);
        Ok(marked)
    }

    async fn exportable(&self) -> Result<bool, LedgerError> {
        let sinks = id_list(&self.active_sinks().await?);
        let sql =
            format!("SELECT EXISTS (SELECT 1 FROM punches WHERE exported = 0 AND {EXPORTABLE})")
                .replace("{sinks}", &sinks);
        sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&self.pool)
            .await
            .map_err(|error| self.error(error))
    }

    async fn export_rest(&self, export: i64) -> Result<u64, LedgerError> {
        let sinks = id_list(&self.active_sinks().await?);
        let sql = format!("UPDATE punches SET exported = ? WHERE exported = 0 AND {EXPORTABLE}")
            .replace("{sinks}", &sinks);
        let mut tx = self.begin().await?;
        let marked = sqlx::query(AssertSqlSafe(sql))
            .bind(export)
            .execute(&mut *tx)
            .await
            .map_err(|error| self.error(error))?
            .rows_affected();
        sqlx::query("UPDATE exports SET punches = punches + ? WHERE id = ?")
            .bind(marked as i64)
            .bind(export)
            .execute(&mut *tx)
            .await
            .map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(marked)
    }

    async fn export_page(
        &self,
        export: i64,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Exported>, LedgerError> {
        let sql = format!(
            "SELECT p.seq, EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = p.seq AND d.state = {} \
             AND d.sink_id IN (SELECT id FROM sinks)), {PUNCH_COLUMNS} FROM punches p \
             WHERE p.seq > ? AND p.exported = ? ORDER BY p.seq LIMIT ?",
            state::DELIVERED
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(export)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        let mut labels = HashMap::new();
        rows.iter()
            .map(|row| {
                Ok(Exported {
                    seq: row.try_get(0)?,
                    written: row.try_get(1)?,
                    punch: PunchRow::from_row(row, 2)?.into_punch(&mut labels)?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()
            .map_err(|error| self.error(error))
    }

    async fn finish_export(&self, export: i64, cache: CacheFile) -> Result<(), LedgerError> {
        sqlx::query(
            "UPDATE exports SET finished_at = ?, cache_length_after = ?, cache_ids = ? WHERE id = ?",
        )
        .bind(now_text())
        .bind(cache.length as i64)
        .bind(cache.ids as i64)
        .bind(export)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        // An export of nothing is no event: only the latest file length matters.
        sqlx::query("DELETE FROM exports WHERE punches = 0 AND finished_at IS NOT NULL AND id < ?")
            .bind(export)
            .execute(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn cache_file(&self) -> Result<Option<CacheFile>, LedgerError> {
        let row: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT cache_length_after, cache_ids FROM exports WHERE finished_at IS NOT NULL ORDER BY id DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(row.and_then(|(length, ids)| {
            Some(CacheFile {
                length: length?.max(0) as u64,
                ids: ids.unwrap_or(0).max(0) as u64,
            })
        }))
    }

    async fn adopt_cache_file(&self, cache: CacheFile) -> Result<(), LedgerError> {
        let now = now_text();
        sqlx::query(
            "INSERT INTO exports (started_at, audit_file, punches, finished_at, cache_length_after, cache_ids) VALUES (?1, '', 0, ?1, ?2, ?3)",
        )
        .bind(now)
        .bind(cache.length as i64)
        .bind(cache.ids as i64)
        .execute(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(())
    }

    async fn delivered_before_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, LedgerError> {
        sqlx::query_scalar("SELECT id FROM delivered_before WHERE id > ? ORDER BY id LIMIT ?")
            .bind(after)
            .bind(limit as i64)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))
    }

    async fn exported_page(
        &self,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<(Seq, String)>, LedgerError> {
        sqlx::query_as(
            "SELECT seq, id FROM punches WHERE seq > ? AND exported > 0 ORDER BY seq LIMIT ?",
        )
        .bind(after)
        .bind(limit as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))
    }

    async fn sink_standings(&self) -> Result<Vec<SinkStanding>, LedgerError> {
        let sinks: Vec<(i64, String, String)> =
            sqlx::query_as("SELECT id, name, target FROM sinks WHERE active = 1 ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .map_err(|error| self.error(error))?;
        let today = wall_time_text(
            chrono::Local::now()
                .date_naive()
                .and_time(Default::default()),
        );
        let mut standings = Vec::new();
        for (id, name, target) in sinks {
            let (pending, failing, next) = self.open_count(id).await?;
            let refused: Vec<(i64, Option<String>, i64)> = sqlx::query_as(
                "SELECT state, reason, COUNT(*) AS n FROM deliveries INDEXED BY deliveries_refused WHERE sink_id = ? AND state >= 5 AND state >= 6 GROUP BY state, reason ORDER BY n DESC",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
            let unmapped_pins: Vec<(String, i64)> = sqlx::query_as(
                "SELECT p.user_id, COUNT(*) AS n FROM deliveries d INDEXED BY deliveries_refused JOIN punches p ON p.seq = d.seq WHERE d.sink_id = ? AND d.state >= 5 AND d.state = 7 GROUP BY p.user_id ORDER BY n DESC LIMIT 20",
            )
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
            let delivered_today = self.delivered_in_reports_since(&name, &today).await?;
            standings.push(SinkStanding {
                name,
                target,
                pending: pending - failing,
                failing,
                next_retry: next.map(utc_text),
                delivered_today,
                rejected: refused
                    .iter()
                    .filter(|(state, ..)| *state == state::REJECTED)
                    .map(|(.., n)| *n as u64)
                    .sum(),
                unmapped: refused
                    .iter()
                    .filter(|(state, ..)| *state == state::UNMAPPED)
                    .map(|(.., n)| *n as u64)
                    .sum(),
                top_reasons: refused
                    .iter()
                    .take(5)
                    .map(|(_, reason, n)| (reason.clone().unwrap_or_default(), *n as u64))
                    .collect(),
                unmapped_pins: unmapped_pins
                    .into_iter()
                    .map(|(pin, n)| (pin, n as u64))
                    .collect(),
            });
        }
        Ok(standings)
    }

    async fn device_standings(&self) -> Result<Vec<DeviceStanding>, LedgerError> {
        let rows = sqlx::query(
            "SELECT name, kind, location, cursor, last_read_at, last_error, last_error_at, facts FROM devices ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let mut standings = Vec::new();
        for row in rows {
            let read = |index: usize| row.try_get::<Option<String>, _>(index).ok().flatten();
            let name: String = row.try_get(0).map_err(|error| self.error(error))?;
            standings.push(DeviceStanding {
                kind: read(1).unwrap_or_default(),
                location: read(2).unwrap_or_default(),
                cursor: read(3).and_then(|text| serde_json::from_str(&text).ok()),
                last_read_at: read(4),
                last_error: read(5),
                last_error_at: read(6),
                facts: read(7).and_then(|text| serde_json::from_str(&text).ok()),
                name,
            });
        }
        Ok(standings)
    }

    async fn punches_per_day(
        &self,
        since: &str,
    ) -> Result<Vec<(String, String, u64)>, LedgerError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            // Per device, one range of its index (the planner, left alone, scans the
            // whole index to group by device).
            "SELECT d.name, substr(p.local_time, 1, 10), COUNT(*) \
             FROM devices d CROSS JOIN punches p INDEXED BY punches_by_device \
             WHERE p.device = d.name AND p.local_time >= ? GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(|(device, day, count)| (device, day, count.max(0) as u64))
            .collect())
    }

    async fn quarantined(
        &self,
        limit: usize,
        before: Option<(String, String)>,
    ) -> Result<Vec<QuarantineRecord>, LedgerError> {
        let (at, key) = before.unzip();
        let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
            "SELECT source_key, device, reason, record, quarantined_at FROM quarantine \
             WHERE ?1 IS NULL OR quarantined_at < ?1 OR quarantined_at = ?1 AND source_key < ?2 \
             ORDER BY quarantined_at DESC, source_key DESC LIMIT ?3",
        )
        .bind(at)
        .bind(key)
        .bind(limit.clamp(1, 10_000) as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(
                |(source_key, device, reason, record, quarantined_at)| QuarantineRecord {
                    source_key,
                    device,
                    reason,
                    record: serde_json::from_str(&record).unwrap_or(Value::String(record)),
                    quarantined_at,
                },
            )
            .collect())
    }

    async fn quarantine_reasons(&self) -> Result<Vec<(String, u64)>, LedgerError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT reason, COUNT(*) FROM quarantine GROUP BY reason ORDER BY 2 DESC, 1 LIMIT 100",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(rows
            .into_iter()
            .map(|(reason, count)| (reason, count.max(0) as u64))
            .collect())
    }

    async fn refusals(&self) -> Result<Vec<Refusal>, LedgerError> {
        let rejected: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT s.name, COALESCE(d.reason, ''), COUNT(*) \
             FROM sinks s CROSS JOIN deliveries d INDEXED BY deliveries_refused \
             WHERE d.sink_id = s.id AND s.active = 1 AND d.state >= 5 AND d.state = {} \
             GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 200",
            state::REJECTED
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let unmapped: Vec<(String, i64, String)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT s.name, COUNT(*), group_concat(DISTINCT p.user_id) \
             FROM sinks s CROSS JOIN deliveries d INDEXED BY deliveries_refused CROSS JOIN punches p \
             WHERE d.sink_id = s.id AND s.active = 1 AND d.state >= 5 AND d.state = {} AND p.seq = d.seq \
             GROUP BY 1 ORDER BY 2 DESC, 1",
            state::UNMAPPED
        )))
        .fetch_all(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        let mut groups: Vec<Refusal> = unmapped
            .into_iter()
            .map(|(sink, count, pins)| {
                let mut pins: Vec<String> = pins.split(',').map(str::to_owned).collect();
                pins.sort();
                pins.truncate(50);
                Refusal {
                    sink,
                    state: "unmapped".to_owned(),
                    reason: "nobody at the sink has these PINs".to_owned(),
                    punches: count.max(0) as u64,
                    pins,
                }
            })
            .collect();
        groups.extend(rejected.into_iter().map(|(sink, reason, count)| Refusal {
            sink,
            state: "rejected".to_owned(),
            reason,
            punches: count.max(0) as u64,
            pins: Vec::new(),
        }));
        groups.sort_by_key(|group| std::cmp::Reverse(group.punches));
        Ok(groups)
    }

    async fn quarantine_count(&self) -> Result<u64, LedgerError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM quarantine")
            .fetch_one(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        Ok(count.max(0) as u64)
    }

    async fn retry(&self, filter: &RetryFilter) -> Result<u64, LedgerError> {
        let everything = !(filter.rejected || filter.unmapped || filter.failed);
        let mut refused = Vec::new();
        if filter.rejected || everything {
            refused.push(state::REJECTED.to_string());
        }
        if filter.unmapped || everything {
            refused.push(state::UNMAPPED.to_string());
        }
        // Each kind through its own partial index: the cost is what is refused or
        // failing, not every delivery there ever was.
        let mut selections = Vec::new();
        if !refused.is_empty() {
            selections.push(format!(
                "deliveries_refused WHERE state >= 5 AND state IN ({})",
                refused.join(", ")
            ));
        }
        if filter.failed || everything {
            selections.push(format!(
                "deliveries_open WHERE state <= 1 AND state = {}",
                state::FAILED
            ));
        }
        let mut tx = self.begin().await?;
        let mut queued = 0;
        for selection in selections {
            let sql = format!(
                "UPDATE deliveries INDEXED BY {selection} \
                 AND sink_id IN (SELECT id FROM sinks WHERE active = 1 AND (?1 IS NULL OR name = ?1)) \
                 AND (?4 IS NULL OR reason = ?4) \
                 AND (?2 IS NULL AND ?3 IS NULL OR EXISTS (SELECT 1 FROM punches p WHERE p.seq = deliveries.seq \
                 AND (?2 IS NULL OR p.user_id = ?2) AND (?3 IS NULL OR p.read_at >= ?3)))"
            )
            .replacen(
                "WHERE",
                "SET state = 0, reason = NULL, due_at = NULL, cycle = NULL WHERE",
                1,
            );
            queued += sqlx::query(AssertSqlSafe(sql))
                .bind(&filter.sink)
                .bind(&filter.pin)
                .bind(filter.since.map(utc_text))
                .bind(&filter.reason)
                .execute(&mut *tx)
                .await
                .map_err(|error| self.error(error))?
                .rows_affected();
        }
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(queued)
    }

    async fn punches(&self, query: &PunchQuery) -> Result<Vec<PunchRecord>, LedgerError> {
        // Only the filters given are in the statement, so that SQLite picks the index
        // that fits (a PIN's punches by time, a device's by time).
        let mut conditions = Vec::new();
        let mut binds: Vec<String> = Vec::new();
        for (column, value) in [
            ("p.device = ?", &query.device),
            ("p.user_id = ?", &query.pin),
            ("p.local_time >= ?", &query.since),
            ("p.local_time <= ?", &query.until),
        ] {
            if let Some(value) = value {
                conditions.push(column.to_owned());
                binds.push(value.clone());
            }
        }
        if let Some(delivery) = query.state {
            let sink = match &query.sink {
                Some(sink) => {
                    binds.push(sink.clone());
                    "AND d.sink_id = (SELECT id FROM sinks WHERE name = ?)"
                }
                None => "",
            };
            conditions.push(format!(
                "EXISTS (SELECT 1 FROM deliveries d WHERE d.seq = p.seq AND d.state = {} {sink})",
                state::number(delivery)
            ));
        }
        let (order, beyond) = if query.newest_first {
            ("DESC", "<")
        } else {
            ("ASC", ">")
        };
        if let Some((time, seq)) = &query.after {
            conditions.push(format!(
                "(p.local_time {beyond} ? OR p.local_time = ? AND p.seq {beyond} {seq})"
            ));
            binds.push(time.clone());
            binds.push(time.clone());
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        // The page as one JSON value, each punch with where it went (per sink, one
        // primary-key lookup): one row to hand over rather than a row per value. Each
        // punch is an array of `PunchRecord`'s fields in their order, as stored (the
        // wall time, ID and zone are kept as they are shown). json_group_array takes
        // rows as they are visited: the sinks are visited in the order they were
        // configured (their IDs; NOT INDEXED keeps SQLite from visiting them by name),
        // the page is put in order here (ordering inside SQLite took a third longer).
        let sql = format!(
            "SELECT json_group_array(json_array(p.seq, p.id, p.device, p.serial, p.user_id, \
             p.local_time, p.timezone, p.state, p.verify_mode, p.work_code, p.source, p.read_at, \
             json((SELECT json_group_array(json_array(s.name, {}, d.reason)) \
                   FROM sinks s NOT INDEXED CROSS JOIN deliveries d \
                   WHERE d.sink_id = s.id AND d.seq = p.seq)))) \
             FROM (SELECT p.seq FROM punches p {filter} \
                   ORDER BY p.local_time {order}, p.seq {order} LIMIT {}) AS q \
             JOIN punches p ON p.seq = q.seq",
            state::name_sql("d.state"),
            query.limit.max(1)
        );
        let mut select = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
        for value in &binds {
            select = select.bind(value);
        }
        let page = select
            .fetch_one(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        let mut records: Vec<PunchRecord> =
            from_json_rows(&page).map_err(|error| self.error(error))?;
        records.sort_unstable_by(|a, b| (&a.local_time, a.seq).cmp(&(&b.local_time, b.seq)));
        if query.newest_first {
            records.reverse();
        }
        Ok(records)
    }

    async fn queue_command(&self, serial: &str, command: &str) -> Result<i64, LedgerError> {
        adms::queue(&self.pool, serial, command)
            .await
            .map_err(|error| self.error(error))
    }

    async fn commands_to_send(
        &self,
        serial: &str,
        again_after: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, LedgerError> {
        adms::to_send(&self.pool, serial, again_after, limit)
            .await
            .map_err(|error| self.error(error))
    }

    async fn command_result(
        &self,
        serial: &str,
        id: i64,
        return_code: Option<i64>,
        result: &str,
    ) -> Result<bool, LedgerError> {
        adms::finish(&self.pool, serial, id, return_code, result)
            .await
            .map_err(|error| self.error(error))
    }

    async fn decide_terminal(&self, decision: &TerminalDecision) -> Result<(), LedgerError> {
        adms::decide(&self.pool, decision)
            .await
            .map_err(|error| self.error(error))
    }

    async fn terminal_decisions(&self) -> Result<Vec<TerminalDecision>, LedgerError> {
        adms::decisions(&self.pool)
            .await
            .map_err(|error| self.error(error))
    }

    async fn commands(
        &self,
        serial: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AdmsCommand>, LedgerError> {
        adms::list(&self.pool, serial, limit)
            .await
            .map_err(|error| self.error(error))
    }

    async fn record_terminal_users(
        &self,
        serial: &str,
        users: &[TerminalUser],
    ) -> Result<u64, LedgerError> {
        adms::record_users(&self.pool, serial, users)
            .await
            .map_err(|error| self.error(error))
    }

    async fn terminal_users(&self, serial: &str) -> Result<Vec<TerminalUser>, LedgerError> {
        adms::users(&self.pool, serial)
            .await
            .map_err(|error| self.error(error))
    }

    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, LedgerError> {
        let sinks: Vec<i64> = sqlx::query_scalar("SELECT id FROM sinks")
            .fetch_all(&self.pool)
            .await
            .map_err(|error| self.error(error))?;
        let sink_list = id_list(&sinks);
        let mut tx = self.begin().await?;
        let prunable = format!(
            "SELECT p.seq FROM punches p WHERE p.read_at < ?1 AND NOT EXISTS \
             (SELECT 1 FROM deliveries d WHERE d.sink_id IN ({sink_list}) AND d.seq = p.seq AND d.state <= 1)"
        );
        let result: Result<u64, sqlx::Error> = async {
            sqlx::query(AssertSqlSafe(format!(
                "CREATE TEMP TABLE prunable AS {prunable}"
            )))
            .bind(utc_text(before))
            .execute(&mut *tx)
            .await?;
            sqlx::query(AssertSqlSafe(format!(
                "DELETE FROM deliveries WHERE sink_id IN ({sink_list}) AND seq IN (SELECT seq FROM prunable)"
            )))
            .execute(&mut *tx)
            .await?;
            let done = sqlx::query("DELETE FROM punches WHERE seq IN (SELECT seq FROM prunable)")
                .execute(&mut *tx)
                .await?;
            sqlx::query("DROP TABLE prunable").execute(&mut *tx).await?;
            // The history of cycles goes with the punches it was about.
            sqlx::query("DELETE FROM cycles WHERE started_at < ?1")
                .bind(utc_text(before))
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM cycle_sinks WHERE cycle < (SELECT COALESCE(MIN(id), 0) FROM cycles)")
                .execute(&mut *tx)
                .await?;
            Ok(done.rows_affected())
        }
        .await;
        let pruned = result.map_err(|error| self.error(error))?;
        tx.commit().await.map_err(|error| self.error(error))?;
        Ok(pruned)
    }
}

impl SqliteLedger {
    /// Punches `sink` delivered in the cycles that started since `since` (local wall
    /// time).
    async fn delivered_in_reports_since(
        &self,
        sink: &str,
        since: &str,
    ) -> Result<u64, LedgerError> {
        let since_utc = NaiveDateTime::parse_from_str(since, WALL_TIME_FORMAT)
            .ok()
            .and_then(|local| local.and_local_timezone(chrono::Local).earliest())
            .map(|local| utc_text(local.with_timezone(&Utc)))
            .unwrap_or_default();
        let delivered: i64 = sqlx::query_scalar(
            "SELECT COALESCE(SUM(delivered), 0) FROM cycle_sinks WHERE sink = ?1 AND cycle >= \
             (SELECT COALESCE(MIN(id), 9223372036854775807) FROM cycles WHERE started_at >= ?2)",
        )
        .bind(sink)
        .bind(since_utc)
        .fetch_one(&self.pool)
        .await
        .map_err(|error| self.error(error))?;
        Ok(delivered.max(0) as u64)
    }
}
