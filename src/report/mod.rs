//! What a cycle did, per device and per sink: printed for people (see [`text`]) or as
//! JSON for scripts (`--json`), and turned into the exit code.

pub mod text;

use serde::Serialize;

use crate::exit::Exit;
use crate::source::{SourceError, SourceErrorKind};

#[derive(Debug, Clone, Serialize)]
pub struct ReportedError {
    /// `configuration`, `credentials`, `unreachable` or `protocol`.
    pub kind: &'static str,
    pub message: String,
}

impl ReportedError {
    /// A person must change the configuration (exit code 2); retrying will not help.
    pub fn needs_a_person(&self) -> bool {
        matches!(self.kind, "configuration" | "credentials")
    }
}

impl From<&SourceError> for ReportedError {
    fn from(error: &SourceError) -> ReportedError {
        ReportedError {
            kind: match error.kind {
                SourceErrorKind::Configuration => "configuration",
                SourceErrorKind::Credentials => "credentials",
                SourceErrorKind::Unreachable => "unreachable",
                SourceErrorKind::Protocol => "protocol",
            },
            message: error.message.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceReport {
    pub name: String,
    pub kind: String,
    pub location: String,
    /// Records the source returned this cycle.
    pub fetched: u64,
    /// Punches new to the ledger (queued for the sinks, or listed by a dry run).
    pub new: u64,
    /// Punches the ledger (or this read) already had, or that an earlier run's JSON
    /// cache lists as delivered.
    pub already: u64,
    /// Records refused as implausible or undecodable.
    pub quarantined: u64,
    /// Of those, how many were reported for the first time.
    pub newly_quarantined: u64,
    /// Of its punches drained this cycle (new or waiting from before): written by at
    /// least one sink now.
    pub delivered: u64,
    /// Drained and found already there by every sink that took them (e.g. after the
    /// ledger was lost, or written by another path).
    pub already_in_sinks: u64,
    /// Drained and refused for good by some sink (including unmapped PINs).
    pub rejected: u64,
    /// Its punches some sink has not taken yet, after this cycle; they wait in the
    /// ledger and are retried.
    pub not_delivered: u64,
    pub interrupted: bool,
    pub error: Option<ReportedError>,
    /// What the device did after the cycle was recorded (e.g. its log was cleared).
    pub note: Option<String>,
}

impl DeviceReport {
    pub fn new(name: &str, kind: &str, location: String) -> DeviceReport {
        DeviceReport {
            name: name.to_owned(),
            kind: kind.to_owned(),
            location,
            ..DeviceReport::default()
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkReport {
    pub name: String,
    pub target: String,
    pub delivered: u64,
    pub already: u64,
    /// Not sent because the configuration says this sink does not want them.
    pub skipped: u64,
    pub rejected: u64,
    /// Refused because the destination knows nobody with the PIN.
    pub unmapped: u64,
    /// Those PINs, each once, sorted.
    pub unmapped_users: Vec<String>,
    pub failed: u64,
    pub last_failure: Option<String>,
    /// Punches waiting for it in the ledger after this cycle.
    pub pending: u64,
    /// When the next of them that failed is tried again.
    pub next_retry: Option<String>,
    /// Why it could not be opened this cycle (it is tried again each cycle).
    pub down: Option<String>,
    /// What the sink did besides delivering (a watermark set, users switched).
    pub notes: Vec<String>,
}

/// One line of a dry run's "would upload" list.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewRow {
    pub id: String,
    pub device: String,
    pub user_id: String,
    pub local_time: String,
    pub state: i32,
    pub verify_mode: i32,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleReport {
    pub started_at: String,
    pub duration_ms: u64,
    pub dry_run: bool,
    pub interrupted: bool,
    /// The ledger recorded the cycle; when not, what it read and delivered is read and
    /// sent again next cycle.
    pub recorded: bool,
    pub devices: Vec<DeviceReport>,
    pub sinks: Vec<SinkReport>,
    /// The audit file written this cycle, and how many punches it lists.
    pub audit_file: Option<String>,
    pub audit_entries: usize,
    /// The ledger, the tool's own state.
    pub ledger_file: String,
    /// The JSON cache of delivered IDs, kept in the Python tool's format.
    pub cache_file: String,
    pub cache_size: usize,
    pub quarantine_file: String,
    /// Problems that are not one device's or one sink's (e.g. a file that could not be written).
    pub problems: Vec<String>,
    /// Dry runs: how many punches would be uploaded, and the first of them.
    pub would_upload: u64,
    pub preview: Vec<PreviewRow>,
    pub exit_code: u8,
}

impl CycleReport {
    pub fn exit(&self) -> Exit {
        let mut exit = Exit::Success;
        for device in &self.devices {
            if let Some(error) = &device.error {
                exit = exit.max(if error.needs_a_person() {
                    Exit::Configuration
                } else {
                    Exit::Incomplete
                });
            }
            if device.not_delivered > 0 || device.rejected > 0 {
                exit = exit.max(Exit::Incomplete);
            }
        }
        for sink in &self.sinks {
            if sink.pending > 0 || sink.down.is_some() {
                exit = exit.max(Exit::Incomplete);
            }
        }
        if !self.problems.is_empty() {
            exit = exit.max(Exit::Incomplete);
        }
        exit
    }

    pub fn delivered(&self) -> u64 {
        self.devices.iter().map(|device| device.delivered).sum()
    }

    pub fn already_in_sinks(&self) -> u64 {
        self.devices
            .iter()
            .map(|device| device.already_in_sinks)
            .sum()
    }

    pub fn quarantined(&self) -> u64 {
        self.devices.iter().map(|device| device.quarantined).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(error: Option<&'static str>, not_delivered: u64) -> DeviceReport {
        DeviceReport {
            not_delivered,
            error: error.map(|kind| ReportedError {
                kind,
                message: "x".into(),
            }),
            ..DeviceReport::default()
        }
    }

    #[test]
    fn the_exit_code_reflects_the_worst_outcome() {
        let mut report = CycleReport::default();
        assert_eq!(report.exit(), Exit::Success);
        report.devices.push(device(None, 1));
        assert_eq!(report.exit(), Exit::Incomplete);
        report.devices.push(device(Some("unreachable"), 0));
        assert_eq!(report.exit(), Exit::Incomplete);
        report.devices.push(device(Some("configuration"), 0));
        assert_eq!(report.exit(), Exit::Configuration);
        assert_eq!(report.exit().code(), 2);
    }
}
