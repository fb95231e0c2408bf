//! `[sink.postgres]` and `[sink.mysql]` (also `[[sink.postgres]]` for several): where
//! the database is, and whether punches go to our table or to one of theirs.

use std::any::Any;
use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::SqlSink;
use super::dialect::Dialect;
use super::fields::Field;
use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::sink::database_url::DatabaseUrl;
use crate::sink::{Sink, SinkConfig, SinkContext, SinkError, SinkKind};
use crate::source::DeviceConfig;

/// `[sink.postgres]` in the configuration's table of kinds.
pub const POSTGRES: SinkKind = SinkKind {
    name: "postgres",
    parse: parse_postgres,
};

/// `[sink.mysql]` (MySQL 8 and MariaDB 10.6 or later).
pub const MYSQL: SinkKind = SinkKind {
    name: "mysql",
    parse: parse_mysql,
};

const DEFAULT_POOL_SIZE: u32 = 4;
/// As many as the ledger hands over at once: one transaction (one commit) each.
const DEFAULT_BATCH_SIZE: usize = 5000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    name: Option<String>,
    url: String,
    table: Option<String>,
    columns: Option<BTreeMap<String, String>>,
    #[serde(default = "yes")]
    migrate: bool,
    pool_size: Option<u32>,
    batch_size: Option<usize>,
}

fn yes() -> bool {
    true
}

/// A table name, optionally with its schema (PostgreSQL) or database (MySQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<String>,
    pub name: String,
}

impl std::fmt::Display for TableName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// Where the rows go.
#[derive(Debug, Clone)]
pub enum Target {
    /// Our table, created and upgraded by our migrations.
    Ours(TableName),
    /// A table of theirs, never altered: each mapped field with its column.
    Theirs {
        table: TableName,
        columns: Vec<(Field, String)>,
    },
}

#[derive(Debug, Clone)]
pub struct SqlConfig {
    pub dialect: Dialect,
    pub name: String,
    pub url: DatabaseUrl,
    pub target: Target,
    /// Whether opening may create or upgrade our table.
    pub migrate: bool,
    pub pool_size: u32,
    /// Rows per statement.
    pub batch_size: usize,
}

fn parse_postgres(
    value: toml::Value,
    section: &Section,
    _devices: &[DeviceConfig],
) -> Result<Arc<dyn SinkConfig>, ConfigError> {
    Ok(Arc::new(parse(Dialect::Postgres, value, section)?))
}

fn parse_mysql(
    value: toml::Value,
    section: &Section,
    _devices: &[DeviceConfig],
) -> Result<Arc<dyn SinkConfig>, ConfigError> {
    Ok(Arc::new(parse(Dialect::Mysql, value, section)?))
}

fn parse(
    dialect: Dialect,
    value: toml::Value,
    section: &Section,
) -> Result<SqlConfig, ConfigError> {
    let keys: Keys = section.read(section.table(value)?)?;
    let kind = dialect.kind();
    let url = DatabaseUrl::parse(&keys.url, dialect.url_schemes()).map_err(|problem| {
        section.error(
            Some("url"),
            problem,
            format!("write it as {}", dialect.url_example()),
        )
    })?;
    if dialect == Dialect::Postgres && url.user().is_none() {
        return Err(section.error(
            Some("url"),
            "names no user",
            format!("write the user into it, as in {}", dialect.url_example()),
        ));
    }
    if dialect == Dialect::Mysql && url.database().is_none() {
        return Err(section.error(
            Some("url"),
            "names no database",
            format!(
                "end it with the database's name, as in {}",
                dialect.url_example()
            ),
        ));
    }
    let name = keys.name.unwrap_or_else(|| kind.to_owned());
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(section.error(
            Some("name"),
            "is empty or holds spaces",
            "use a short word such as \"payroll\"",
        ));
    }
    let pool_size = keys.pool_size.unwrap_or(DEFAULT_POOL_SIZE);
    if !(1..=64).contains(&pool_size) {
        return Err(section.error(
            Some("pool_size"),
            format!("is {pool_size}"),
            "use 1 to 64 connections (4 is plenty for one iclock-sync)",
        ));
    }
    let batch_size = keys.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
    if !(1..=10_000).contains(&batch_size) {
        return Err(section.error(
            Some("batch_size"),
            format!("is {batch_size}"),
            "use 1 to 10000 rows per statement (default 5000)",
        ));
    }
    let target = match (keys.table, keys.columns) {
        (None, None) => Target::Ours(TableName {
            schema: None,
            name: super::OUR_TABLE.to_owned(),
        }),
        (None, Some(_)) => {
            return Err(section.error(
                Some("columns"),
                "maps columns but names no table",
                format!("add table = \"schema.table\" to [sink.{kind}] for the table the columns belong to, or remove [sink.{kind}.columns] to use our own table"),
            ));
        }
        (Some(table), columns) => {
            let table = table_name(&table).ok_or_else(|| {
                section.error(
                    Some("table"),
                    format!("\"{table}\" is not a table name"),
                    "write it as \"table\" or \"schema.table\" (letters, digits and _)",
                )
            })?;
            Target::Theirs {
                columns: mapping(columns.unwrap_or_default(), section, kind)?,
                table,
            }
        }
    };
    Ok(SqlConfig {
        dialect,
        name,
        url,
        target,
        migrate: keys.migrate,
        pool_size,
        batch_size,
    })
}

