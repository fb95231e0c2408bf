//! `[ledger]`: what a sink new to an existing setup is offered, and how long delivered
//! punches are kept.

use std::time::Duration;

use serde::Deserialize;

use super::error::ConfigError;
use super::section::Section;
use crate::duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerSettings {
    /// A sink new to the ledger is offered the punches read in this window before it;
    /// `None`: none (it gets only what is read from now on).
    pub backfill: Option<Duration>,
    /// Punches every sink has settled are deleted from the ledger after this long;
    /// `None` keeps them for ever.
    pub retain: Option<Duration>,
}

/// Thirty days: a month of punches for a sink added to a running setup.
pub const DEFAULT_BACKFILL: Duration = Duration::from_secs(30 * 86_400);

impl Default for LedgerSettings {
    fn default() -> LedgerSettings {
        LedgerSettings {
            backfill: Some(DEFAULT_BACKFILL),
            retain: None,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLedger {
    backfill: Option<String>,
    retain: Option<String>,
}

/// Reads `[ledger]` (absent: the defaults).
pub fn parse(section: &Section, value: Option<toml::Value>) -> Result<LedgerSettings, ConfigError> {
    let raw: RawLedger = match value {
        Some(value) => section.read(section.table(value)?)?,
        None => RawLedger::default(),
    };
    let defaults = LedgerSettings::default();
    let backfill = match raw.backfill.as_deref().map(str::trim) {
        None => defaults.backfill,
        Some("none" | "0") => None,
        Some(text) => Some(duration::parse(text).map_err(|problem| {
            section.error(
                Some("backfill"),
                problem,
                "write how far back a new sink is filled, e.g. \"30d\", or \"none\"",
            )
        })?),
    };
    let retain = match raw.retain {
        None => None,
        Some(text) => super::sync::retention(
            section,
            "retain",
            &text,
            "write how long delivered punches stay in the ledger, at least a day, e.g. \"400d\", or \"forever\"",
        )?,
    };
    Ok(LedgerSettings { backfill, retain })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::section::Document;

    fn read(text: &str) -> Result<LedgerSettings, ConfigError> {
        let document = Document::new("iclock-sync.toml", text, std::path::Path::new("."));
        let mut table: toml::Table = toml::from_str(text).unwrap();
        parse(
            &document.section("[ledger]", 0, "[ledger]"),
            table.remove("ledger"),
        )
    }

    #[test]
    fn defaults_backfill_a_month_and_keep_everything() {
        assert_eq!(read("").unwrap(), LedgerSettings::default());
        let settings = read("[ledger]\nbackfill = \"none\"\nretain = \"400d\"\n").unwrap();
        assert_eq!(settings.backfill, None);
        assert_eq!(settings.retain, Some(Duration::from_secs(400 * 86_400)));
    }

    #[test]
    fn a_bad_retention_names_the_key_and_the_fix() {
        let error = read("[ledger]\nretain = \"5m\"\n").unwrap_err().to_string();
        assert!(error.contains("retain"), "{error}");
        assert!(error.contains("400d"), "{error}");
        let error = read("[ledger]\nbackfil = \"5d\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("backfill"), "{error}");
    }
}
