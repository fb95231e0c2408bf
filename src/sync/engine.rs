//! The long-lived side of syncing: sources, sinks, cache, quarantine and cursors, opened
//! once and reused by every cycle of `--loop`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::batch::{CycleContext, Ledger};
use super::observer::CycleObserver;
use crate::atomic_file;
use crate::audit::{self, AuditLog};
use crate::cache::{CACHE_FILE_NAME, CacheError, DedupCache};
use crate::cache_repair;
use crate::config::{Config, SyncSettings};
use crate::crash_point;
use crate::cursor_store::{CURSOR_FILE_NAME, CursorStore, CursorStoreError};
use crate::exit::Exit;
use crate::instance_lock::{InstanceLock, LockError};
use crate::normalize::Normalizer;
use crate::quarantine::{QUARANTINE_FILE_NAME, Quarantine};
use crate::report::{CycleReport, DeviceReport, SinkReport};
use crate::shutdown::Shutdown;
use crate::sink::{self, Sink, SinkError};
use crate::source::{FetchEnd, FetchPlan, Fetched, ReadProgress, Settlement, Source, SourceError};
use crate::user_control::{SwitchLog, UserSwitch};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Cache(#[from] CacheError),
    #[error(transparent)]
    Cursors(#[from] CursorStoreError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(
        "cannot use the quarantine file {path}: {source} — make output_dir in [sync] a folder this user can write (it is created if missing)"
    )]
    Quarantine {
        path: String,
        source: std::io::Error,
    },
}

impl EngineError {
    pub fn exit(&self) -> Exit {
        match self {
            EngineError::Lock(error) => error.exit(),
            EngineError::Cache(CacheError::Corrupt { .. })
            | EngineError::Cursors(CursorStoreError::Corrupt { .. })
            | EngineError::Sink(_)
            | EngineError::Source(_) => Exit::Configuration,
            // A folder that cannot be used is not fixed by waiting for the next run.
            EngineError::Quarantine { source, .. } if is_permanent(source) => Exit::Configuration,
            _ => Exit::Incomplete,
        }
    }
}

/// I/O errors that mean the folder is wrong, not busy.
fn is_permanent(error: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        error.kind(),
        ErrorKind::PermissionDenied
            | ErrorKind::NotADirectory
            | ErrorKind::ReadOnlyFilesystem
            | ErrorKind::IsADirectory
            | ErrorKind::AlreadyExists
    )
}

pub struct Engine {
    settings: SyncSettings,
    normalizer: Normalizer,
    sources: Vec<Box<dyn Source>>,
    /// Each source's `interval`, if it has its own.
    intervals: Vec<Option<Duration>>,
    /// Each source's `max_read_time`.
    read_times: Vec<Duration>,
    sinks: Vec<Box<dyn Sink>>,
    cache: DedupCache,
    quarantine: Quarantine,
    cursors: CursorStore,
    dry_run: bool,
    _lock: Option<InstanceLock>,
}

