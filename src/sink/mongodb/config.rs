//! `[sink.mongodb]` (or `[[sink.mongodb]]` for several): where the database is and
//! which collection the punches go to.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::MongoSink;
use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::sink::database_url::DatabaseUrl;
use crate::sink::{Sink, SinkConfig, SinkContext, SinkError, SinkKind};
use crate::source::DeviceConfig;

/// `[sink.mongodb]` in the configuration's table of kinds.
pub const KIND: SinkKind = SinkKind {
    name: "mongodb",
    parse,
};

pub const URL_EXAMPLE: &str =
    "url = \"mongodb://USER:${MONGO_PASSWORD}@HOST:27017/attendance?tls=true\"";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Keys {
    name: Option<String>,
    url: String,
    database: Option<String>,
    #[serde(default = "default_collection")]
    collection: String,
    pool_size: Option<u32>,
    batch_size: Option<usize>,
}

fn default_collection() -> String {
    "punches".to_owned()
}

#[derive(Debug, Clone)]
pub struct MongoConfig {
    pub name: String,
    pub url: DatabaseUrl,
    pub database: String,
    pub collection: String,
    pub pool_size: u32,
    /// Documents per `insert_many`.
    pub batch_size: usize,
}

fn parse(
    value: toml::Value,
    section: &Section,
    _devices: &[DeviceConfig],
) -> Result<Arc<dyn SinkConfig>, ConfigError> {
    let keys: Keys = section.read(section.table(value)?)?;
    let url = DatabaseUrl::parse(&keys.url, &["mongodb", "mongodb+srv"]).map_err(|problem| {
        section.error(Some("url"), problem, format!("write it as {URL_EXAMPLE}"))
    })?;
    let Some(database) = keys.database.or_else(|| url.database()) else {
        return Err(section.error(
            Some("database"),
            "is not set, and the url names no database",
            "add database = \"attendance\", or end the url's path with it (…:27017/attendance)",
        ));
    };
    let name = keys.name.unwrap_or_else(|| KIND.name.to_owned());
    if name.trim().is_empty() || name.contains(char::is_whitespace) {
        return Err(section.error(
            Some("name"),
            "is empty or holds spaces",
            "use a short word such as \"attendance\"",
        ));
    }
    let pool_size = keys.pool_size.unwrap_or(4);
    if !(1..=64).contains(&pool_size) {
        return Err(section.error(
            Some("pool_size"),
            format!("is {pool_size}"),
            "use 1 to 64 connections (4 is plenty for one iclock-sync)",
        ));
    }
    let batch_size = keys.batch_size.unwrap_or(1000);
    if !(1..=10_000).contains(&batch_size) {
        return Err(section.error(
            Some("batch_size"),
            format!("is {batch_size}"),
            "use 1 to 10000 documents per insert (default 1000)",
        ));
    }
    if keys.collection.is_empty() || keys.collection.starts_with("system.") {
        return Err(section.error(
            Some("collection"),
            format!("\"{}\" cannot hold punches", keys.collection),
            "use a plain name such as \"punches\"",
        ));
    }
    Ok(Arc::new(MongoConfig {
        name,
        url,
        database,
        collection: keys.collection,
        pool_size,
        batch_size,
    }))
}

#[async_trait]
impl SinkConfig for MongoConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn name(&self) -> &str {
        &self.name
    }

    async fn open(&self, _context: &SinkContext<'_>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(MongoSink::open(self.clone()).await?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
