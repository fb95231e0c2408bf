//! `[sync]`: where the tool keeps its files, which IDs it uses, how many devices it
//! reads at once.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::section::Section;
use crate::duration;
use crate::punch::IdScheme;

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub id_scheme: IdScheme,
    pub cache_dir: PathBuf,
    pub output_dir: PathBuf,
    /// Punches further than this in the device's future are quarantined.
    pub max_future_skew: Duration,
    /// How many devices are read at the same time.
    pub parallel_devices: usize,
    /// Audit files older than this are deleted; `None` keeps them for ever.
    pub audit_retention: Option<Duration>,
}

/// Half a year of audit files.
pub const DEFAULT_AUDIT_RETENTION: Duration = Duration::from_secs(183 * 86_400);

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        SyncSettings {
            id_scheme: IdScheme::Native,
            cache_dir: PathBuf::from("cache"),
            output_dir: PathBuf::from("output"),
            max_future_skew: Duration::from_secs(86_400),
            parallel_devices: 4,
            audit_retention: Some(DEFAULT_AUDIT_RETENTION),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    id_scheme: Option<IdScheme>,
    cache_dir: Option<PathBuf>,
    output_dir: Option<PathBuf>,
    max_future_skew: Option<String>,
    parallel_devices: Option<usize>,
    audit_retention: Option<String>,
}

/// Reads `[sync]` (absent: `None`); relative folders start from the file's folder.
pub fn parse(section: &Section, value: Option<toml::Value>) -> Result<SyncSettings, ConfigError> {
    let raw: RawSync = match value {
        Some(value) => section.read(section.table(value)?)?,
        None => RawSync::default(),
    };
    let defaults = SyncSettings::default();
    let max_future_skew = match raw.max_future_skew {
        Some(text) => duration::parse(&text).map_err(|problem| {
            section.error(
                Some("max_future_skew"),
                problem,
                "write a duration such as \"1d\" or \"2h\"",
            )
        })?,
        None => defaults.max_future_skew,
    };
    let parallel_devices = raw.parallel_devices.unwrap_or(defaults.parallel_devices);
    if parallel_devices == 0 {
        return Err(section.error(
            Some("parallel_devices"),
            "must be at least 1",
            "set parallel_devices = 4 (or remove the key)",
        ));
    }
    let audit_retention = match raw.audit_retention {
        None => defaults.audit_retention,
        Some(text) => retention(
            section,
            "audit_retention",
            &text,
            "write how long audit files are kept, at least a day, e.g. \"365d\", or \"forever\"",
        )?,
    };
    Ok(SyncSettings {
        id_scheme: raw.id_scheme.unwrap_or(defaults.id_scheme),
        cache_dir: section.path(&raw.cache_dir.unwrap_or(defaults.cache_dir)),
        output_dir: section.path(&raw.output_dir.unwrap_or(defaults.output_dir)),
        max_future_skew,
        parallel_devices,
        audit_retention,
    })
}

/// A retention key's value: how long something is kept, at least a day, or
/// `"forever"` (`None`). `fix` tells the user what to write.
pub(super) fn retention(
    section: &Section,
    key: &str,
    text: &str,
    fix: &str,
) -> Result<Option<Duration>, ConfigError> {
    let text = text.trim();
    if text == "forever" {
        return Ok(None);
    }
    duration::parse(text)
        .ok()
        .filter(|keep| *keep >= Duration::from_secs(86_400))
        .map(Some)
        .ok_or_else(|| section.error(Some(key), format!("'{text}' is not a retention"), fix))
}