impl Engine {
    /// Opens everything a cycle needs. A dry run takes no lock, opens no sink and
    /// writes nothing.
    pub async fn open(config: &Config, dry_run: bool) -> Result<Engine, EngineError> {
        let settings = config.sync.clone();
        let lock = if dry_run {
            None
        } else {
            Some(InstanceLock::acquire(&settings.cache_dir)?)
        };
        let cache_path = settings.cache_dir.join(CACHE_FILE_NAME);
        let cache = if dry_run {
            DedupCache::load(&cache_path)?
        } else {
            let (cache, repair) = cache_repair::load_or_repair(&cache_path, &settings.output_dir)?;
            if let Some(repair) = repair {
                tracing::warn!(
                    "the dedup cache was corrupt ({}); moved it to {} and rebuilt it from {} audit file(s) ({} IDs); nothing is lost, and what the sinks already hold is not sent twice",
                    repair.detail,
                    repair.moved_to.display(),
                    repair.merged.files_read,
                    repair.merged.ids_added,
                );
            }
            cache
        };
        if !dry_run {
            audit::recover(&settings.output_dir, &cache);
            atomic_file::remove_stale_temp_files(&settings.cache_dir);
            atomic_file::remove_stale_temp_files(&settings.output_dir);
        }
        let cursors = CursorStore::load(&settings.cache_dir.join(CURSOR_FILE_NAME))?;
        let quarantine_path = settings.output_dir.join(QUARANTINE_FILE_NAME);
        let quarantine = Quarantine::open(&quarantine_path, !dry_run).map_err(|source| {
            EngineError::Quarantine {
                path: quarantine_path.display().to_string(),
                source,
            }
        })?;
        let mut sources = Vec::new();
        let mut intervals = Vec::new();
        let mut read_times = Vec::new();
        for device in &config.devices {
            if device.enabled {
                sources.push(device.open(cursors.get(&device.name))?);
                intervals.push(device.interval);
                read_times.push(device.max_read_time);
            } else {
                tracing::info!(device = %device.name, "disabled in the configuration; skipped");
            }
        }
        let sinks = if dry_run {
            Vec::new()
        } else {
            sink::open_all(&config.sinks, &config.sink_context()).await?
        };
        Ok(Engine {
            normalizer: Normalizer {
                scheme: settings.id_scheme,
                max_future_skew: settings.max_future_skew,
            },
            settings,
            sources,
            intervals,
            read_times,
            sinks,
            cache,
            quarantine,
            cursors,
            dry_run,
            _lock: lock,
        })
    }

    /// Closes the sinks (call once, before exiting).
    pub async fn close(self) {
        for sink in &self.sinks {
            sink.close().await;
        }
    }

    /// How often each device is read in a loop whose interval is `default`, in the
    /// order [`Self::run_cycle`]'s `due` takes.
    pub fn intervals(&self, default: Duration) -> Vec<Duration> {
        self.intervals
            .iter()
            .map(|interval| interval.unwrap_or(default))
            .collect()
    }

    /// Runs one cycle over the devices that are `due` (all when `None`). `since` is
    /// `--since`.
    pub async fn run_cycle(
        &mut self,
        since: Option<Duration>,
        due: Option<&[bool]>,
        shutdown: &Shutdown,
        observer: &Arc<dyn CycleObserver>,
    ) -> CycleReport {
        let started = Local::now();
        let clock = Instant::now();
        for sink in &self.sinks {
            sink.begin_cycle().await;
        }
        let Engine {
            settings,
            normalizer,
            sources,
            read_times,
            sinks,
            cache,
            quarantine,
            cursors,
            dry_run,
            ..
        } = self;
        let context = CycleContext {
            normalizer,
            sinks,
            dry_run: *dry_run,
            observer: observer.as_ref(),
            ledger: Mutex::new(Ledger {
                cache,
                quarantine,
                audit: AuditLog::new(&settings.output_dir, started, !*dry_run),
                sinks: sinks
                    .iter()
                    .map(|sink| SinkReport {
                        name: sink.name().to_owned(),
                        target: sink.target(),
                        ..SinkReport::default()
                    })
                    .collect(),
                problems: Vec::new(),
                would_upload: 0,
                preview: Vec::new(),
            }),
        };
        let mut sources: Vec<(&mut Box<dyn Source>, Duration)> = sources
            .iter_mut()
            .zip(read_times.iter().copied())
            .enumerate()
            .filter(|(index, _)| due.is_none_or(|due| due.get(*index).copied().unwrap_or(true)))
            .map(|(_, source)| source)
            .collect();
        let results: Vec<(DeviceReport, Settlement)> = futures::stream::iter(sources.iter_mut())
            .map(|(source, max_read_time)| {
                run_device(
                    source.as_mut(),
                    &context,
                    since,
                    shutdown,
                    *max_read_time,
                    observer,
                )
            })
            .buffered(settings.parallel_devices)
            .collect()
            .await;
        let ledger = context
            .ledger
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (devices, settlements): (Vec<DeviceReport>, Vec<Settlement>) =
            results.into_iter().unzip();
        let mut report = CycleReport {
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            dry_run: *dry_run,
            interrupted: shutdown.is_requested(),
            devices,
            sinks: ledger.sinks,
            problems: ledger.problems,
            would_upload: ledger.would_upload,
            preview: ledger.preview,
            quarantine_file: ledger.quarantine.path().display().to_string(),
            ..CycleReport::default()
        };

        let recorded = !*dry_run
            && record(
                sinks,
                ledger.cache,
                ledger.quarantine,
                ledger.audit,
                &mut report,
            )
            .await;
        report.recorded = recorded;
        let mut sources: Vec<&mut Box<dyn Source>> =
            sources.into_iter().map(|(source, _)| source).collect();
        for (source, settlement) in sources.iter_mut().zip(settlements) {
            let settlement = Settlement {
                discard: !recorded,
                ..settlement
            };
            if let Some(cursor) = source.settle(&settlement) {
                cursors.set(&source.label().name, cursor);
            }
        }
        if recorded {
            crash_point::reached(crash_point::BEFORE_CURSOR_SAVE);
            match cursors.save() {
                Ok(()) => after_recorded(sinks, &mut sources, settings, started, &mut report).await,
                Err(error) => report.problems.push(error.to_string()),
            }
        }
        report.cache_file = ledger.cache.path().display().to_string();
        report.cache_size = ledger.cache.len();
        report.duration_ms = clock.elapsed().as_millis() as u64;
        report.exit_code = report.exit().code();
        observer.finished(&report);
        report
    }
}

