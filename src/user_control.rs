//! Post-checkin user control: once a punch has become a checkin, switch the person on
//! (IN) or off (OUT) — their Frappe login, or their user record on the terminal that
//! recorded it. Off unless a sink asks for it.
//!
//! Switching people off is the kind of action that must never be a mystery, so every
//! switch is appended to `output/user_control.jsonl` with the state before it, and
//! `iclock-sync user-control undo` puts every account back as it was before iclock-sync
//! first switched it (see [`plan_undo`]).

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub const USER_CONTROL_FILE_NAME: &str = "user_control.jsonl";

/// Where a switch acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// The employee's linked Frappe User (`enabled`).
    FrappeUser,
    /// The user record on a ZK terminal (the disabled bit).
    Device,
}

/// A person to switch on or off on the device that recorded their punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSwitch {
    /// The `[[device]]` name.
    pub device: Arc<str>,
    /// The PIN.
    pub user_id: String,
    pub enable: bool,
    /// e.g. "OUT at 2026-03-02 17:00:00 (checkin EMP-CKIN-11-2026-000004)".
    pub because: String,
}

/// What a round of switches did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SwitchTally {
    pub switched_on: u32,
    pub switched_off: u32,
    /// PINs the terminal has no user for.
    pub unknown: Vec<String>,
}

impl SwitchTally {
    pub fn describe(&self) -> String {
        let mut text = format!(
            "user control: {} user(s) switched on, {} off",
            self.switched_on, self.switched_off
        );
        if !self.unknown.is_empty() {
            text.push_str(&format!(
                "; no user on the terminal for PIN(s) {}",
                self.unknown.join(", ")
            ));
        }
        text
    }
}

/// One switch as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    /// When (RFC 3339, this computer's zone).
    pub at: String,
    pub target: Target,
    /// The Frappe site, or the `[[device]]` name.
    pub place: String,
    /// The Frappe User, or the PIN on the terminal.
    pub account: String,
    pub enabled: bool,
    pub was_enabled: bool,
    pub because: String,
    /// Written by `user-control undo`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub undo: bool,
}

impl SwitchRecord {
    pub fn new(
        target: Target,
        place: &str,
        account: &str,
        enabled: bool,
        was_enabled: bool,
        because: &str,
    ) -> SwitchRecord {
        SwitchRecord {
            at: chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            target,
            place: place.to_owned(),
            account: account.to_owned(),
            enabled,
            was_enabled,
            because: because.to_owned(),
            undo: false,
        }
    }
}

/// The append-only log of switches.
#[derive(Debug, Clone)]
pub struct SwitchLog {
    path: PathBuf,
}

impl SwitchLog {
    pub fn in_dir(output_dir: &Path) -> SwitchLog {
        SwitchLog {
            path: output_dir.join(USER_CONTROL_FILE_NAME),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `record` and makes it durable before the switch is reported as done.
    pub fn append(&self, record: &SwitchRecord) -> std::io::Result<()> {
        tracing::info!(
            target = ?record.target,
            place = %record.place,
            account = %record.account,
            "user control: {} ({})",
            if record.enabled { "switched on" } else { "switched off" },
            record.because
        );
        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut line = serde_json::to_string(record).map_err(std::io::Error::other)?;
        line.push('\n');
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        file.write_all(line.as_bytes())?;
        file.sync_data()
    }

    /// Every record, oldest first; a missing file is an empty log. Lines that cannot
    /// be read are skipped with a warning.
    pub fn read(&self) -> std::io::Result<Vec<SwitchRecord>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        Ok(text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .filter_map(|(index, line)| match serde_json::from_str(line) {
                Ok(record) => Some(record),
                Err(error) => {
                    tracing::warn!(
                        "{} line {}: not a switch record ({error}); skipped",
                        self.path.display(),
                        index + 1
                    );
                    None
                }
            })
            .collect())
    }
}

/// An account to put back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restore {
    pub target: Target,
    pub place: String,
    pub account: String,
    /// The state before iclock-sync first switched it.
    pub enabled: bool,
}

/// What `undo` does: for every account whose latest recorded state differs from the
/// state it had before the first switch since the last undo, restore that state.
pub fn plan_undo(records: &[SwitchRecord]) -> Vec<Restore> {
    // (first state since the last undo, latest state) per account.
    let mut accounts: BTreeMap<(Target, &str, &str), (Option<bool>, bool)> = BTreeMap::new();
    for record in records {
        let key = (
            record.target,
            record.place.as_str(),
            record.account.as_str(),
        );
        let entry = accounts.entry(key).or_insert((None, record.enabled));
        if record.undo {
            *entry = (None, record.enabled);
        } else {
            entry.0.get_or_insert(record.was_enabled);
            entry.1 = record.enabled;
        }
    }
    accounts
        .into_iter()
        .filter_map(|((target, place, account), (original, latest))| {
            let original = original?;
            (original != latest).then(|| Restore {
                target,
                place: place.to_owned(),
                account: account.to_owned(),
                enabled: original,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(account: &str, was: bool, now: bool, undo: bool) -> SwitchRecord {
        SwitchRecord {
            undo,
            ..SwitchRecord::new(Target::FrappeUser, "site", account, now, was, "test")
        }
    }

    #[test]
    fn undo_restores_the_state_before_the_first_switch() {
        let records = [
            record("alice", true, false, false),
            record("alice", false, true, false),
            record("alice", true, false, false),
            record("bob", false, true, false),
            record("carol", true, false, false),
            record("carol", false, true, false),
        ];
        let plan = plan_undo(&records);
        let restored: Vec<(&str, bool)> = plan
            .iter()
            .map(|restore| (restore.account.as_str(), restore.enabled))
            .collect();
        assert_eq!(
            restored,
            vec![("alice", true), ("bob", false)],
            "carol is back where she started"
        );
    }

    #[test]
    fn an_undo_starts_the_history_afresh() {
        let records = [
            record("alice", true, false, false),
            record("alice", false, true, true),
            record("alice", true, false, false),
        ];
        assert!(plan_undo(&records)[0].enabled);
        let undone = [
            record("alice", true, false, false),
            record("alice", false, true, true),
        ];
        assert!(plan_undo(&undone).is_empty());
    }

    #[test]
    fn the_log_reads_back_what_was_appended() {
        let dir = tempfile::tempdir().unwrap();
        let log = SwitchLog::in_dir(dir.path());
        assert!(log.read().unwrap().is_empty());
        let first = record("alice", true, false, false);
        log.append(&first).unwrap();
        std::fs::write(
            log.path(),
            format!("{}not json\n", std::fs::read_to_string(log.path()).unwrap()),
        )
        .unwrap();
        log.append(&record("bob", false, true, true)).unwrap();
        let read = log.read().unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0], first);
        assert!(read[1].undo);
    }
}
