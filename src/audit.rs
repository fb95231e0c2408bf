//! Audit files: `output/logs_YYYY-MM-DD_HH-MM-SS.json`, one per cycle that delivered
//! anything, listing the punches that cycle completed (every sink has them) and some
//! sink wrote (rather than found already there).
//!
//! The shape is the Python iclock-sync's (a JSON array, 4-space indent, of
//! `{doc_id, staffId, timestamp, status, workCode}` — `status` is the verify mode and
//! `workCode` the punch state, names kept for compatibility), so its tooling and our
//! `build-cache` read either tool's files. What the old shape cannot say (device, serial,
//! time zone, true UTC instant, source) sits under one extra key, `details`.
//!
//! The ledger's export writes them (`ledger::export`): streamed to a temp file, so memory
//! does not grow with a backlog, then sealed (fsynced) and renamed into place. An export
//! a crash interrupted is redone with the same file name, so each punch is audited once.
//! [`recover`] finishes what an earlier version of this tool left behind.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

use crate::atomic_file::TempFile;
use crate::cache::DedupCache;
use crate::punch::{Punch, PunchId, utc_text};

const FLUSH_AT: usize = 64 * 1024;

/// A value in an audit entry.
enum Scalar<'a> {
    Text(&'a str),
    Number(i32),
}

/// The audit file of one cycle.
pub struct AuditLog {
    path: PathBuf,
    open: Option<(TempFile, Vec<u8>)>,
    entries: usize,
}

/// A name for the audit file of a cycle that started at `started`, not yet taken in
/// `output_dir`.
pub fn file_name(output_dir: &Path, started: DateTime<Local>) -> String {
    let stamp = started.format("%Y-%m-%d_%H-%M-%S");
    let mut name = format!("logs_{stamp}.json");
    let mut suffix = 1;
    while output_dir.join(&name).exists() {
        name = format!("logs_{stamp}_{suffix}.json");
        suffix += 1;
    }
    name
}

impl AuditLog {
    /// Prepares the audit file `path`. Nothing touches the disk until the first punch
    /// is appended.
    pub fn new(path: PathBuf) -> AuditLog {
        AuditLog {
            path,
            open: None,
            entries: 0,
        }
    }

    pub fn append(&mut self, punch: &Punch) -> io::Result<()> {
        let (temp, buffer) = match &mut self.open {
            Some(open) => open,
            None => {
                let mut buffer = Vec::with_capacity(FLUSH_AT * 2);
                buffer.extend_from_slice(b"[\n");
                self.open
                    .insert((TempFile::create_beside(&self.path)?, buffer))
            }
        };
        if self.entries > 0 {
            buffer.extend_from_slice(b",\n");
        }
        write_entry(buffer, punch);
        self.entries += 1;
        if buffer.len() >= FLUSH_AT {
            temp.file.write_all(buffer)?;
            buffer.clear();
        }
        Ok(())
    }

    /// Closes the array and makes the temp file durable; `None` when nothing was
    /// delivered. Publish it once the dedup cache is saved.
    pub fn seal(self) -> io::Result<Option<SealedAudit>> {
        let Some((mut temp, mut buffer)) = self.open else {
            return Ok(None);
        };
        buffer.extend_from_slice(b"\n]");
        temp.file.write_all(&buffer)?;
        temp.file.sync_all()?;
        Ok(Some(SealedAudit {
            temp,
            path: self.path,
            entries: self.entries,
        }))
    }
}

/// A complete audit file not yet in place.
pub struct SealedAudit {
    temp: TempFile,
    path: PathBuf,
    entries: usize,
}

impl SealedAudit {
    /// Renames the file into place; returns its path and number of entries.
    pub fn publish(self) -> io::Result<(PathBuf, usize)> {
        self.temp.commit()?;
        Ok((self.path, self.entries))
    }
}

