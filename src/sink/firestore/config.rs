//! `[sink.firestore]`: Google Firestore (Firebase), as the Python iclock-sync wrote it or
//! in the native schema.

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;

use super::FirestoreSink;
use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::duration;
use crate::sink::{Sink, SinkConfig, SinkContext, SinkError, SinkKind};
use crate::source::DeviceConfig;

/// `[sink.firestore]` in the configuration's table of kinds.
pub const KIND: SinkKind = SinkKind {
    name: "firestore",
    parse,
};

fn parse(
    value: toml::Value,
    section: &Section,
    _devices: &[DeviceConfig],
) -> Result<Arc<dyn SinkConfig>, ConfigError> {
    let mut config: FirestoreConfig = section.read(section.table(value)?)?;
    config.key_file = config.key_file.map(|path| section.path(&path));
    Ok(Arc::new(config))
}

#[async_trait]
impl SinkConfig for FirestoreConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    async fn open(&self, context: &SinkContext<'_>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(FirestoreSink::open(self, context).await?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// How punches are laid out as documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub enum Schema {
    /// Native IDs and every field under its real name.
    #[default]
    #[serde(rename = "native")]
    Native,
    /// Exactly the Python iclock-sync's documents, which the SchoolSync app reads.
    #[serde(rename = "schoolsync")]
    SchoolSync,
}

impl Schema {
    pub fn default_collection(self) -> &'static str {
        match self {
            Schema::Native => "attendancePunches",
            Schema::SchoolSync => "staffAttendanceLogs",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirestoreConfig {
    #[serde(default)]
    pub schema: Schema,
    /// Default: the key file's project, or the credentials'.
    pub project_id: Option<String>,
    /// The service-account JSON. Default: FIREBASE_KEY, FIREBASE_KEY_PATH,
    /// GOOGLE_APPLICATION_CREDENTIALS, config/firebase-key.json, then application-default
    /// credentials and the metadata server.
    pub key_file: Option<PathBuf>,
    /// Default: `attendancePunches` (native) or `staffAttendanceLogs` (schoolsync).
    pub collection: Option<String>,
    /// Default `(default)`.
    pub database: Option<String>,
    /// `host:port` of the Firestore emulator; also read from FIRESTORE_EMULATOR_HOST.
    pub emulator_host: Option<String>,
    /// The Firestore API's address when it is not Google's public one (a private or
    /// regional endpoint); credentials are used as with Google's.
    pub endpoint: Option<String>,
    /// BatchWrite requests (of up to 500 writes) in flight at once.
    pub concurrency: Option<usize>,
    /// How long transient failures are retried before the punches are left for the next cycle.
    #[serde(default, with = "duration::serde_text_option")]
    pub retry_for: Option<Duration>,
}

impl FirestoreConfig {
    pub fn collection(&self) -> &str {
        self.collection
            .as_deref()
            .unwrap_or(self.schema.default_collection())
    }

    pub fn database(&self) -> &str {
        self.database.as_deref().unwrap_or("(default)")
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(8).max(1)
    }

    pub fn retry_for(&self) -> Duration {
        self.retry_for.unwrap_or(Duration::from_secs(60))
    }
}
