//! The dedup cache: the IDs of every punch all sinks have acknowledged.
//!
//! The file is the Python iclock-sync's `cache/uploaded_ids_cache.json`, byte-compatible
//! both ways: a JSON array of ID strings, 4-space indented. It is an accelerator that
//! saves re-sending history to the sinks each cycle; the sinks' own idempotent writes
//! are the real guard against duplicates. So a lost cache costs time, never correctness
//! — but a *corrupt* cache is reported rather than silently treated as empty, because
//! the Python tool's habit of doing so is what made fresh starts stall.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::atomic_file;
use crate::punch::PunchId;

pub const CACHE_FILE_NAME: &str = "uploaded_ids_cache.json";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "the dedup cache {path} is corrupt ({detail}) — run `iclock-sync build-cache` to rebuild it from output/logs_*.json, or delete it (the sinks skip what they already hold, so nothing is duplicated)"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot read the dedup cache {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "cannot write the dedup cache {path}: {source} — check free disk space and permissions"
    )]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug)]
pub struct DedupCache {
    path: PathBuf,
    ids: HashSet<String>,
    dirty: bool,
}

impl DedupCache {
    /// Loads the cache; a missing file is an empty cache.
    pub fn load(path: &Path) -> Result<DedupCache, CacheError> {
        let ids = match fs::read(path) {
            Ok(bytes) => parse(&bytes).map_err(|detail| CacheError::Corrupt {
                path: path.to_path_buf(),
                detail,
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => HashSet::new(),
            Err(source) => {
                return Err(CacheError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(DedupCache {
            path: path.to_path_buf(),
            ids,
            dirty: false,
        })
    }

    /// An empty cache that will be written to `path` (used to rebuild a corrupt one).
    pub fn empty(path: &Path) -> DedupCache {
        DedupCache {
            path: path.to_path_buf(),
            ids: HashSet::new(),
            dirty: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn contains(&self, id: &PunchId) -> bool {
        self.ids.contains(id.as_str())
    }

    /// Records an ID; returns whether it was new.
    pub fn insert(&mut self, id: PunchId) -> bool {
        let added = self.ids.insert(id.into_string());
        self.dirty |= added;
        added
    }

    /// Writes the cache atomically if anything changed since it was loaded or saved.
    pub fn save(&mut self) -> Result<(), CacheError> {
        if !self.dirty {
            return Ok(());
        }
        atomic_file::write(&self.path, &render(&self.ids)).map_err(|source| CacheError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.dirty = false;
        Ok(())
    }
}

fn parse(bytes: &[u8]) -> Result<HashSet<String>, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty; a crash during a non-atomic write leaves it so".into());
    }
    let ids: Vec<String> = serde_json::from_slice(bytes)
        .map_err(|error| format!("expected a JSON array of ID strings: {error}"))?;
    Ok(ids.into_iter().collect())
}

/// The exact layout Python's `json.dump(ids, f, indent=4)` produces, sorted so that
/// successive versions diff cleanly.
fn render(ids: &HashSet<String>) -> Vec<u8> {
    if ids.is_empty() {
        return b"[]".to_vec();
    }
    let mut sorted: Vec<&String> = ids.iter().collect();
    sorted.sort_unstable();
    let mut out = Vec::with_capacity(ids.len() * 40 + 4);
    out.extend_from_slice(b"[\n");
    for (index, id) in sorted.iter().enumerate() {
        if index > 0 {
            out.extend_from_slice(b",\n");
        }
        out.extend_from_slice(b"    ");
        // serde_json escapes exactly what JSON requires; IDs are hex in practice.
        out.extend_from_slice(serde_json::to_string(id).unwrap_or_default().as_bytes());
    }
    out.extend_from_slice(b"\n]");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_CACHE: &str =
        "[\n    \"c45d4288f29e9feb6751b7973c1625b7\",\n    \"00003e2c00a363fff3a25881ccb3e36e\"\n]";

    #[test]
    fn reads_the_python_tools_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        fs::write(&path, PYTHON_CACHE).unwrap();
        let cache = DedupCache::load(&path).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.contains(&PunchId::from_stored(
            "c45d4288f29e9feb6751b7973c1625b7".into()
        )));
    }

    #[test]
    fn writes_what_python_json_load_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let mut cache = DedupCache::load(&path).unwrap();
        cache.insert(PunchId::from_stored(
            "c45d4288f29e9feb6751b7973c1625b7".into(),
        ));
        cache.insert(PunchId::from_stored(
            "00003e2c00a363fff3a25881ccb3e36e".into(),
        ));
        cache.save().unwrap();
        // Sorted, and laid out exactly as json.dump(indent=4) would write that list.
        let expected = "[\n    \"00003e2c00a363fff3a25881ccb3e36e\",\n    \"c45d4288f29e9feb6751b7973c1625b7\"\n]";
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn corrupt_or_empty_files_are_errors_that_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        for content in ["", "[\"abc\", ", "{\"ids\": []}", "[1, 2]"] {
            fs::write(&path, content).unwrap();
            let message = DedupCache::load(&path).unwrap_err().to_string();
            assert!(message.contains("build-cache"), "{message}");
            assert!(message.contains(CACHE_FILE_NAME), "{message}");
        }
    }

    #[test]
    fn saving_an_unchanged_cache_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let mut cache = DedupCache::load(&path).unwrap();
        cache.save().unwrap();
        assert!(!path.exists());
    }
}
