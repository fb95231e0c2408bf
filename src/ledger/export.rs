//! The Python tool's files, written from the ledger: the JSON cache of delivered IDs
//! (`cache/uploaded_ids_cache.json`) and the audit files (`output/logs_*.json`). A
//! school can go back to the Python tool, or run `build-cache`, and find them as that
//! tool would have left them.
//!
//! A punch is exported once, when every active sink has it (delivered, already present,
//! skipped or withheld): its ID is appended to the JSON cache and, if some sink wrote
//! it, it is listed in the cycle's audit file. The drain hands each settled batch to
//! the cycle's [`Exporter`] while the punches are still in memory, so exporting costs
//! what the cycle delivered — nothing is read back, the cache is appended to, not
//! rewritten. The ledger records each export before writing it (where its IDs begin in
//! the JSON cache — the old closing bracket, which the first append overwrites — and
//! the audit file's name) and marks its punches as they are written, so an export a
//! crash interrupted is redone exactly: the cache cut back to that point, the same
//! audit file written again from the ledger.
//!
//! The JSON cache is also read back: when it is not as this tool left it (the first
//! start on a folder the Python tool or an earlier version wrote, `build-cache`, a
//! deleted file), its IDs are imported as delivered before the ledger and it is
//! written afresh from the ledger.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};

use super::{CacheFile, Export, Ledger, LedgerError, Seq};
use crate::audit::{self, AuditLog};
use crate::cache::{CacheAppend, CacheError};
use crate::cache_repair;
use crate::crash_point;
use crate::punch::Punch;

/// Punches read from the ledger at a time (redoing an export, rewriting the cache).
const PAGE: usize = 2_000;

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

/// What a cycle's export wrote.
#[derive(Debug, Default)]
pub struct ExportReport {
    /// The audit file, and how many punches it lists.
    pub audit_file: Option<(PathBuf, usize)>,
    /// IDs now in the JSON cache.
    pub cache_ids: u64,
}

/// One cycle's export, opened on the first punch it takes.
pub struct Exporter<'a> {
    ledger: &'a dyn Ledger,
    files: &'a ExportFiles,
    audit_name: String,
    open: Option<Open>,
    failed: Option<ExportError>,
    /// Some of what was written must come out again (a sink's store did not keep what
    /// it took): the export is written afresh from the ledger at the end.
    invalid: bool,
}

/// An export under way: its ledger record and the files it appends to.
struct Open {
    export: Export,
    cache: CacheAppend,
    audit: AuditLog,
}