/// Records what the sinks acknowledged — once every sink confirms that it is stored:
/// quarantine, audit file (sealed), cache, audit file (published). A failed step skips
/// the later ones, so nothing claims more than is durably recorded; the cursors follow
/// only when this returns true.
async fn record(
    sinks: &[Box<dyn Sink>],
    cache: &mut DedupCache,
    quarantine: &mut Quarantine,
    audit: AuditLog,
    report: &mut CycleReport,
) -> bool {
    let mut recorded = true;
    for (sink, sink_report) in sinks.iter().zip(&report.sinks) {
        if let Err(problem) = sink.confirm().await {
            report.problems.push(format!(
                "sink {} ({}): {problem}; nothing from this cycle is recorded as delivered, it is sent again next cycle",
                sink_report.name, sink_report.target
            ));
            recorded = false;
        }
    }
    if recorded && let Err(error) = quarantine.sync() {
        report.problems.push(format!(
            "cannot save the quarantine file {}: {error}",
            report.quarantine_file
        ));
        recorded = false;
    }
    let mut sealed = None;
    if recorded {
        match audit.seal() {
            Ok(audit) => sealed = audit,
            Err(error) => {
                report
                    .problems
                    .push(format!("cannot save the audit file: {error}"));
                recorded = false;
            }
        }
    }
    if recorded {
        crash_point::reached(crash_point::BEFORE_CACHE_SAVE);
        if let Err(error) = cache.save() {
            report.problems.push(error.to_string());
            recorded = false;
        }
    }
    if !recorded {
        // The next cycle must not trust this one's acknowledgements.
        cache.forget_unsaved();
        return false;
    }
    if let Some(sealed) = sealed {
        match sealed.publish() {
            Ok((path, entries)) => {
                report.audit_file = Some(path.display().to_string());
                report.audit_entries = entries;
            }
            // The punches are delivered and recorded in the cache; only this cycle's
            // listing is lost, and the summary says so.
            Err(error) => report
                .problems
                .push(format!("cannot save the audit file: {error}")),
        }
    }
    true
}

/// Once the cycle and its cursors are recorded: the devices' after-steps (a log
/// cleared), the sinks' (watermarks, user switches), and old audit files pruned.
async fn after_recorded(
    sinks: &[Box<dyn Sink>],
    sources: &mut [&mut Box<dyn Source>],
    settings: &SyncSettings,
    started: DateTime<Local>,
    report: &mut CycleReport,
) {
    let notes =
        futures::future::join_all(sources.iter_mut().map(|source| source.after_recorded())).await;
    for (device, note) in report.devices.iter_mut().zip(notes) {
        device.note = note;
    }
    finish_sinks(sinks, sources, settings, report).await;
    if let Some(keep) = settings.audit_retention {
        let pruned = audit::prune(&settings.output_dir, keep, started);
        if !pruned.is_empty() {
            tracing::info!(
                "deleted {} audit file(s) older than audit_retention ({})",
                pruned.len(),
                crate::duration::display(keep)
            );
        }
    }
}

