//! The SQL databases: PostgreSQL and MySQL/MariaDB (this file), and the embedded
//! SQLite store (`sqlite`) — one row per punch, with the columns and values of
//! `fields`, in our table or (PostgreSQL, MySQL) in one of theirs.
//!
//! PostgreSQL and MySQL go through sqlx's `Any` driver; what differs is in [`Dialect`].
//! A batch goes over as one JSON parameter, unpacked by the database into rows of the
//! target table's own types (`json_populate_recordset`, `JSON_TABLE`). Each batch is
//! one transaction: the positions whose key is already there are asked for, the rest
//! are inserted — so every punch gets an exact answer, delivered or already present.
//! (PostgreSQL does both in one statement, which answers the positions it inserted.)
//! If the insert fails on a row's data (a NOT NULL column of theirs, a value its column
//! cannot hold), the batch is written again row by row, each behind a savepoint, and
//! only the rows the database refuses are rejected. Nothing is reported delivered
//! before the commit succeeded; a batch whose commit was lost is asked about again next
//! time and answered "already present".
//!
//! Our table is created and upgraded by numbered migrations (recorded in
//! `iclock_sync_migrations`); with `migrate = false` opening only checks them. A table
//! of theirs is never created or altered: opening checks that its mapped columns exist
//! and that a unique key covers the key columns, and otherwise prints the statement
//! that adds one.

pub mod config;
mod dialect;
mod fields;
pub mod sqlite;

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use serde_json::Value;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, AssertSqlSafe, ConnectOptions, Connection, Executor};

pub use config::{MYSQL, POSTGRES, SqlConfig, Target};
pub use dialect::Dialect;

use self::dialect::Trouble;
use self::fields::{Field, TimeStyle};
use super::{Sink, SinkError, SinkOutcome};
use crate::punch::Punch;

/// How long connecting may take before the server counts as out of reach.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Our table's name (in the URL's database, or PostgreSQL's search path).
pub const OUR_TABLE: &str = "iclock_punches";

pub struct SqlSink {
    config: SqlConfig,
    pool: AnyPool,
    columns: Vec<(Field, String)>,
    /// Indexes into `columns`: every one, and the key's.
    all_columns: Vec<usize>,
    key_columns: Vec<usize>,
    present_sql: String,
    insert_sql: String,
    insert_returning_sql: Option<String>,
    style: TimeStyle,
}

impl SqlSink {
    pub async fn open(config: SqlConfig) -> Result<SqlSink, SinkError> {
        let pool = connect(&config).await?;
        let dialect = config.dialect;
        match &config.target {
            Target::Ours(_) => {
                let pending = migrate(&config, &pool, config.migrate)
                    .await
                    .map_err(|error| open_error(&config, &error))?;
                if !config.migrate && !pending.is_empty() {
                    pool.close().await;
                    return Err(SinkError {
                        sink: config.name.clone(),
                        target: target(&config),
                        problem: format!(
                            "our table {OUR_TABLE} needs migration {} and migrate = false forbids changing the database",
                            pending.join(", ")
                        ),
                        fix: format!(
                            "run `iclock-sync db migrate {}` (as a user allowed to create tables), or set migrate = true",
                            config.name
                        ),
                        outage: false,
                    });
                }
            }
            Target::Theirs { .. } => {
                if let Err(error) = check_their_table(&config, &pool).await {
                    pool.close().await;
                    return Err(error);
                }
            }
        }
        let keys = config.key_columns();
        let columns = config.columns();
        let column_names: Vec<String> = columns.iter().map(|(_, column)| column.clone()).collect();
        let key_columns = keys
            .iter()
            .filter_map(|key| columns.iter().position(|(_, column)| column == key))
            .collect();
        Ok(SqlSink {
            all_columns: (0..columns.len()).collect(),
            key_columns,
            present_sql: dialect.present_sql(config.table(), &keys),
            insert_sql: dialect.insert_sql(config.table(), &column_names),
            insert_returning_sql: dialect.insert_returning_sql(
                config.table(),
                &column_names,
                &keys,
            ),
            style: dialect.time_style(),
            columns,
            pool,
            config,
        })
    }

    /// The value of the column at `index` (into [`SqlSink::columns`]) for `punch`.
    fn value(&self, punch: &Punch, index: usize, delivered_at: DateTime<Utc>) -> Value {
        let Some((field, _)) = self.columns.get(index) else {
            return Value::Null;
        };
        // Never a NULL key: a unique key does not hold NULLs to one row.
        let theirs = matches!(self.config.target, Target::Theirs { .. });
        let empty_as_null = theirs && !self.key_columns.contains(&index);
        fields::value(*field, punch, self.style, delivered_at, empty_as_null)
    }

