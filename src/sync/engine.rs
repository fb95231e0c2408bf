//! The long-lived side of syncing: the ledger, sources and sinks, opened once and
//! reused by every cycle of `--loop`; and the cycle itself — read every due device
//! into the ledger, drain every sink from it, export the Python tool's files, then the
//! after-steps (a terminal's log cleared, Frappe's shift watermarks, user switches).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use futures::StreamExt;

use super::drain::{Drain, Tally};
use super::observer::CycleObserver;
use super::read::{DeviceRead, Known, ReadShared, Reader};
use super::sinks::{self, SinkSlot, SinkState};
use crate::atomic_file;
use crate::audit;
use crate::cache::{CACHE_FILE_NAME, CacheError, DedupCache};
use crate::config::{Config, LedgerSettings, SyncSettings};
use crate::cursor_store::{CURSOR_FILE_NAME, CursorStore, CursorStoreError};
use crate::exit::Exit;
use crate::instance_lock::{InstanceLock, LockError};
use crate::ledger::export::{self, ExportError, ExportFiles, Exporter};
use crate::ledger::{LEDGER_FILE_NAME, Ledger, LedgerError, SqliteLedger};
use crate::normalize::Normalizer;
use crate::quarantine::{QUARANTINE_FILE_NAME, Quarantine};
use crate::report::{CycleReport, DeviceReport, SinkReport};
use crate::shutdown::Shutdown;
use crate::sink::SinkError;
use crate::source::{DeviceConfig, Source, SourceError};
use crate::user_control::{SwitchLog, UserSwitch};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Export(#[from] ExportError),
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
            EngineError::Quarantine { source, .. } if !is_permanent(source) => Exit::Incomplete,
            _ => Exit::Configuration,
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

/// A configured device and its source (opened again from the ledger's cursor when a
/// read could not be journaled after the source had moved on).
struct DeviceSlot {
    config: DeviceConfig,
    source: Box<dyn Source>,
    reopen: bool,
}

pub struct Engine {
    settings: SyncSettings,
    ledger_settings: LedgerSettings,
    config: Config,
    normalizer: Normalizer,
    devices: Vec<DeviceSlot>,
    sinks: Vec<SinkSlot>,
    /// `None` only for a dry run before any ledger exists.
    ledger: Option<SqliteLedger>,
    ledger_file: std::path::PathBuf,
    /// A dry run before any ledger exists compares with the JSON cache.
    dry_cache: Option<DedupCache>,
    quarantine: Quarantine,
    files: ExportFiles,
    dry_run: bool,
    /// Cycles run by this process (the first retries every failed punch at once).
    cycles: u64,
    /// When the ledger was last pruned.
    pruned_at: Option<Instant>,
    _lock: Option<InstanceLock>,
}

impl Engine {
    /// Opens everything a cycle needs. A dry run takes no lock, opens no sink and
    /// writes nothing, the ledger included.
    pub async fn open(config: &Config, dry_run: bool) -> Result<Engine, EngineError> {
        let settings = config.sync.clone();
        let lock = if dry_run {
            None
        } else {
            Some(InstanceLock::acquire(&settings.cache_dir)?)
        };
        let ledger_path = settings.cache_dir.join(LEDGER_FILE_NAME);
        let files = ExportFiles {
            cache: settings.cache_dir.join(CACHE_FILE_NAME),
            output_dir: settings.output_dir.clone(),
        };
        let (ledger, dry_cache) = if dry_run {
            if ledger_path.exists() {
                (Some(SqliteLedger::open(&ledger_path, true).await?), None)
            } else {
                (None, Some(DedupCache::load(&files.cache)?))
            }
        } else {
            atomic_file::remove_stale_temp_files(&settings.cache_dir);
            let ledger = SqliteLedger::open(&ledger_path, false).await?;
            export::reconcile(&ledger, &files).await?;
            import_cursor_file(&ledger, &settings).await?;
            (Some(ledger), None)
        };
        let quarantine_path = settings.output_dir.join(QUARANTINE_FILE_NAME);
        let quarantine = Quarantine::open(&quarantine_path, !dry_run).map_err(|source| {
            EngineError::Quarantine {
                path: quarantine_path.display().to_string(),
                source,
            }
        })?;
        let mut devices = Vec::new();
        for device in &config.devices {
            if !device.enabled {
                tracing::info!(device = %device.name, "disabled in the configuration; skipped");
                continue;
            }
            if device.source.pushes().is_some() {
                // Its punches arrive through `serve`'s ADMS receiver.
                continue;
            }
            let cursor = match &ledger {
                Some(ledger) => ledger.cursor(&device.name).await?,
                None => CursorStore::load(&settings.cache_dir.join(CURSOR_FILE_NAME))?
                    .get(&device.name)
                    .cloned(),
            };
            devices.push(DeviceSlot {
                source: device.open(cursor.as_ref())?,
                config: device.clone(),
                reopen: false,
            });
        }
        let mut engine = Engine {
            ledger_file: ledger_path,
            normalizer: Normalizer {
                scheme: settings.id_scheme,
                max_future_skew: settings.max_future_skew,
            },
            settings,
            ledger_settings: config.ledger.clone(),
            config: config.clone(),
            devices,
            sinks: Vec::new(),
            ledger,
            dry_cache,
            quarantine,
            files,
            dry_run,
            cycles: 0,
            pruned_at: None,
            _lock: lock,
        };
        if !dry_run {
            engine.sinks = sinks::open(config, &config.sink_context()).await?;
            if let Some(ledger) = &engine.ledger {
                for registered in
                    sinks::register(&mut engine.sinks, ledger, config.ledger.backfill).await?
                {
                    if let Some(because) = registered.queued_because {
                        tracing::info!(
                            "sink {}: queued {} punch(es) — {because}",
                            registered.name,
                            registered.queued
                        );
                    }
                }
            }
        }
        Ok(engine)
    }

    /// Closes the sinks and the ledger (call once, before exiting).
    pub async fn close(self) {
        for slot in &self.sinks {
            if let Some(sink) = slot.sink() {
                sink.close().await;
            }
        }
        if let Some(ledger) = &self.ledger {
            ledger.close().await;
        }
    }

    /// The ledger, for what runs beside the cycles (the ADMS receiver); `None` in a dry
    /// run.
    pub fn ledger(&self) -> Option<Arc<dyn Ledger>> {
        self.ledger
            .as_ref()
            .filter(|_| !self.dry_run)
            .map(|ledger| Arc::new(ledger.clone()) as Arc<dyn Ledger>)
    }

    /// Where the ledger is; `None` in a dry run.
    pub fn ledger_path(&self) -> Option<&std::path::Path> {
        self.ledger
            .as_ref()
            .filter(|_| !self.dry_run)
            .map(|_| self.ledger_file.as_path())
    }

    /// The devices' names, in the order [`Self::run_cycle`]'s `due` takes.
    pub fn device_names(&self) -> Vec<String> {
        self.devices
            .iter()
            .map(|device| device.config.name.clone())
            .collect()
    }

    /// The ledger's numbers of the open sinks: what a new punch is queued for.
    pub fn sink_ids(&self) -> Vec<crate::ledger::SinkId> {
        self.sinks.iter().map(|slot| slot.id).collect()
    }

    /// How often each device is read in a loop whose interval is `default`, in the
    /// order [`Self::run_cycle`]'s `due` takes.
    pub fn intervals(&self, default: Duration) -> Vec<Duration> {
        self.devices
            .iter()
            .map(|device| device.config.interval.unwrap_or(default))
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
        let mut report = CycleReport {
            started_at: started.to_rfc3339_opts(chrono::SecondsFormat::Secs, false),
            dry_run: self.dry_run,
            quarantine_file: self.quarantine.path().display().to_string(),
            cache_file: self.files.cache.display().to_string(),
            ledger_file: self
                .ledger
                .as_ref()
                .map(|ledger| ledger.location())
                .unwrap_or_default(),
            recorded: !self.dry_run,
            ..CycleReport::default()
        };
        let cycle = match self.begin(started, &mut report).await {
            Some(cycle) => cycle,
            None if self.dry_run => 0,
            None => return self.end(report, clock, observer, None).await,
        };
        self.read(since, due, shutdown, observer, &mut report).await;
        report.interrupted = shutdown.is_requested();
        if self.dry_run {
            report.cache_size = match (&self.dry_cache, &self.ledger) {
                (Some(cache), _) => cache.len(),
                (None, Some(ledger)) => ledger
                    .cache_file()
                    .await
                    .ok()
                    .flatten()
                    .map_or(0, |cache| cache.ids as usize),
                (None, None) => 0,
            };
            return self.end(report, clock, observer, None).await;
        }
        let tally = self.drain(cycle, started, observer, &mut report).await;
        self.standings(tally, &mut report).await;
        self.after_cycle(started, &mut report).await;
        self.end(report, clock, observer, Some(cycle)).await
    }

    /// Starts the cycle in the ledger, after trying again the sinks that are down.
    async fn begin(&mut self, started: DateTime<Local>, report: &mut CycleReport) -> Option<i64> {
        let ledger = self.ledger.as_ref().filter(|_| !self.dry_run)?;
        if sinks::any_down(&self.sinks) {
            let context = self.config.sink_context();
            report
                .problems
                .extend(sinks::reopen(&mut self.sinks, &context).await);
            if let Err(error) =
                sinks::register(&mut self.sinks, ledger, self.ledger_settings.backfill).await
            {
                report.problems.push(error.to_string());
            }
        }
        for slot in &self.sinks {
            if let Some(sink) = slot.sink() {
                sink.begin_cycle().await;
            }
        }
        match ledger.begin_cycle(started.with_timezone(&Utc)).await {
            Ok(cycle) => Some(cycle),
            Err(error) => {
                report.problems.push(format!(
                    "{error} — nothing can be recorded; check free disk space and the cache folder"
                ));
                report.recorded = false;
                None
            }
        }
    }

    /// Reads the due devices into the ledger, several at a time.
    async fn read(
        &mut self,
        since: Option<Duration>,
        due: Option<&[bool]>,
        shutdown: &Shutdown,
        observer: &Arc<dyn CycleObserver>,
        report: &mut CycleReport,
    ) {
        let ledger: Option<&dyn Ledger> = self.ledger.as_ref().map(|ledger| ledger as &dyn Ledger);
        for device in self.devices.iter_mut().filter(|device| device.reopen) {
            let Some(ledger) = ledger.filter(|_| !self.dry_run) else {
                continue;
            };
            match ledger.cursor(&device.config.name).await {
                Ok(cursor) => match device.config.open(cursor.as_ref()) {
                    Ok(source) => {
                        device.source = source;
                        device.reopen = false;
                    }
                    Err(error) => report.problems.push(error.to_string()),
                },
                Err(error) => report.problems.push(error.to_string()),
            }
        }
        let sink_ids: Vec<i64> = self.sinks.iter().map(|slot| slot.id).collect();
        let reader = Reader {
            normalizer: &self.normalizer,
            ledger: ledger.filter(|_| !self.dry_run),
            sinks: &sink_ids,
            known: match (&self.dry_cache, ledger) {
                (Some(cache), _) => Some(Known::Cache(cache)),
                (None, Some(ledger)) => Some(Known::Ledger(ledger)),
                (None, None) => None,
            },
            shared: Mutex::new(ReadShared {
                quarantine: &mut self.quarantine,
                problems: Vec::new(),
                would_upload: 0,
                preview: Vec::new(),
            }),
        };
        let parallel = self.settings.parallel_devices;
        let reads: Vec<(DeviceRead, &mut DeviceSlot)> = futures::stream::iter(
            self.devices
                .iter_mut()
                .enumerate()
                .filter(|(index, _)| due.is_none_or(|due| due.get(*index).copied().unwrap_or(true)))
                .map(|(_, device)| device),
        )
        .map(|device| {
            let reader = &reader;
            async move {
                let read = reader
                    .read(
                        device.source.as_mut(),
                        since,
                        shutdown,
                        device.config.max_read_time,
                        observer,
                    )
                    .await;
                (read, device)
            }
        })
        .buffered(parallel)
        .collect()
        .await;
        for (read, device) in reads {
            device.reopen |= read.reopen;
            report.devices.push(read.report);
        }
        let shared = reader
            .shared
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        report.problems.extend(shared.problems);
        report.would_upload = shared.would_upload;
        report.preview = shared.preview;
    }

    /// Drains every sink from the ledger at the same time, each on its own, exporting
    /// (JSON cache, audit file) what every sink has as it goes.
    async fn drain(
        &mut self,
        cycle: i64,
        started: DateTime<Local>,
        observer: &Arc<dyn CycleObserver>,
        report: &mut CycleReport,
    ) -> Tally {
        let Some(ledger) = self.ledger.as_ref() else {
            return Tally::default();
        };
        let exporter = match Exporter::begin(ledger, &self.files, started).await {
            Ok(exporter) => Some(tokio::sync::Mutex::new(exporter)),
            Err(error) => {
                report.problems.push(export_problem(&error));
                None
            }
        };
        let quarantine = Mutex::new(&mut self.quarantine);
        let drain = Drain {
            ledger,
            cycle,
            due_by: (self.cycles > 0).then(Utc::now),
            observer: observer.as_ref(),
            tally: Mutex::new(Tally::default()),
            quarantine: &quarantine,
            exporter: exporter.as_ref(),
        };
        let drained = futures::future::join_all(self.sinks.iter().map(|slot| {
            let drain = &drain;
            async move {
                let mut sink_report = SinkReport {
                    name: slot.name().to_owned(),
                    target: slot.target(),
                    ..SinkReport::default()
                };
                let problems = match &slot.state {
                    SinkState::Open(sink) => {
                        let mut problems = drain.drain(sink.as_ref(), slot.id, &mut sink_report).await;
                        if sink_report.delivered > 0
                            && let Err(problem) = sink.confirm().await
                        {
                            let reopened = ledger.reopen_cycle(slot.id, cycle).await.unwrap_or(0);
                            if let Some(exporter) = drain.exporter {
                                exporter.lock().await.invalidate();
                            }
                            problems.push(format!(
                                "sink {} ({}): {problem}; the {reopened} punch(es) it took this cycle are sent again",
                                sink_report.name, sink_report.target
                            ));
                        }
                        problems
                    }
                    SinkState::Down(error) => {
                        sink_report.down = Some(format!(
                            "{error}; its punches wait in the ledger and it is tried again each cycle"
                        ));
                        Vec::new()
                    }
                };
                (sink_report, problems)
            }
        }))
        .await;
        for (sink_report, problems) in drained {
            report.sinks.push(sink_report);
            report.problems.extend(problems);
        }
        self.cycles += 1;
        let tally = drain
            .tally
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(exporter) = exporter {
            match exporter.into_inner().finish().await {
                Ok(exported) => {
                    if let Some((path, entries)) = exported.audit_file {
                        report.audit_file = Some(path.display().to_string());
                        report.audit_entries = entries;
                    }
                    report.cache_size = exported.cache_ids as usize;
                }
                Err(error) => report.problems.push(export_problem(&error)),
            }
        }
        tally
    }

    /// What is still open, per sink and per device, and how each device's punches fared.
    async fn standings(&self, tally: Tally, report: &mut CycleReport) {
        let Some(ledger) = self.ledger.as_ref() else {
            return;
        };
        for (slot, sink_report) in self.sinks.iter().zip(report.sinks.iter_mut()) {
            match ledger.open_count(slot.id).await {
                Ok((open, _, next)) => {
                    sink_report.pending = open;
                    sink_report.next_retry = next.map(crate::punch::utc_text);
                }
                Err(error) => report.problems.push(error.to_string()),
            }
        }
        let mut by_device = tally.by_device();
        for device in &mut report.devices {
            if let Some((written, present, refused)) = by_device.remove(device.name.as_str()) {
                device.delivered = written;
                device.already_in_sinks = present;
                device.rejected = refused;
            }
        }
        // Devices not read this cycle whose punches were delivered in it: pushing
        // terminals, and devices waiting for their interval.
        let mut others: Vec<_> = by_device.into_iter().collect();
        others.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, (written, present, refused)) in others {
            let configured = self
                .config
                .devices
                .iter()
                .find(|device| *device.name == *name);
            report.devices.push(DeviceReport {
                name: name.to_string(),
                kind: configured
                    .map(|device| device.kind().to_owned())
                    .unwrap_or_default(),
                location: configured
                    .map(|device| device.location())
                    .unwrap_or_default(),
                delivered: written,
                already_in_sinks: present,
                rejected: refused,
                ..DeviceReport::default()
            });
        }
        match ledger.open_by_device().await {
            Ok(open) => {
                for (name, count) in open {
                    if let Some(device) =
                        report.devices.iter_mut().find(|device| device.name == name)
                    {
                        device.not_delivered = count;
                    }
                }
            }
            Err(error) => report.problems.push(error.to_string()),
        }
    }

    /// The devices' after-steps (a log cleared once all its punches are everywhere),
    /// the sinks' (watermarks, user switches), old audit files and ledger rows pruned.
    async fn after_cycle(&mut self, started: DateTime<Local>, report: &mut CycleReport) {
        let read: Vec<&mut DeviceSlot> = self
            .devices
            .iter_mut()
            .filter(|device| {
                report
                    .devices
                    .iter()
                    .any(|read| read.name == device.config.name)
            })
            .collect();
        let mut read = read;
        for device in read.iter_mut() {
            let Some(device_report) = report
                .devices
                .iter_mut()
                .find(|read| read.name == device.config.name)
            else {
                continue;
            };
            device_report.note = if device_report.not_delivered == 0 {
                device.source.after_recorded().await
            } else if device.config.source.clears_after_sync() {
                Some(format!(
                    "log not cleared: {} of its punches still wait for a sink",
                    device_report.not_delivered
                ))
            } else {
                None
            };
        }
        let pushers = Pushers {
            ledger: self.ledger.as_ref(),
            devices: &self.config.devices,
        };
        finish_sinks(&self.sinks, &mut read, pushers, &self.settings, report).await;
        if let Some(keep) = self.settings.audit_retention {
            let pruned = audit::prune(&self.settings.output_dir, keep, started);
            if !pruned.is_empty() {
                tracing::info!(
                    "deleted {} audit file(s) older than audit_retention ({})",
                    pruned.len(),
                    crate::duration::display(keep)
                );
            }
        }
        self.prune_ledger(report).await;
    }

    /// Deletes from the ledger what `[ledger] retain` no longer keeps, once a day.
    async fn prune_ledger(&mut self, report: &mut CycleReport) {
        let (Some(retain), Some(ledger)) = (self.ledger_settings.retain, self.ledger.as_ref())
        else {
            return;
        };
        const DAILY: Duration = Duration::from_secs(86_400);
        if self.pruned_at.is_some_and(|at| at.elapsed() < DAILY) {
            return;
        }
        self.pruned_at = Some(Instant::now());
        let Ok(retain) = chrono::Duration::from_std(retain) else {
            return;
        };
        match ledger.prune(Utc::now() - retain).await {
            Ok(0) => {}
            Ok(pruned) => tracing::info!(
                "deleted {pruned} punch(es) older than [ledger] retain from the ledger"
            ),
            Err(error) => report.problems.push(error.to_string()),
        }
    }

    /// Closes the cycle: its report into the ledger, the exit code, the observer told.
    async fn end(
        &self,
        mut report: CycleReport,
        clock: Instant,
        observer: &Arc<dyn CycleObserver>,
        cycle: Option<i64>,
    ) -> CycleReport {
        report.duration_ms = clock.elapsed().as_millis() as u64;
        report.exit_code = report.exit().code();
        if let (Some(cycle), Some(ledger)) = (cycle, self.ledger.as_ref()) {
            let value = serde_json::to_value(&report).unwrap_or_default();
            if let Err(error) = ledger
                .finish_cycle(cycle, &value, report.duration_ms, report.exit_code)
                .await
            {
                tracing::warn!("{error}");
            }
        }
        observer.finished(&report);
        report
    }
}

