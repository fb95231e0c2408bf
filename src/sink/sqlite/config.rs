//! `[sink.sqlite]`: the embedded default store.

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteConfig {
    /// Database file; created with its tables on first use. Default
    /// `<output_dir>/attendance.db`.
    pub path: Option<PathBuf>,
}
