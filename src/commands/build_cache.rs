//! `iclock-sync build-cache`: rebuild or extend the dedup cache from the audit files.
//!
//! The fix for a corrupt or lost cache, and the replacement for the Python tool's
//! `scripts/build_cache_from_output.py` — but it merges instead of overwriting, and a
//! corrupt cache is moved aside (kept for inspection) rather than lost.

use std::path::PathBuf;

use serde::Serialize;

use crate::cache::CACHE_FILE_NAME;
use crate::cache_repair::{self, Merged};
use crate::config::{self, Environment, LoadOptions};
use crate::exit::Exit;
use crate::instance_lock::InstanceLock;
use crate::output::Output;
use crate::report::text::thousands;

#[derive(Debug, Serialize)]
struct BuildReport {
    #[serde(flatten)]
    merged: Merged,
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
    // A corrupt cache is moved aside and rebuilt from every audit file; a sound one has
    // them merged in.
    let (mut cache, repair) = match cache_repair::load_or_repair(&cache_path, &settings.output_dir)
    {
        Ok(loaded) => loaded,
        Err(error) => return output.error(&error.to_string(), Exit::Incomplete),
    };
    let (merged, moved_to) = match repair {
        Some(repair) => {
            tracing::warn!(
                "the cache was corrupt ({}); moved it to {}",
                repair.detail,
                repair.moved_to.display()
            );
            (repair.merged, Some(repair.moved_to.display().to_string()))
        }
        None => (
            cache_repair::merge_audit_files(&mut cache, &settings.output_dir),
            None,
        ),
    };
    if let Err(error) = cache.save() {
        return output.error(&error.to_string(), Exit::Incomplete);
    }
    let report = BuildReport {
        cache_file: cache_path.display().to_string(),
        cache_size: cache.len(),
        corrupt_cache_moved_to: moved_to,
        merged,
    };

    if output.json {
        output.json_line(&report);
    } else {
        output.say(&format!(
            "Read {} audit file(s) in {}, {} skipped; found {} IDs, {} new. The cache {} now holds {} IDs.",
            report.merged.files_read,
            settings.output_dir.display(),
            report.merged.files_skipped.len(),
            thousands(report.merged.ids_found as u64),
            thousands(report.merged.ids_added as u64),
            report.cache_file,
            thousands(report.cache_size as u64),
        ));
        if let Some(aside) = &report.corrupt_cache_moved_to {
            output.say(&format!("The corrupt cache was kept as {aside}."));
        }
    }
    Exit::Success
}
