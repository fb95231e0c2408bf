//! The quarantine file: records we refuse to upload, each with the reason.
//!
//! Implausible or undecodable records (empty PIN, 2025-02-30, a year before 2000, a
//! time far in the future) must never reach a sink and never block the good records
//! beside them. They are appended to `output/quarantine.jsonl`, one JSON object per
//! line, so a person can read why. The file also remembers what was already reported:
//! a source that re-reads its whole log (as a ZK terminal does) would otherwise warn
//! about the same bad record every cycle.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use chrono::Local;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub const QUARANTINE_FILE_NAME: &str = "quarantine.jsonl";

/// One quarantined record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QuarantineEntry {
    /// The source's own key for the record; what "already reported" is judged by.
    pub source_key: String,
    pub device: String,
    pub reason: String,
    /// The record as the source gave it, for a person to inspect.
    pub record: Value,
}

/// Keys, reasons and records kept in full up to these sizes; a hostile device's
/// megabytes are cut (the key keeps a hash of the whole, so it stays unique).
const KEY_LIMIT: usize = 200;
const REASON_LIMIT: usize = 1_000;
const RECORD_LIMIT: usize = 4_096;

impl QuarantineEntry {
    /// The entry cut to the limits a hostile device cannot blow up.
    pub fn bounded(self) -> QuarantineEntry {
        bounded_entry(&self).unwrap_or(self)
    }
}

/// `entry` cut to the limits, or `None` when it is within them.
fn bounded_entry(entry: &QuarantineEntry) -> Option<QuarantineEntry> {
    let record = entry.record.to_string();
    if entry.source_key.len() <= KEY_LIMIT
        && entry.reason.len() <= REASON_LIMIT
        && record.len() <= RECORD_LIMIT
    {
        return None;
    }
    let source_key = if entry.source_key.len() <= KEY_LIMIT {
        entry.source_key.clone()
    } else {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(entry.source_key.as_bytes());
        let hash: String = digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!(
            "{}…#{hash}",
            crate::device_text::excerpt(&entry.source_key, 100)
        )
    };
    let record = if record.len() <= RECORD_LIMIT {
        entry.record.clone()
    } else {
        Value::String(crate::device_text::excerpt(&record, RECORD_LIMIT))
    };
    Some(QuarantineEntry {
        source_key,
        device: entry.device.clone(),
        reason: crate::device_text::excerpt(&entry.reason, REASON_LIMIT),
        record,
    })
}

#[derive(Debug, Serialize)]
struct Line<'a> {
    quarantined_at: String,
    #[serde(flatten)]
    entry: &'a QuarantineEntry,
}

#[derive(Debug)]
pub struct Quarantine {
    path: PathBuf,
    known: HashSet<String>,
    file: Option<File>,
    writable: bool,
}

impl Quarantine {
    /// Opens the quarantine file and learns what it already holds. When `writable` is
    /// false (dry runs) nothing is ever written.
    pub fn open(path: &Path, writable: bool) -> io::Result<Quarantine> {
        let mut known = HashSet::new();
        match File::open(path) {
            Ok(file) => {
                for line in BufReader::new(file).lines() {
                    let line = line?;
                    // A torn last line (killed mid-write) is skipped, not fatal.
                    if let Ok(entry) = serde_json::from_str::<QuarantineEntry>(&line) {
                        known.insert(entry.source_key);
                    }
                }
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
        Ok(Quarantine {
            path: path.to_path_buf(),
            known,
            file: None,
            writable,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Records an entry; returns `true` if it had not been reported before.
    pub fn record(&mut self, entry: &QuarantineEntry) -> io::Result<bool> {
        let bounded;
        let entry = match bounded_entry(entry) {
            Some(smaller) => {
                bounded = smaller;
                &bounded
            }
            None => entry,
        };
        if self.known.contains(&entry.source_key) {
            return Ok(false);
        }
        if self.writable {
            let line = Line {
                quarantined_at: Local::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
                entry,
            };
            let mut text = serde_json::to_string(&line).map_err(io::Error::other)?;
            text.push('\n');
            self.append(text.as_bytes())?;
        }
        self.known.insert(entry.source_key.clone());
        Ok(true)
    }

    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                fs::create_dir_all(dir)?;
            }
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = Some(file);
        }
        match self.file.as_mut() {
            Some(file) => file.write_all(bytes),
            None => Ok(()),
        }
    }

    /// Makes what was recorded durable; called before cursors move past those records.
    pub fn sync(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str) -> QuarantineEntry {
        QuarantineEntry {
            source_key: key.into(),
            device: "Office".into(),
            reason: "empty user id (PIN)".into(),
            record: serde_json::json!({"emp_code": ""}),
        }
    }

    #[test]
    fn a_record_is_reported_once_even_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(QUARANTINE_FILE_NAME);
        let mut quarantine = Quarantine::open(&path, true).unwrap();
        assert!(quarantine.record(&entry("k1")).unwrap());
        assert!(!quarantine.record(&entry("k1")).unwrap());
        quarantine.sync().unwrap();
        drop(quarantine);
        let mut reopened = Quarantine::open(&path, true).unwrap();
        assert!(!reopened.record(&entry("k1")).unwrap());
        assert!(reopened.record(&entry("k2")).unwrap());
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("\"reason\":\"empty user id (PIN)\""));
    }

    #[test]
    fn a_read_only_quarantine_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(QUARANTINE_FILE_NAME);
        let mut quarantine = Quarantine::open(&path, false).unwrap();
        assert!(quarantine.record(&entry("k1")).unwrap());
        quarantine.sync().unwrap();
        assert!(!path.exists());
    }
}