/// What a failed export means for the user.
fn export_problem(error: &ExportError) -> String {
    format!(
        "{error}; the ledger holds every punch, the JSON cache and audit file are completed next cycle"
    )
}

/// Imports the cursors an earlier version kept in `cache/cursors.json`, once.
async fn import_cursor_file(
    ledger: &dyn Ledger,
    settings: &SyncSettings,
) -> Result<(), EngineError> {
    const MILESTONE: &str = "import-cursors-json";
    if ledger.milestone(MILESTONE).await? {
        return Ok(());
    }
    let path = settings.cache_dir.join(CURSOR_FILE_NAME);
    let store = CursorStore::load(&path)?;
    let mut imported = 0;
    for (device, cursor) in store.entries() {
        if ledger.cursor(device).await?.is_none() {
            ledger.import_cursor(device, cursor).await?;
            imported += 1;
        }
    }
    if imported > 0 {
        tracing::info!(
            "took the cursors of {imported} device(s) from {} into the ledger",
            path.display()
        );
    }
    ledger
        .mark_milestone(MILESTONE, &format!("{imported} cursor(s)"))
        .await?;
    Ok(())
}

/// The terminals that push, whose user switches go through their command queue in
/// the ledger.
struct Pushers<'a> {
    ledger: Option<&'a SqliteLedger>,
    devices: &'a [DeviceConfig],
}

