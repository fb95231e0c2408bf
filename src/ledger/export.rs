//! The Python tool's files, written from the ledger: the JSON cache of delivered IDs
//! (`cache/uploaded_ids_cache.json`) and the audit files (`output/logs_*.json`). A
//! school can go back to the Python tool, or run `build-cache`, and find them as that
//! tool would have left them.
//!
//! A punch is exported once, when every active sink has it (delivered, already present,
//! skipped or withheld); its ID is appended to the JSON cache and, if some sink wrote
//! it, it is listed in the cycle's audit file. Appending costs what the cycle
//! delivered, not what the file holds. The ledger records each export before writing
//! it (where the JSON cache ended, the audit file's name) and after, so an export a
//! crash interrupted is redone exactly: the cache cut back, the same audit file
//! written again.
//!
//! The JSON cache is also read back: when it is not as this tool left it (the first
//! start on a folder the Python tool or an earlier version wrote, `build-cache`, a
//! deleted file), its IDs are imported as delivered before the ledger and it is
//! written afresh from the ledger.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

use super::{CacheFile, Export, Ledger, LedgerError};
use crate::audit::{self, AuditLog};
use crate::cache::{CacheAppend, CacheError};
use crate::cache_repair;
use crate::crash_point;

/// Punches read from the ledger at a time.
const PAGE: usize = 5_000;

/// What an export wrote.
#[derive(Debug, Default)]
pub struct Exported {
    /// The audit file, and how many punches it lists.
    pub audit_file: Option<(PathBuf, usize)>,
    /// IDs now in the JSON cache.
    pub cache_ids: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error("cannot write the audit file {path}: {source} — check free disk space and permissions")]
    Audit {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the exported files go.
#[derive(Debug, Clone)]
pub struct ExportFiles {
    pub cache: PathBuf,
    pub output_dir: PathBuf,
}

/// Exports what every sink now has, finishing first an export a crash interrupted.
pub async fn export(
    ledger: &dyn Ledger,
    files: &ExportFiles,
    started: DateTime<Local>,
) -> Result<Exported, ExportError> {
    let mut exported = Exported::default();
    if let Some(unfinished) = ledger.unfinished_export().await? {
        exported = write(ledger, files, unfinished).await?;
    }
    reconcile(ledger, files).await?;
    let length = file_length(&files.cache)?;
    let name = audit::file_name(&files.output_dir, started);
    if let Some(export) = ledger.start_export(length, &name).await? {
        let more = write(ledger, files, export).await?;
        exported.audit_file = more.audit_file.or(exported.audit_file);
        exported.cache_ids = more.cache_ids;
    } else if let Some(cache) = ledger.cache_file().await? {
        exported.cache_ids = cache.ids;
    }
    Ok(exported)
}

/// Writes an export the ledger has recorded.
async fn write(
    ledger: &dyn Ledger,
    files: &ExportFiles,
    export: Export,
) -> Result<Exported, ExportError> {
    let mut cache = CacheAppend::open(&files.cache, export.cache_length)?;
    let audit_path = files.output_dir.join(&export.audit_file);
    let mut audit = AuditLog::new(audit_path.clone());
    let audit_error = |source| ExportError::Audit {
        path: audit_path.clone(),
        source,
    };
    let mut after = 0;
    loop {
        let page = ledger.export_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for exported in &page {
            cache.push(exported.punch.id.as_str())?;
            if exported.written {
                audit.append(&exported.punch).map_err(audit_error)?;
            }
        }
    }
    let (length, added) = cache.finish()?;
    let audit_file = match audit.seal().map_err(audit_error)? {
        Some(sealed) => Some(sealed.publish().map_err(audit_error)?),
        None => None,
    };
    crash_point::reached(crash_point::BEFORE_EXPORT_RECORDED);
    let cache_ids = export.cache_ids + added;
    ledger
        .finish_export(
            export.id,
            CacheFile {
                length,
                ids: cache_ids,
            },
        )
        .await?;
    Ok(Exported {
        audit_file,
        cache_ids,
    })
}

/// Makes the JSON cache what this tool last left, importing what someone else put in
/// it (see the module docs). Returns how many IDs were imported.
pub async fn reconcile(ledger: &dyn Ledger, files: &ExportFiles) -> Result<u64, ExportError> {
    let recorded = ledger.cache_file().await?;
    let length = file_length(&files.cache)?;
    match (recorded, length) {
        (Some(recorded), Some(length)) if recorded.length == length => return Ok(0),
        (None, None) => return Ok(0),
        _ => {}
    }
    let mut imported = 0;
    if length.is_some() {
        let (cache, repair) = cache_repair::load_or_repair(&files.cache, &files.output_dir)?;
        if let Some(repair) = repair {
            tracing::warn!(
                "the dedup cache was corrupt ({}); moved it to {}, took the IDs of {} audit file(s) and wrote it afresh from the ledger",
                repair.detail,
                repair.moved_to.display(),
                repair.merged.files_read,
            );
        }
        // An earlier version may have left an audit file sealed but not in place.
        audit::recover(&files.output_dir, &cache);
        let ids: Vec<String> = cache.ids().collect();
        drop(cache);
        for chunk in ids.chunks(PAGE) {
            imported += ledger.import_delivered(chunk).await?;
        }
        if imported > 0 {
            tracing::info!(
                "took {imported} delivered ID(s) from {} into the ledger; they are not sent again",
                files.cache.display()
            );
        }
    }
    rewrite(ledger, &files.cache).await?;
    Ok(imported)
}

/// Writes the JSON cache afresh from the ledger (into a temp file renamed into place).
async fn rewrite(ledger: &dyn Ledger, path: &Path) -> Result<(), ExportError> {
    let temp = path.with_extension("json.rewrite");
    let mut cache = CacheAppend::open(&temp, None)?;
    let mut after = String::new();
    loop {
        let page = ledger.delivered_before_page(&after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.clone();
        for id in &page {
            cache.push(id)?;
        }
    }
    let mut after_seq = 0;
    loop {
        let page = ledger.exported_page(after_seq, PAGE).await?;
        let Some((last, _)) = page.last() else { break };
        after_seq = *last;
        for (_, id) in &page {
            cache.push(id)?;
        }
    }
    let (length, ids) = cache.finish()?;
    std::fs::rename(&temp, path).map_err(|source| CacheError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    ledger.adopt_cache_file(CacheFile { length, ids }).await?;
    Ok(())
}

fn file_length(path: &Path) -> Result<Option<u64>, CacheError> {
    match std::fs::metadata(path) {
        Ok(metadata) => Ok(Some(metadata.len())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(CacheError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}
