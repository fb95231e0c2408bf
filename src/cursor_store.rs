//! The cursor file of earlier versions (`cache/cursors.json`): per device, what its
//! source needs to resume (for BioTime: an upload-time watermark and the recently seen
//! transaction ids). Cursors now live in the ledger; this file is read once, on the
//! first start with a ledger, and by a dry run before any ledger exists.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

pub const CURSOR_FILE_NAME: &str = "cursors.json";

#[derive(Debug, thiserror::Error)]
pub enum CursorStoreError {
    #[error(
        "the cursor file {path} is corrupt ({detail}) — delete it: the devices' history is read again and what was delivered is recognised"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
}

#[derive(Debug, Default, Deserialize)]
struct CursorFile {
    devices: BTreeMap<String, Value>,
}

#[derive(Debug)]
pub struct CursorStore {
    file: CursorFile,
}

impl CursorStore {
    /// Reads the file; a missing one holds no cursor.
    pub fn load(path: &Path) -> Result<CursorStore, CursorStoreError> {
        let file = match fs::read(path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|error| CursorStoreError::Corrupt {
                    path: path.to_path_buf(),
                    detail: error.to_string(),
                })?
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => CursorFile::default(),
            Err(source) => {
                return Err(CursorStoreError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(CursorStore { file })
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_earlier_versions_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CURSOR_FILE_NAME);
        fs::write(
            &path,
            r#"{"version": 1, "devices": {"Office": {"max_upload_time": "2026-01-01 08:00:00"}}}"#,
        )
        .unwrap();
        let store = CursorStore::load(&path).unwrap();
        assert_eq!(
            store.get("Office").unwrap()["max_upload_time"],
            "2026-01-01 08:00:00"
        );
        assert_eq!(store.entries().count(), 1);
        assert!(
            CursorStore::load(&dir.path().join("none"))
                .unwrap()
                .get("Office")
                .is_none()
        );
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