impl<'a> Exporter<'a> {
    /// Prepares the cycle's export: first an export a crash interrupted is redone, the
    /// JSON cache made what this tool last left, and what became exportable outside a
    /// drain (a sink removed from the configuration) is exported.
    pub async fn begin(
        ledger: &'a dyn Ledger,
        files: &'a ExportFiles,
        started: DateTime<Local>,
    ) -> Result<Exporter<'a>, ExportError> {
        if let Some(unfinished) = ledger.unfinished_export().await? {
            redo(ledger, files, unfinished).await?;
            tracing::info!(
                "completed the dedup cache and audit file an interrupted run had left half written"
            );
        }
        reconcile(ledger, files).await?;
        let mut exporter = Exporter {
            ledger,
            files,
            audit_name: audit::file_name(&files.output_dir, started),
            open: None,
            failed: None,
            invalid: false,
        };
        if ledger.exportable().await? {
            let export = exporter.open().await?;
            ledger.export_rest(export).await?;
            let mut after = 0;
            loop {
                let page = ledger.export_page(export, after, PAGE).await?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for exported in &page {
                    exporter.write(&exported.punch, exported.written)?;
                }
            }
        }
        Ok(exporter)
    }

    /// The export's ledger number, opening it (and its files) on first use.
    async fn open(&mut self) -> Result<i64, ExportError> {
        if let Some(open) = &self.open {
            return Ok(open.export.id);
        }
        let append_at = match file_length(&self.files.cache)? {
            Some(length) => Some(CacheAppend::append_point(&self.files.cache, length)?),
            None => None,
        };
        let export = self
            .ledger
            .start_export(append_at, &self.audit_name)
            .await?;
        let cache = CacheAppend::open(&self.files.cache, append_at)?;
        let audit = AuditLog::new(self.files.output_dir.join(&export.audit_file));
        let id = export.id;
        self.open = Some(Open {
            export,
            cache,
            audit,
        });
        Ok(id)
    }

    fn write(&mut self, punch: &Punch, written: bool) -> Result<(), ExportError> {
        let Some(open) = self.open.as_mut() else {
            return Ok(());
        };
        open.cache.push(punch.id.as_str())?;
        if written {
            let path = &open.export.audit_file;
            open.audit
                .append(punch)
                .map_err(|source| ExportError::Audit {
                    path: PathBuf::from(path),
                    source,
                })?;
        }
        Ok(())
    }

    /// Takes a batch a sink just settled (`seqs[i]` is `punches[i]`'s number): those
    /// every active sink now has are exported. A failure is kept for [`Self::finish`]
    /// and stops the exporting; the ledger redoes it next cycle.
    pub async fn take(&mut self, seqs: &[Seq], punches: &[Punch]) {
        if self.failed.is_some() {
            return;
        }
        if let Err(error) = self.take_batch(seqs, punches).await {
            self.failed = Some(error);
        }
    }

    async fn take_batch(&mut self, seqs: &[Seq], punches: &[Punch]) -> Result<(), ExportError> {
        let export = self.open().await?;
        let marked = self.ledger.export_batch(export, seqs).await?;
        let at: HashMap<Seq, usize> = seqs
            .iter()
            .enumerate()
            .map(|(at, seq)| (*seq, at))
            .collect();
        for (seq, written) in marked {
            if let Some(at) = at.get(&seq) {
                self.write(&punches[*at], written)?;
            }
        }
        Ok(())
    }

    /// The ledger took back some of what was exported (see `Ledger::reopen_cycle`).
    pub fn invalidate(&mut self) {
        self.invalid = true;
    }

    /// Makes the files durable and records the export as done.
    pub async fn finish(mut self) -> Result<ExportReport, ExportError> {
        if let Some(error) = self.failed.take() {
            return Err(error);
        }
        let Some(open) = self.open.take() else {
            return Ok(ExportReport {
                cache_ids: self.ledger.cache_file().await?.map_or(0, |cache| cache.ids),
                ..ExportReport::default()
            });
        };
        if self.invalid {
            // The files as appended are dropped unfinished and written again.
            let export = open.export.clone();
            drop(open);
            return redo(self.ledger, self.files, export).await;
        }
        close(self.ledger, open).await
    }
}

/// Closes an export's files and records it in the ledger.
async fn close(ledger: &dyn Ledger, open: Open) -> Result<ExportReport, ExportError> {
    let Open {
        export,
        cache,
        audit,
    } = open;
    let audit_error = |source| ExportError::Audit {
        path: PathBuf::from(&export.audit_file),
        source,
    };
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
    Ok(ExportReport {
        audit_file,
        cache_ids,
    })
}

/// Writes again, from the ledger, an export a crash interrupted.
async fn redo(
    ledger: &dyn Ledger,
    files: &ExportFiles,
    export: Export,
) -> Result<ExportReport, ExportError> {
    let cache = CacheAppend::open(&files.cache, export.cache_append_at)?;
    let audit = AuditLog::new(files.output_dir.join(&export.audit_file));
    let mut open = Open {
        export,
        cache,
        audit,
    };
    let mut after = 0;
    loop {
        let page = ledger.export_page(open.export.id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for exported in &page {
            open.cache.push(exported.punch.id.as_str())?;
            if exported.written {
                open.audit
                    .append(&exported.punch)
                    .map_err(|source| ExportError::Audit {
                        path: PathBuf::from(&open.export.audit_file),
                        source,
                    })?;
            }
        }
    }
    close(ledger, open).await
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