/// Lets every sink finish the cycle, and has the devices apply the user switches the
/// sinks ask for (pushing terminals: queued as commands).
async fn finish_sinks(
    sinks: &[SinkSlot],
    devices: &mut [&mut DeviceSlot],
    pushers: Pushers<'_>,
    settings: &SyncSettings,
    report: &mut CycleReport,
) {
    let mut switches: Vec<UserSwitch> = Vec::new();
    for (slot, sink_report) in sinks.iter().zip(report.sinks.iter_mut()) {
        let Some(sink) = slot.sink() else { continue };
        let end = sink.finish_cycle(&report.devices).await;
        sink_report.notes.extend(end.notes);
        switches.extend(end.switches);
    }
    if switches.is_empty() {
        return;
    }
    let log = SwitchLog::in_dir(&settings.output_dir);
    for device in devices.iter_mut() {
        let mine: Vec<UserSwitch> = switches
            .iter()
            .filter(|switch| *switch.device == *device.config.name)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let note = device.source.switch_users(&mine, &log).await;
        add_note(report, &device.config.name, note);
    }
    let Some(ledger) = pushers.ledger else {
        return;
    };
    for device in pushers.devices {
        let Some(serial) = device.source.pushes() else {
            continue;
        };
        let mine: Vec<UserSwitch> = switches
            .iter()
            .filter(|switch| *switch.device == *device.name)
            .cloned()
            .collect();
        if mine.is_empty() {
            continue;
        }
        let note = match crate::adms::user_control::queue_switches(
            ledger,
            &device.name,
            serial,
            &mine,
            &log,
            false,
        )
        .await
        {
            Ok(tally) => crate::adms::user_control::describe(&tally),
            Err(problem) => format!(
                "user control: {} switch(es) not queued: {problem}",
                mine.len()
            ),
        };
        add_note(report, &device.name, note);
    }
}

/// Adds `note` to the summary row of the device named `name`.
fn add_note(report: &mut CycleReport, name: &str, note: String) {
    if let Some(device_report) = report.devices.iter_mut().find(|read| read.name == name) {
        device_report.note = Some(match device_report.note.take() {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note,
        });
    }
}
