//! Mending the dedup cache from the audit files: what `build-cache` does on request,
//! and what every sync does by itself when it finds the cache corrupt (a crash of the
//! Python tool's non-atomic write leaves it so). The corrupt file is moved aside, never
//! deleted; the IDs of `output/logs_*.json` are merged in; unreadable audit files are
//! skipped with a warning. Nothing is lost either way: the cache only saves work, and
//! the sinks skip what they already hold.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::audit;
use crate::cache::{CacheError, DedupCache};
use crate::punch::PunchId;

/// What merging the audit files found.
#[derive(Debug, Default, Serialize)]
pub struct Merged {
    pub files_read: usize,
    pub files_skipped: Vec<SkippedFile>,
    pub ids_found: usize,
    pub ids_added: usize,
}

#[derive(Debug, Serialize)]
pub struct SkippedFile {
    pub file: String,
    pub reason: String,
}

/// A corrupt cache, moved aside and rebuilt.
#[derive(Debug)]
pub struct Repair {
    pub moved_to: PathBuf,
    /// Why it was corrupt.
    pub detail: String,
    pub merged: Merged,
}

/// Loads the cache at `path`; a corrupt one is moved aside and rebuilt from the audit
/// files in `output_dir` (not yet saved: the caller saves it with its next results).
pub fn load_or_repair(
    path: &Path,
    output_dir: &Path,
) -> Result<(DedupCache, Option<Repair>), CacheError> {
    let detail = match DedupCache::load(path) {
        Ok(cache) => return Ok((cache, None)),
        Err(CacheError::Corrupt { detail, .. }) => detail,
        Err(other) => return Err(other),
    };
    let stamp = chrono::Local::now().format("%Y-%m-%d_%H-%M-%S");
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let moved_to = path.with_file_name(format!("{name}.corrupt-{stamp}"));
    fs::rename(path, &moved_to).map_err(|source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let mut cache = DedupCache::empty(path);
    let merged = merge_audit_files(&mut cache, output_dir);
    Ok((
        cache,
        Some(Repair {
            moved_to,
            detail,
            merged,
        }),
    ))
}

/// Adds the IDs of every audit file in `output_dir` to `cache`.
pub fn merge_audit_files(cache: &mut DedupCache, output_dir: &Path) -> Merged {
    let mut merged = Merged::default();
    for file in audit::files_in(output_dir) {
        match audit::ids_in(&file) {
            Ok(ids) => {
                merged.files_read += 1;
                merged.ids_found += ids.len();
                for id in ids {
                    if cache.insert(PunchId::from_stored(id)) {
                        merged.ids_added += 1;
                    }
                }
            }
            Err(reason) => {
                tracing::warn!("skipping {}: {reason}", file.display());
                merged.files_skipped.push(SkippedFile {
                    file: file.display().to_string(),
                    reason,
                });
            }
        }
    }
    merged
}