/// Finishes what a crash interrupted (see the module docs): publishes each sealed audit
/// temp file in `output_dir` whose IDs are all in `cache`, and removes the others.
/// Returns the files published. Call while holding the instance lock.
pub fn recover(output_dir: &Path, cache: &DedupCache) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(output_dir) else {
        return Vec::new();
    };
    let mut published = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(final_name) = audit_name_of_temp(&name) else {
            continue;
        };
        let temp = entry.path();
        let all_cached = fs::read(&temp)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Vec<serde_json::Value>>(&bytes).ok())
            .is_some_and(|rows| {
                rows.iter().all(|row| {
                    row.get("doc_id")
                        .and_then(serde_json::Value::as_str)
                        .is_some_and(|id| cache.contains(&PunchId::from_stored(id.to_owned())))
                })
            });
        let target = output_dir.join(final_name);
        if all_cached && !target.exists() && fs::rename(&temp, &target).is_ok() {
            tracing::info!(
                "completed the audit file {} left by an interrupted run",
                target.display()
            );
            published.push(target);
        } else {
            let _ = fs::remove_file(&temp);
        }
    }
    published
}

/// `.logs_2026-01-01_08-00-00.json.1234.tmp` → `logs_2026-01-01_08-00-00.json`.
fn audit_name_of_temp(name: &str) -> Option<&str> {
    let inner = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let (final_name, pid) = inner.rsplit_once('.')?;
    (final_name.starts_with("logs_")
        && final_name.ends_with(".json")
        && pid.chars().all(|c| c.is_ascii_digit()))
    .then_some(final_name)
}

/// Writes one entry laid out as Python's `json.dump(..., indent=4)` lays out a list
/// element (by hand: this runs once per delivered punch).
fn write_entry(out: &mut Vec<u8>, punch: &Punch) {
    let local_time = punch.local_time_text();
    let utc = utc_text(punch.utc());
    let python_shape = [
        ("doc_id", Scalar::Text(punch.id.as_str())),
        ("staffId", Scalar::Text(&punch.user_id)),
        ("timestamp", Scalar::Text(&local_time)),
        ("status", Scalar::Number(punch.verify_mode)),
        ("workCode", Scalar::Number(punch.state)),
    ];
    let details = [
        ("device", Scalar::Text(&punch.device.name)),
        ("serial", Scalar::Text(&punch.serial)),
        ("timezone", Scalar::Text(punch.device.timezone.name())),
        ("utc", Scalar::Text(&utc)),
        ("work_code", Scalar::Text(&punch.work_code)),
        ("source", Scalar::Text(punch.source.as_str())),
        ("source_key", Scalar::Text(&punch.source_key)),
    ];
    out.extend_from_slice(b"    {\n");
    write_fields(out, b"        ", &python_shape);
    out.extend_from_slice(b",\n        \"details\": {\n");
    write_fields(out, b"            ", &details);
    out.extend_from_slice(b"\n        }\n    }");
}

fn write_fields(out: &mut Vec<u8>, indent: &[u8], fields: &[(&str, Scalar<'_>)]) {
    for (index, (key, value)) in fields.iter().enumerate() {
        if index > 0 {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(indent);
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\": ");
        match value {
            // serde_json escapes exactly what JSON requires.
            Scalar::Text(text) => {
                let _ = serde_json::to_writer(&mut *out, text);
            }
            Scalar::Number(number) => out.extend_from_slice(number.to_string().as_bytes()),
        }
    }
}

/// `logs_*.json` in `dir`, oldest name first.
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy())
                .is_some_and(|name| name.starts_with("logs_") && name.ends_with(".json"))
        })
        .collect();
    files.sort();
    files
}