    /// The rows at `positions` as a JSON array of objects keyed by column name, with
    /// the columns at `columns` (indexes into [`SqlSink::columns`]).
    fn json(&self, rows: &Rows, positions: &[usize], columns: &[usize]) -> String {
        let objects = Objects {
            sink: self,
            rows,
            positions,
            columns,
        };
        // Strings, numbers and nulls: serializing them cannot fail.
        serde_json::to_string(&objects).unwrap_or_else(|_| "[]".to_owned())
    }

    /// Every column of the rows at `positions`, for inserting them.
    fn rows_json(&self, rows: &Rows<'_>, positions: &[usize]) -> String {
        self.json(rows, positions, &self.all_columns)
    }

    /// Writes the rows at `positions` in one transaction (see the module docs).
    async fn write_chunk(
        &self,
        rows: &Rows<'_>,
        positions: &[usize],
    ) -> Result<Vec<SinkOutcome>, Trouble> {
        let trouble = |error: sqlx::Error| self.config.dialect.trouble(&error);
        if let Some(sql) = &self.insert_returning_sql {
            return self.insert_returning(sql, rows, positions).await;
        }
        let mut transaction = self.pool.begin().await.map_err(trouble)?;
        let present = match sqlx::query_scalar::<_, i64>(AssertSqlSafe(self.present_sql.as_str()))
            .bind(self.keys_json(rows, positions))
            .fetch_all(&mut *transaction)
            .await
        {
            Ok(present) => present,
            Err(error) => {
                let _ = transaction.rollback().await;
                return match trouble(error) {
                    Trouble::Row(_) => self.row_by_row(rows, positions).await,
                    other => Err(other),
                };
            }
        };
        let outcomes = answers(
            positions.len(),
            present,
            SinkOutcome::AlreadyPresent,
            SinkOutcome::Delivered,
        );
        let absent: Vec<usize> = positions
            .iter()
            .zip(&outcomes)
            .filter(|(_, outcome)| **outcome == SinkOutcome::Delivered)
            .map(|(position, _)| *position)
            .collect();
        if !absent.is_empty() {
            let inserted = sqlx::query(AssertSqlSafe(self.insert_sql.as_str()))
                .bind(self.rows_json(rows, &absent))
                .execute(&mut *transaction)
                .await;
            if let Err(error) = inserted {
                let _ = transaction.rollback().await;
                return match trouble(error) {
                    Trouble::Row(_) | Trouble::Duplicate => self.row_by_row(rows, positions).await,
                    other => Err(other),
                };
            }
        }
        transaction.commit().await.map_err(trouble)?;
        Ok(outcomes)
    }