/// Lets every sink finish the recorded cycle, and has the devices apply the user
/// switches the sinks ask for.
async fn finish_sinks(
    sinks: &[Box<dyn Sink>],
    sources: &mut [&mut Box<dyn Source>],
    settings: &SyncSettings,
    report: &mut CycleReport,
) {
    let mut switches: Vec<UserSwitch> = Vec::new();
    for (sink, sink_report) in sinks.iter().zip(report.sinks.iter_mut()) {
        let end = sink.finish_cycle(&report.devices).await;
        sink_report.notes.extend(end.notes);
        switches.extend(end.switches);
    }
    if switches.is_empty() {
        return;
    }
    let log = SwitchLog::in_dir(&settings.output_dir);
    for (source, device) in sources.iter_mut().zip(report.devices.iter_mut()) {
        let mine: Vec<UserSwitch> = switches
            .iter()
            .filter(|switch| *switch.device == *source.label().name)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let note = source.switch_users(&mine, &log).await;
        device.note = Some(match device.note.take() {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note,
        });
    }
}

/// How long past its deadline a source may take to stop cleanly before it is dropped.
const READ_GRACE: Duration = Duration::from_secs(120);

/// Pages a source may read ahead of delivery.
const QUEUED_PAGES: usize = 8;
/// Records handed to the sinks at once, at most (plus one page).
const MAX_BATCH: usize = 8_000;

/// Reads one device and delivers what it sends, batch by batch, while it is still
/// reading (so memory holds a few pages, not the whole backlog).
async fn run_device(
    source: &mut dyn Source,
    context: &CycleContext<'_>,
    since: Option<Duration>,
    shutdown: &Shutdown,
    max_read_time: Duration,
    observer: &Arc<dyn CycleObserver>,
) -> (DeviceReport, Settlement) {
    let label = std::sync::Arc::clone(source.label());
    let mut report = DeviceReport::new(&label.name, source.kind(), source.location());
    let who = format!("device '{}' ({})", label.name, source.location());
    let mut plan = FetchPlan::new(since, shutdown.clone(), max_read_time);
    let observer = Arc::clone(observer);
    let name = label.name.to_string();
    plan.progress = ReadProgress::new(move |done, total, unit| {
        observer.reading(&name, done, total, unit);
    });
    let mut unhandled = Vec::new();
    let (sender, mut receiver) = mpsc::channel::<Vec<Fetched>>(QUEUED_PAGES);
    let plan = &plan;
    let fetch = async move {
        let sender = sender;
        // Sources stop at the deadline themselves, cleaning up after them (a terminal
        // is enabled again); this is the backstop if one does not.
        let backstop = plan.deadline + READ_GRACE;
        tokio::time::timeout_at(backstop, source.fetch(plan, &sender))
            .await
            .unwrap_or_else(|_| Err(plan.overran(&who)))
    };
    let deliver = async {
        let mut position = 0;
        while let Some(mut batch) = receiver.recv().await {
            // Take whatever else is already waiting: when the device is faster than the
            // sinks, batches grow and each sink transaction carries more.
            while batch.len() < MAX_BATCH {
                match receiver.try_recv() {
                    Ok(more) => batch.extend(more),
                    Err(_) => break,
                }
            }
            let size = batch.len();
            let failed = context.process(&label, batch, &mut report).await;
            unhandled.extend(failed.into_iter().map(|offset| position + offset));
            position += size;
        }
    };
    let (fetched, ()) = tokio::join!(fetch, deliver);
    let complete = match fetched {
        Ok(FetchEnd::Complete) => true,
        Ok(FetchEnd::Interrupted) => {
            report.interrupted = true;
            false
        }
        Err(error) => {
            tracing::debug!(device = %label.name, "{error}");
            report.error = Some((&error).into());
            false
        }
    };
    let settlement = Settlement {
        complete,
        unhandled,
        discard: context.dry_run,
    };
    (report, settlement)
}