/// The `doc_id`s of an audit file (either tool's); entries without one are ignored,
/// as the Python script did.
pub fn ids_in(file: &Path) -> Result<Vec<String>, String> {
    let bytes = fs::read(file).map_err(|error| error.to_string())?;
    let entries: Vec<serde_json::Value> =
        serde_json::from_slice(&bytes).map_err(|error| format!("not a JSON array: {error}"))?;
    Ok(entries
        .iter()
        .filter_map(|entry| entry.get("doc_id").and_then(serde_json::Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Deletes the audit files in `output_dir` (either tool's) whose cycle began longer
/// than `keep` before `now`; returns those deleted. Files whose name has no date are
/// left alone.
pub fn prune(output_dir: &Path, keep: std::time::Duration, now: DateTime<Local>) -> Vec<PathBuf> {
    let Ok(keep) = chrono::Duration::from_std(keep) else {
        return Vec::new();
    };
    let oldest = now.naive_local() - keep;
    files_in(output_dir)
        .into_iter()
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_prefix("logs_"))
                .and_then(|rest| rest.get(..19))
                .and_then(|stamp| {
                    chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d_%H-%M-%S").ok()
                })
                .is_some_and(|began| began < oldest)
        })
        .filter(|path| fs::remove_file(path).is_ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::punch::{DeviceLabel, PunchId, SourceKind};
    use chrono::{NaiveDateTime, TimeZone};
    use std::sync::Arc;

    fn punch(user: &str, time: &str) -> Punch {
        let local_time = NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").unwrap();
        Punch {
            id: PunchId::legacy_md5(user, local_time),
            device: Arc::new(DeviceLabel {
                name: "Office".into(),
                timezone: "Indian/Maldives".parse().unwrap(),
            }),
            serial: "SN1".into(),
            terminal: "".into(),
            user_id: user.into(),
            local_time,
            state: 0,
            verify_mode: 1,
            work_code: "0".into(),
            source: SourceKind::Biotime,
            source_key: "biotime:x#1".into(),
            received_at: None,
        }
    }

    #[test]
    fn audit_files_past_their_retention_are_deleted_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "logs_2026-01-01_08-00-00.json",
            "logs_2026-06-30_08-00-00_1.json",
            "logs_2026-12-01_08-00-00.json",
            "logs_undated.json",
            "quarantine.jsonl",
        ] {
            std::fs::write(dir.path().join(name), "[]").unwrap();
        }
        let now = chrono::Local
            .with_ymd_and_hms(2026, 12, 4, 12, 0, 0)
            .unwrap();
        let deleted = prune(
            dir.path(),
            std::time::Duration::from_secs(183 * 86_400),
            now,
        );
        let names: Vec<String> = deleted
            .iter()
            .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["logs_2026-01-01_08-00-00.json"]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 4);
    }

    #[test]
    fn the_file_has_the_python_shape_and_parses_back() {
        let dir = tempfile::tempdir().unwrap();
        let started = Local::now();
        let mut audit = AuditLog::new(dir.path().join(file_name(dir.path(), started)));
        audit.append(&punch("1", "2022-11-13 16:34:51")).unwrap();
        audit.append(&punch("2", "2022-11-13 16:35:00")).unwrap();
        let (path, count) = audit.seal().unwrap().unwrap().publish().unwrap();
        assert_eq!(count, 2);
        assert!(
            path.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("logs_{}", started.format("%Y-%m-%d_%H-%M-%S")))
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(
            "[\n    {\n        \"doc_id\": \"c45d4288f29e9feb6751b7973c1625b7\",\n        \"staffId\": \"1\",\n        \"timestamp\": \"2022-11-13 16:34:51\",\n        \"status\": 1,\n        \"workCode\": 0,\n        \"details\": {\n"
        ), "{text}");
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[1]["staffId"], "2");
        assert_eq!(parsed[0]["details"]["utc"], "2022-11-13T11:34:51Z");
    }

    #[test]
    fn a_sealed_file_left_by_a_crash_is_published_only_if_the_cache_was_saved() {
        let dir = tempfile::tempdir().unwrap();
        let sealed = |dir: &Path| {
            let mut audit = AuditLog::new(dir.join(file_name(dir, Local::now())));
            audit.append(&punch("1", "2022-11-13 16:34:51")).unwrap();
            let sealed = audit.seal().unwrap().unwrap();
            // The process dies here: the temp file outlives it.
            std::mem::forget(sealed);
        };
        let cache_path = dir.path().join("cache.json");
        sealed(dir.path());
        let empty = DedupCache::load(&cache_path).unwrap();
        assert!(recover(dir.path(), &empty).is_empty());
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "discarded"
        );

        sealed(dir.path());
        let mut saved = DedupCache::load(&cache_path).unwrap();
        saved.insert(PunchId::legacy_md5(
            "1",
            punch("1", "2022-11-13 16:34:51").local_time,
        ));
        let published = recover(dir.path(), &saved);
        assert_eq!(published.len(), 1);
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&std::fs::read(&published[0]).unwrap()).unwrap();
        assert_eq!(rows[0]["doc_id"], "c45d4288f29e9feb6751b7973c1625b7");
    }

    #[test]
    fn nothing_delivered_means_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let audit = AuditLog::new(dir.path().join(file_name(dir.path(), Local::now())));
        assert!(audit.seal().unwrap().is_none());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