    /// [`Dialect::insert_returning_sql`]: one statement, which answers the positions
    /// it inserted.
    async fn insert_returning(
        &self,
        sql: &str,
        rows: &Rows<'_>,
        positions: &[usize],
    ) -> Result<Vec<SinkOutcome>, Trouble> {
        let inserted = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql))
            .bind(self.rows_json(rows, positions))
            .fetch_all(&self.pool)
            .await;
        let inserted = match inserted {
            Ok(inserted) => inserted,
            Err(error) => {
                return match self.config.dialect.trouble(&error) {
                    Trouble::Row(_) | Trouble::Duplicate => self.row_by_row(rows, positions).await,
                    other => Err(other),
                };
            }
        };
        Ok(answers(
            positions.len(),
            inserted,
            SinkOutcome::Delivered,
            SinkOutcome::AlreadyPresent,
        ))
    }

    /// Writes the rows one at a time, each behind a savepoint, so that only the rows
    /// the database refuses are rejected.
    async fn row_by_row(
        &self,
        rows: &Rows<'_>,
        positions: &[usize],
    ) -> Result<Vec<SinkOutcome>, Trouble> {
        let trouble = |error: sqlx::Error| self.config.dialect.trouble(&error);
        let mut transaction = self.pool.begin().await.map_err(trouble)?;
        let mut outcomes = Vec::with_capacity(positions.len());
        for position in positions {
            let one = std::slice::from_ref(position);
            transaction
                .execute("SAVEPOINT iclock_sync_row")
                .await
                .map_err(trouble)?;
            let present = sqlx::query_scalar::<_, i64>(AssertSqlSafe(self.present_sql.as_str()))
                .bind(self.keys_json(rows, one))
                .fetch_all(&mut *transaction)
                .await;
            let outcome = match present {
                Ok(present) if !present.is_empty() => Ok(SinkOutcome::AlreadyPresent),
                Ok(_) => sqlx::query(AssertSqlSafe(self.insert_sql.as_str()))
                    .bind(self.rows_json(rows, one))
                    .execute(&mut *transaction)
                    .await
                    .map(|_| SinkOutcome::Delivered),
                Err(error) => Err(error),
            };
            let outcome = match outcome.map_err(trouble) {
                Ok(outcome) => outcome,
                Err(Trouble::Row(reason)) => SinkOutcome::Rejected(format!(
                    "{} refuses the row: {reason}",
                    self.config.table()
                )),
                Err(Trouble::Duplicate) => SinkOutcome::AlreadyPresent,
                Err(other) => return Err(other),
            };
            let back_to = if matches!(outcome, SinkOutcome::Delivered) {
                "RELEASE SAVEPOINT iclock_sync_row"
            } else {
                "ROLLBACK TO SAVEPOINT iclock_sync_row"
            };
            transaction.execute(back_to).await.map_err(trouble)?;
            outcomes.push(outcome);
        }
        transaction.commit().await.map_err(trouble)?;
        Ok(outcomes)
    }

    /// Why a batch failed, for the punches that wait.
    fn failure(&self, trouble: Trouble) -> String {
        let problem = match trouble {
            Trouble::Setup { problem, fix } => format!("{problem} — {fix}"),
            Trouble::Outage { problem, fix } => format!("{problem} — {fix}"),
            Trouble::Row(problem) => problem,
            Trouble::Duplicate => "a duplicate key".to_owned(),
        };
        self.config.url.scrub(&format!(
            "sink {} ({}): {problem}",
            self.config.name,
            target(&self.config)
        ))
    }

    /// The key columns of the rows at `positions`, for asking which are there.
    fn keys_json(&self, rows: &Rows<'_>, positions: &[usize]) -> String {
        self.json(rows, positions, &self.key_columns)
    }

    /// The key of each row, to find a punch twice in one batch.
    fn key(&self, punch: &Punch, delivered_at: DateTime<Utc>) -> String {
        self.key_columns
            .iter()
            .map(|index| self.value(punch, *index, delivered_at).to_string())
            .collect::<Vec<_>>()
            .join("\u{1f}")
    }
}

/// `count` answers: `marked` for the 0-based positions the database named, `otherwise`
/// for the rest.
fn answers(
    count: usize,
    positions: Vec<i64>,
    marked: SinkOutcome,
    otherwise: SinkOutcome,
) -> Vec<SinkOutcome> {
    let mut outcomes = vec![otherwise; count];
    for position in positions {
        if let Some(outcome) = usize::try_from(position)
            .ok()
            .and_then(|position| outcomes.get_mut(position))
        {
            *outcome = marked.clone();
        }
    }
    outcomes
}

/// A row: the values of [`SqlSink::columns`], in order.
/// A batch's rows: the punches, whose column values are made as they are written
/// (a batch's worth of values held at once would cost more than the punches).
struct Rows<'a> {
    punches: &'a [Punch],
    delivered_at: DateTime<Utc>,
}

/// Rows as JSON objects, written straight from the punches (no map per row).
struct Objects<'a> {
    sink: &'a SqlSink,
    rows: &'a Rows<'a>,
    positions: &'a [usize],
    columns: &'a [usize],
}

impl serde::Serialize for Objects<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        struct Object<'b>(&'b Objects<'b>, &'b Punch);
        impl serde::Serialize for Object<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let Object(objects, punch) = self;
                let mut map = serializer.serialize_map(Some(objects.columns.len()))?;
                for index in objects.columns {
                    let name = objects
                        .sink
                        .columns
                        .get(*index)
                        .map_or("", |(_, name)| name);
                    let value = objects.sink.value(punch, *index, objects.rows.delivered_at);
                    map.serialize_entry(name, &value)?;
                }
                map.end()
            }
        }
        let mut sequence = serializer.serialize_seq(Some(self.positions.len()))?;
        for position in self.positions {
            if let Some(punch) = self.rows.punches.get(*position) {
                sequence.serialize_element(&Object(self, punch))?;
            }
        }
        sequence.end()
    }
}

/// `postgres://user:****@host/db (iclock_punches)`, for summaries.
fn target(config: &SqlConfig) -> String {
    format!("{} ({})", config.url.redacted(), config.table())
}

