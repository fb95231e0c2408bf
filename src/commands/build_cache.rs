//! `iclock-sync build-cache`: rebuild or extend the dedup cache from the audit files.
//!
//! The fix for a corrupt or lost cache, and the replacement for the Python tool's
//! `scripts/build_cache_from_output.py` — but it merges instead of overwriting, and a
//! corrupt cache is moved aside (kept for inspection) rather than lost.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::cache::{CACHE_FILE_NAME, CacheError, DedupCache};
use crate::config::{self, Environment, LoadOptions};
use crate::exit::Exit;
use crate::instance_lock::InstanceLock;
use crate::output::Output;
use crate::punch::PunchId;
use crate::report::text::thousands;

#[derive(Debug, Serialize)]
struct SkippedFile {
    file: String,
    reason: String,
}

#[derive(Debug, Serialize)]
struct BuildReport {
    files_read: usize,
    files_skipped: Vec<SkippedFile>,
    ids_found: usize,
    ids_added: usize,
    cache_file: String,
    cache_size: usize,
    corrupt_cache_moved_to: Option<String>,
}

pub fn run(config_path: Option<PathBuf>, environment: &Environment, output: &Output) -> Exit {
    let options = LoadOptions {
        path: config_path,
        dry_run: true,
    };
    let settings = match config::load_settings(&options, environment) {
        Ok(settings) => settings,
        Err(error) => return output.error(&error.to_string(), Exit::Configuration),
    };
    let _lock = match InstanceLock::acquire(&settings.cache_dir) {
        Ok(lock) => lock,
        Err(error) => return output.error(&error.to_string(), error.exit()),
    };
    let cache_path = settings.cache_dir.join(CACHE_FILE_NAME);
    let mut moved_to = None;
    let mut cache = match DedupCache::load(&cache_path) {
        Ok(cache) => cache,
        Err(CacheError::Corrupt { detail, .. }) => {
            let stamp = chrono::Local::now().format("%Y-%m-%d_%H-%M-%S");
            let aside = cache_path.with_file_name(format!("{CACHE_FILE_NAME}.corrupt-{stamp}"));
            if let Err(error) = fs::rename(&cache_path, &aside) {
                return output.error(
                    &format!(
                        "the cache {} is corrupt ({detail}) and cannot be moved aside: {error}",
                        cache_path.display()
                    ),
                    Exit::Incomplete,
                );
            }
            tracing::warn!(
                "the cache was corrupt ({detail}); moved it to {}",
                aside.display()
            );
            moved_to = Some(aside.display().to_string());
            DedupCache::empty(&cache_path)
        }
        Err(error) => return output.error(&error.to_string(), Exit::Incomplete),
    };

    let mut report = BuildReport {
        files_read: 0,
        files_skipped: Vec::new(),
        ids_found: 0,
        ids_added: 0,
        cache_file: cache_path.display().to_string(),
        cache_size: 0,
        corrupt_cache_moved_to: moved_to,
    };
    for file in audit_files(&settings.output_dir) {
        match read_ids(&file) {
            Ok(ids) => {
                report.files_read += 1;
                report.ids_found += ids.len();
                for id in ids {
                    if cache.insert(PunchId::from_stored(id)) {
                        report.ids_added += 1;
                    }
                }
            }
            Err(reason) => {
                tracing::warn!("skipping {}: {reason}", file.display());
                report.files_skipped.push(SkippedFile {
                    file: file.display().to_string(),
                    reason,
                });
            }
        }
    }
    if let Err(error) = cache.save() {
        return output.error(&error.to_string(), Exit::Incomplete);
    }
    report.cache_size = cache.len();

    if output.json {
        output.json_line(&report);
    } else {
        output.say(&format!(
            "Read {} audit file(s) in {}, {} skipped; found {} IDs, {} new. The cache {} now holds {} IDs.",
            report.files_read,
            settings.output_dir.display(),
            report.files_skipped.len(),
            thousands(report.ids_found as u64),
            thousands(report.ids_added as u64),
            report.cache_file,
            thousands(report.cache_size as u64),
        ));
        if let Some(aside) = &report.corrupt_cache_moved_to {
            output.say(&format!("The corrupt cache was kept as {aside}."));
        }
    }
    Exit::Success
}

/// `logs_*.json` in `dir`, oldest name first.
fn audit_files(dir: &Path) -> Vec<PathBuf> {
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
fn read_ids(file: &Path) -> Result<Vec<String>, String> {
    let bytes = fs::read(file).map_err(|error| error.to_string())?;
    let entries: Vec<Value> =
        serde_json::from_slice(&bytes).map_err(|error| format!("not a JSON array: {error}"))?;
    Ok(entries
        .iter()
        .filter_map(|entry| entry.get("doc_id").and_then(Value::as_str))
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect())
}
