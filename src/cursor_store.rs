//! Per-device cursors, so that a cycle asks a source only for what is new.
//!
//! One JSON file (`cache/cursors.json`) maps a device name to whatever that source needs
//! to resume (for BioTime: an upload-time watermark and the recently seen transaction
//! ids). A cursor is advanced only after the punches behind it are acknowledged by every
//! sink, and written atomically with them.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::atomic_file;

pub const CURSOR_FILE_NAME: &str = "cursors.json";

#[derive(Debug, thiserror::Error)]
pub enum CursorStoreError {
    #[error(
        "the cursor file {path} is corrupt ({detail}) — delete it: the next run re-reads each device's full history and the dedup cache keeps out duplicates"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source} — check free disk space and permissions")]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CursorFile {
    version: u32,
    devices: BTreeMap<String, Value>,
}

#[derive(Debug)]
pub struct CursorStore {
    path: PathBuf,
    file: CursorFile,
    dirty: bool,
}

impl CursorStore {
    pub fn load(path: &Path) -> Result<CursorStore, CursorStoreError> {
        let file = match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|error| CursorStoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: error.to_string(),
                })?
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => CursorFile {
                version: 1,
                devices: BTreeMap::new(),
            },
            Err(source) => {
                return Err(CursorStoreError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(CursorStore {
            path: path.to_path_buf(),
            file,
            dirty: false,
        })
    }

    /// Every device's cursor.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.file
            .devices
            .iter()
            .map(|(device, cursor)| (device.as_str(), cursor))
    }

    pub fn get(&self, device: &str) -> Option<&Value> {
        self.file.devices.get(device)
    }

    pub fn set(&mut self, device: &str, cursor: Value) {
        if self.file.devices.get(device) != Some(&cursor) {
            self.file.devices.insert(device.to_owned(), cursor);
            self.dirty = true;
        }
    }

    pub fn save(&mut self) -> Result<(), CursorStoreError> {
        if !self.dirty {
            return Ok(());
        }
        let bytes = serde_json::to_vec_pretty(&self.file).unwrap_or_default();
        atomic_file::write(&self.path, &bytes).map_err(|source| CursorStoreError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.dirty = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_survive_a_reload_and_unchanged_cursors_are_not_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURSOR_FILE_NAME);
        let mut store = CursorStore::load(&path).unwrap();
        store.set(
            "Office",
            serde_json::json!({"max_upload_time": "2026-01-01 08:00:00"}),
        );
        store.save().unwrap();
        let reloaded = CursorStore::load(&path).unwrap();
        assert_eq!(
            reloaded.get("Office").unwrap()["max_upload_time"],
            "2026-01-01 08:00:00"
        );
        let mut again = reloaded;
        again.set(
            "Office",
            serde_json::json!({"max_upload_time": "2026-01-01 08:00:00"}),
        );
        fs::remove_file(&path).unwrap();
        again.save().unwrap();
        assert!(!path.exists(), "an unchanged store must not be rewritten");
    }

    #[test]
    fn a_corrupt_file_names_itself_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURSOR_FILE_NAME);
        fs::write(&path, "{not json").unwrap();
        let message = CursorStore::load(&path).unwrap_err().to_string();
        assert!(message.contains("cursors.json") && message.contains("delete it"));
    }
}
