//! `[sink.sqlite]`: the embedded default store.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;

use super::{DEFAULT_FILE_NAME, SqliteSink};
use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::sink::{Sink, SinkConfig, SinkContext, SinkError, SinkKind};
use crate::source::DeviceConfig;

/// `[sink.sqlite]` in the configuration's table of kinds.
pub const KIND: SinkKind = SinkKind {
    name: "sqlite",
    parse,
};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database file; created with its tables on first use. Default
    /// `<output_dir>/attendance.db`.
    pub path: Option<PathBuf>,
}

fn parse(
    value: toml::Value,
    section: &Section,
    _devices: &[DeviceConfig],
) -> Result<Arc<dyn SinkConfig>, ConfigError> {
    let mut config: SqliteConfig = section.read(section.table(value)?)?;
    config.path = config.path.map(|path| section.path(&path));
    Ok(Arc::new(config))
}

#[async_trait]
impl SinkConfig for SqliteConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    async fn open(&self, context: &SinkContext<'_>) -> Result<Box<dyn Sink>, SinkError> {
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| context.output_dir.join(DEFAULT_FILE_NAME));
        Ok(Box::new(SqliteSink::open(&path).await?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