fn open_error(config: &SqlConfig, error: &sqlx::Error) -> SinkError {
    let (problem, fix, outage) = match config.dialect.trouble(error) {
        Trouble::Setup { problem, fix } => (problem, fix, false),
        Trouble::Outage { problem, fix } => (problem, fix, true),
        Trouble::Row(problem) => (problem, "report this as a bug".to_owned(), false),
        Trouble::Duplicate => (
            "a duplicate key".to_owned(),
            "report this as a bug".to_owned(),
            false,
        ),
    };
    SinkError {
        sink: config.name.clone(),
        target: target(config),
        problem: config.url.scrub(&problem),
        fix,
        outage,
    }
}

async fn connect(config: &SqlConfig) -> Result<AnyPool, SinkError> {
    sqlx::any::install_default_drivers();
    let options = AnyConnectOptions::from_str(config.url.expose())
        .map_err(|error| open_error(config, &error))?;
    // One connection first, so that a server that is down or refuses the login says
    // so at once (the pool would keep retrying until its timeout).
    let first = tokio::time::timeout(CONNECT_TIMEOUT, options.connect())
        .await
        .map_err(|_| {
            let silent = std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer within 15 s");
            open_error(config, &sqlx::Error::Io(silent))
        })?
        .map_err(|error| open_error(config, &error))?;
    let _ = first.close().await;
    let setup = config.dialect.session_setup();
    Ok(AnyPoolOptions::new()
        .max_connections(config.pool_size)
        .acquire_timeout(CONNECT_TIMEOUT)
        .after_connect(
            move |connection, _| -> BoxFuture<'_, Result<(), sqlx::Error>> {
                Box::pin(async move {
                    for statement in setup {
                        connection.execute(*statement).await?;
                    }
                    Ok(())
                })
            },
        )
        .connect_lazy_with(options))
}

/// The migrations our table still needs, by name — applied when `apply` is set.
async fn migrate(
    config: &SqlConfig,
    pool: &AnyPool,
    apply: bool,
) -> Result<Vec<&'static str>, sqlx::Error> {
    let dialect = config.dialect;
    let has_table: i64 = sqlx::query_scalar(dialect.has_migrations_table_sql())
        .fetch_one(pool)
        .await?;
    let applied: Vec<i64> = if has_table == 1 {
        sqlx::query_scalar("SELECT version FROM iclock_sync_migrations")
            .fetch_all(pool)
            .await?
    } else {
        Vec::new()
    };
    let pending: Vec<_> = dialect
        .migrations()
        .iter()
        .filter(|migration| !applied.contains(&migration.version))
        .collect();
    let names = pending.iter().map(|migration| migration.name).collect();
    if !apply || pending.is_empty() {
        return Ok(names);
    }
    pool.execute(dialect.migrations_table_sql()).await?;
    for migration in pending {
        let mut transaction = pool.begin().await?;
        for statement in statements(migration.sql) {
            transaction.execute(AssertSqlSafe(statement)).await?;
        }
        sqlx::query(dialect.record_migration_sql())
            .bind(migration.version)
            .bind(migration.name)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        tracing::info!(
            "sink {}: applied migration {} to {}",
            config.name,
            migration.name,
            config.url.redacted()
        );
    }
    Ok(names)
}