fn table_name(text: &str) -> Option<TableName> {
    let parts: Vec<&str> = text.split('.').collect();
    if !parts.iter().all(|part| identifier(part)) {
        return None;
    }
    match parts[..] {
        [name] => Some(TableName {
            schema: None,
            name: name.to_owned(),
        }),
        [schema, name] => Some(TableName {
            schema: Some(schema.to_owned()),
            name: name.to_owned(),
        }),
        _ => None,
    }
}

/// A plain identifier: no quoting games in the SQL we build.
fn identifier(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 63
        && !text.starts_with(|c: char| c.is_ascii_digit())
        && text.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `[sink.x.columns]`: our field = their column. The key columns must be mapped.
fn mapping(
    columns: BTreeMap<String, String>,
    section: &Section,
    kind: &str,
) -> Result<Vec<(Field, String)>, ConfigError> {
    let mut mapped = Vec::new();
    for (field, column) in columns {
        let Some(parsed) = Field::parse(&field) else {
            let known: Vec<&str> = Field::ALL.iter().map(|field| field.name()).collect();
            return Err(section.error(
                Some("columns"),
                format!("[sink.{kind}.columns] names an unknown field `{field}`"),
                format!("map any of: {}", known.join(", ")),
            ));
        };
        if !identifier(&column) {
            return Err(section.error(
                Some("columns"),
                format!("[sink.{kind}.columns] {field} = \"{column}\" is not a column name"),
                "use the column's plain name (letters, digits and _)",
            ));
        }
        mapped.push((parsed, column));
    }
    let has = |field: Field| mapped.iter().any(|(mapped, _)| *mapped == field);
    let has_time = has(Field::LocalTime) || has(Field::UtcTime);
    let told_apart = has(Field::UserId) && has_time && has(Field::DeviceSerial);
    if !has(Field::Id) && !told_apart {
        return Err(section.error(
            Some("columns"),
            format!("[sink.{kind}.columns] maps neither the punch ID nor the PIN, time and serial that tell punches apart"),
            format!(
                "map id = \"…\" to a column that holds our punch ID, or all of user_id, local_time (or utc_time) and device_serial, e.g. [sink.{kind}.columns] user_id = \"emp_code\", local_time = \"punch_time\", device_serial = \"terminal_sn\""
            ),
        ));
    }
    Ok(mapped)
}

impl SqlConfig {
    /// The key a row is told apart by: the ID column, or PIN, time and serial.
    pub fn key_columns(&self) -> Vec<String> {
        match &self.target {
            Target::Ours(_) => vec![Field::Id.name().to_owned()],
            Target::Theirs { columns, .. } => {
                let column = |field: Field| {
                    columns
                        .iter()
                        .find(|(mapped, _)| *mapped == field)
                        .map(|(_, column)| column.clone())
                };
                if let Some(id) = column(Field::Id) {
                    return vec![id];
                }
                [
                    column(Field::UserId),
                    column(Field::LocalTime).or_else(|| column(Field::UtcTime)),
                    column(Field::DeviceSerial),
                ]
                .into_iter()
                .flatten()
                .collect()
            }
        }
    }

    /// Each written field with its column.
    pub fn columns(&self) -> Vec<(Field, String)> {
        match &self.target {
            Target::Ours(_) => Field::ALL
                .iter()
                .map(|field| (*field, field.name().to_owned()))
                .collect(),
            Target::Theirs { columns, .. } => columns.clone(),
        }
    }

    pub fn table(&self) -> &TableName {
        match &self.target {
            Target::Ours(table) | Target::Theirs { table, .. } => table,
        }
    }
}

#[async_trait]
impl SinkConfig for SqlConfig {
    fn kind(&self) -> &'static str {
        self.dialect.kind()
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn open(&self, _context: &SinkContext<'_>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(SqlSink::open(self.clone()).await?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