/// The statements of a migration file: split at `;` ending a line, comments dropped.
fn statements(sql: &str) -> Vec<String> {
    let without_comments: String = sql
        .lines()
        .map(|line| line.split("--").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(";\n")
        .map(|statement| statement.trim().trim_end_matches(';').trim().to_owned())
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// Checks a table of theirs: there, with the mapped columns, and a unique key over
/// the key columns.
async fn check_their_table(config: &SqlConfig, pool: &AnyPool) -> Result<(), SinkError> {
    let dialect = config.dialect;
    let table = config.table();
    let fail = |problem: String, fix: String| SinkError {
        sink: config.name.clone(),
        target: target(config),
        problem,
        fix,
        outage: false,
    };
    let (sql, binds) = dialect.columns_sql(table);
    let mut query = sqlx::query_scalar::<_, String>(AssertSqlSafe(sql));
    for bind in binds {
        query = query.bind(bind);
    }
    let existing = query
        .fetch_all(pool)
        .await
        .map_err(|error| open_error(config, &error))?;
    if existing.is_empty() {
        return Err(fail(
            format!("there is no table {table} (or the user may not see it)"),
            format!(
                "check table = \"{table}\" in [sink.{}] and the user's privileges; iclock-sync never creates a table of yours (remove table and [sink.{}.columns] to use our own table {OUR_TABLE})",
                dialect.kind(),
                dialect.kind()
            ),
        ));
    }
    let existing_lower: Vec<String> = existing
        .iter()
        .map(|column| column.to_lowercase())
        .collect();
    for (field, column) in config.columns() {
        if !existing_lower.contains(&column.to_lowercase()) {
            return Err(fail(
                format!("{table} has no column {column} (mapped from {field})"),
                format!(
                    "correct [sink.{}.columns] {field} = \"…\"; the table's columns are: {}",
                    dialect.kind(),
                    existing.join(", ")
                ),
            ));
        }
    }
    let keys = config.key_columns();
    let (sql, binds) = dialect.unique_keys_sql(table);
    let mut query = sqlx::query_as::<_, (String, String)>(AssertSqlSafe(sql));
    for bind in binds {
        query = query.bind(bind);
    }
    let index_columns = query
        .fetch_all(pool)
        .await
        .map_err(|error| open_error(config, &error))?;
    let mut indexes: HashMap<String, Vec<String>> = HashMap::new();
    for (index, column) in index_columns {
        indexes
            .entry(index)
            .or_default()
            .push(column.to_lowercase());
    }
    let covered = indexes.values().any(|columns| {
        columns
            .iter()
            .all(|column| keys.iter().any(|key| key.eq_ignore_ascii_case(column)))
    });
    if !covered {
        return Err(fail(
            format!(
                "no unique key on {table} covers {}, so the database could not refuse a punch written twice",
                keys.join(", ")
            ),
            format!(
                "add one (iclock-sync never alters your table), then start again:\n    {}",
                dialect.create_unique_index(table, &keys)
            ),
        ));
    }
    Ok(())
}

/// `iclock-sync db migrate NAME`: applies our table's migrations; the names applied.
pub async fn migrate_now(config: &SqlConfig) -> Result<Vec<&'static str>, SinkError> {
    if let Target::Theirs { table, .. } = &config.target {
        return Err(SinkError {
            sink: config.name.clone(),
            target: target(config),
            problem: format!("writes to your table {table}, which iclock-sync never changes"),
            fix: "migrations are only for our own table; nothing to do".into(),
            outage: false,
        });
    }
    let pool = connect(config).await?;
    let applied = migrate(config, &pool, true)
        .await
        .map_err(|error| open_error(config, &error));
    pool.close().await;
    applied
}

#[async_trait]
impl Sink for SqlSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn target(&self) -> String {
        target(&self.config)
    }

    async fn identity(&self) -> Option<String> {
        if !matches!(self.config.target, Target::Ours(_)) {
            return None;
        }
        let dialect = self.config.dialect;
        let sql = format!(
            "SELECT {} FROM iclock_sync_store WHERE {} = 'identity'",
            dialect.quote("value"),
            dialect.quote("key")
        );
        sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten()
    }

    /// Two batches side by side keep the database busy while the ledger records the
    /// answers of the one before; more gained nothing measurable in
    /// `scripts/bench-databases` and cost 6 MB each.
    fn batches_at_once(&self) -> usize {
        usize::try_from(self.config.pool_size).map_or(1, |pool| pool.min(2))
    }

    async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome> {
        let rows = Rows {
            punches: batch,
            delivered_at: Utc::now(),
        };
        let mut outcomes: Vec<Option<SinkOutcome>> = vec![None; batch.len()];
        // A key twice in one batch (their table keyed on PIN, time and serial, two
        // states in one second): the first is written, the next ones are there.
        let mut seen = HashMap::new();
        let mut unique = Vec::with_capacity(batch.len());
        for (position, punch) in batch.iter().enumerate() {
            if seen
                .insert(self.key(punch, rows.delivered_at), position)
                .is_some()
            {
                outcomes[position] = Some(SinkOutcome::AlreadyPresent);
            } else {
                unique.push(position);
            }
        }
        let mut failure = None;
        for chunk in unique.chunks(self.config.batch_size) {
            let answers = match &failure {
                Some(reason) => vec![SinkOutcome::Failed(String::clone(reason)); chunk.len()],
                None => match self.write_chunk(&rows, chunk).await {
                    Ok(answers) => answers,
                    Err(trouble) => {
                        let reason = self.failure(trouble);
                        tracing::warn!("{reason}");
                        failure = Some(reason.clone());
                        vec![SinkOutcome::Failed(reason); chunk.len()]
                    }
                },
            };
            for (position, answer) in chunk.iter().zip(answers) {
                outcomes[*position] = Some(answer);
            }
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| SinkOutcome::Failed("not written".into())))
            .collect()
    }

    async fn close(&self) {
        self.pool.close().await;
    }
}
