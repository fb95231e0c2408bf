//! Reading one device into the ledger: fetch → normalize (quarantine what is
//! implausible) → journal, batch by batch while the device is still sending, so memory
//! holds a few pages and not the whole backlog.
//!
//! Each batch is journaled in one transaction (its punches, a pending delivery for
//! every sink, its quarantine entries); the last one carries the device's new cursor,
//! so the cursor never moves past a punch the ledger does not hold. A batch that cannot
//! be journaled is left out of the cursor and read again next cycle.
//!
//! A dry run journals nothing: it asks the ledger (opened read-only) or, before there
//! is one, the JSON cache which punches are new.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use serde_json::Value;
use tokio::sync::mpsc;

use super::observer::CycleObserver;
use crate::cache::DedupCache;
use crate::ledger::{DeviceRecord, Journal, Ledger, SinkId};
use crate::normalize::Normalizer;
use crate::punch::{DeviceLabel, Punch};
use crate::quarantine::{Quarantine, QuarantineEntry};
use crate::report::{DeviceReport, PreviewRow};
use crate::shutdown::Shutdown;
use crate::source::{FetchEnd, FetchPlan, Fetched, ReadProgress, Settlement, Source};

/// Dry runs keep this many punches to show.
const PREVIEW_LIMIT: usize = 1000;
/// How long past its deadline a source may take to stop cleanly before it is dropped.
const READ_GRACE: Duration = Duration::from_secs(120);
/// Pages a source may read ahead of journaling.
const QUEUED_PAGES: usize = 8;
/// Records journaled in one transaction, at most (plus one page).
const MAX_BATCH: usize = 5_000;

/// Where a dry run learns which punches are new.
pub(super) enum Known<'a> {
    Ledger(&'a dyn Ledger),
    Cache(&'a DedupCache),
}

/// What reading needs, shared by the devices read at the same time.
pub(super) struct Reader<'a> {
    pub normalizer: &'a Normalizer,
    /// Where punches are journaled; `None` for a dry run.
    pub ledger: Option<&'a dyn Ledger>,
    /// The sinks every new punch is queued for.
    pub sinks: &'a [SinkId],
    /// A dry run's view of what is known.
    pub known: Option<Known<'a>>,
    pub shared: Mutex<ReadShared<'a>>,
}

/// What the devices being read write to together (never held across an await).
pub(super) struct ReadShared<'a> {
    pub quarantine: &'a mut Quarantine,
    pub problems: Vec<String>,
    pub would_upload: u64,
    pub preview: Vec<PreviewRow>,
}

impl ReadShared<'_> {
    pub fn problem(&mut self, problem: String) {
        if !self.problems.contains(&problem) {
            tracing::error!("{problem}");
            self.problems.push(problem);
        }
    }
}

/// How one device's read went.
pub(super) struct DeviceRead {
    pub report: DeviceReport,
    /// The source moved its cursor past punches the ledger did not take: it must be
    /// opened again from the ledger's cursor before its next read.
    pub reopen: bool,
}

/// A batch after normalizing: each ID once, and what was quarantined.
#[derive(Default)]
struct Sorted {
    punches: Vec<Punch>,
    quarantine: Vec<QuarantineEntry>,
    /// Where the batch starts among everything the source sent, and how long it is.
    start: usize,
    len: usize,
}

impl<'a> Reader<'a> {
    fn shared(&self) -> std::sync::MutexGuard<'_, ReadShared<'a>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads `source` (per `since`, `--since`) into the ledger.
    pub async fn read(
        &self,
        source: &mut dyn Source,
        since: Option<Duration>,
        shutdown: &Shutdown,
        max_read_time: Duration,
        observer: &Arc<dyn CycleObserver>,
    ) -> DeviceRead {
        let label = Arc::clone(source.label());
        let record = DeviceRecord {
            name: label.name.to_string(),
            kind: source.kind().to_owned(),
            location: source.location(),
        };
        let mut report = DeviceReport::new(&record.name, &record.kind, record.location.clone());
        let who = format!("device '{}' ({})", label.name, record.location);
        let mut plan = FetchPlan::new(since, shutdown.clone(), max_read_time);
        let watcher = Arc::clone(observer);
        let name = label.name.to_string();
        plan.progress = ReadProgress::new(move |done, total, unit| {
            watcher.reading(&name, done, total, unit);
        });
        let (sender, mut receiver) = mpsc::channel::<Vec<Fetched>>(QUEUED_PAGES);
        let mut unhandled = Vec::new();
        let mut held: Option<Sorted> = None;
        let plan = &plan;
        let fetch = async {
            let sender = sender;
            // Sources stop at the deadline themselves, cleaning up after them (a
            // terminal is enabled again); this is the backstop if one does not.
            let backstop = plan.deadline + READ_GRACE;
            tokio::time::timeout_at(backstop, source.fetch(plan, &sender))
                .await
                .unwrap_or_else(|_| Err(plan.overran(&who)))
        };
        let journal = async {
            let mut position = 0;
            while let Some(mut batch) = receiver.recv().await {
                // Take whatever else is waiting: when the device is faster than the
                // disk, transactions grow and each carries more.
                while batch.len() < MAX_BATCH {
                    match receiver.try_recv() {
                        Ok(more) => batch.extend(more),
                        Err(_) => break,
                    }
                }
                let sorted = self.sort(&label, batch, position, &mut report);
                position += sorted.len;
                // The last batch waits to go with the cursor.
                if let Some(previous) = held.replace(sorted) {
                    self.journal(&record, previous, None, &mut report, &mut unhandled)
                        .await;
                }
            }
        };
        let (fetched, ()) = tokio::join!(fetch, journal);
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
        let Some(ledger) = self.ledger else {
            if let Some(last) = held {
                self.preview(last, &mut report).await;
            }
            source.settle(&Settlement {
                discard: true,
                ..Settlement::default()
            });
            return DeviceRead {
                report,
                reopen: false,
            };
        };
        let cursor = source.settle(&Settlement {
            complete,
            unhandled,
            discard: false,
        });
        let last = held.unwrap_or_default();
        let journaled = self
            .journal(&record, last, cursor.as_ref(), &mut report, &mut Vec::new())
            .await;
        let error = report.error.as_ref().map(|error| error.message.as_str());
        if let Err(problem) = ledger
            .device_read(&record, error, source.facts().as_ref())
            .await
        {
            self.shared().problem(problem.to_string());
        }
        DeviceRead {
            report,
            reopen: !journaled && cursor.is_some(),
        }
    }

    /// Normalizes a batch, quarantining what is implausible and keeping each ID once.
    fn sort(
        &self,
        device: &Arc<DeviceLabel>,
        batch: Vec<Fetched>,
        start: usize,
        report: &mut DeviceReport,
    ) -> Sorted {
        let now_local = Utc::now().with_timezone(&device.timezone).naive_local();
        let mut sorted = Sorted {
            start,
            len: batch.len(),
            ..Sorted::default()
        };
        let mut seen = HashSet::with_capacity(batch.len());
        for fetched in batch {
            report.fetched += 1;
            match self.normalizer.normalize(device, now_local, fetched) {
                Ok(punch) if seen.insert(punch.id.clone()) => sorted.punches.push(punch),
                Ok(_) => report.already += 1,
                Err(entry) => {
                    report.quarantined += 1;
                    sorted.quarantine.push(entry.bounded());
                }
            }
        }
        sorted
    }

    /// Journals a batch (a dry run: counts what is new); returns whether it was stored.
    /// The positions of a batch that was not are added to `unhandled`.
    async fn journal(
        &self,
        device: &DeviceRecord,
        sorted: Sorted,
        cursor: Option<&Value>,
        report: &mut DeviceReport,
        unhandled: &mut Vec<usize>,
    ) -> bool {
        let Some(ledger) = self.ledger else {
            self.preview(sorted, report).await;
            return true;
        };
        let journaled = ledger
            .journal(Journal {
                device,
                punches: &sorted.punches,
                quarantine: &sorted.quarantine,
                cursor,
                sinks: self.sinks,
            })
            .await;
        let mut shared = self.shared();
        match journaled {
            Ok(journaled) => {
                // Punches the JSON cache of an earlier run knew count as known.
                let new = journaled.new - journaled.delivered_before;
                report.new += new;
                report.already += sorted.punches.len() as u64 - new;
                for entry in &sorted.quarantine {
                    match shared.quarantine.record(entry) {
                        Ok(true) => {
                            report.newly_quarantined += 1;
                            tracing::warn!(
                                device = %entry.device,
                                record = %entry.source_key,
                                "quarantined: {}",
                                entry.reason
                            );
                        }
                        Ok(false) => {}
                        Err(error) => {
                            let problem = format!(
                                "cannot write the quarantine file {}: {error} (the ledger holds the entries)",
                                shared.quarantine.path().display()
                            );
                            shared.problem(problem);
                        }
                    }
                }
                true
            }
            Err(error) => {
                shared.problem(format!(
                    "device '{}': {error}; its punches are read again next cycle",
                    device.name
                ));
                unhandled.extend(sorted.start..sorted.start + sorted.len);
                false
            }
        }
    }

    /// A dry run's count and list of what would be uploaded.
    async fn preview(&self, sorted: Sorted, report: &mut DeviceReport) {
        let known = match &self.known {
            Some(Known::Ledger(ledger)) => match ledger.known(&sorted.punches).await {
                Ok(known) => known,
                Err(error) => {
                    self.shared().problem(error.to_string());
                    vec![false; sorted.punches.len()]
                }
            },
            Some(Known::Cache(cache)) => sorted
                .punches
                .iter()
                .map(|punch| cache.contains(&punch.id))
                .collect(),
            None => vec![false; sorted.punches.len()],
        };
        let mut shared = self.shared();
        for (punch, known) in sorted.punches.iter().zip(known) {
            if known {
                report.already += 1;
                continue;
            }
            report.new += 1;
            shared.would_upload += 1;
            if shared.preview.len() < PREVIEW_LIMIT {
                shared.preview.push(preview_row(punch));
            }
        }
        for entry in &sorted.quarantine {
            if let Ok(true) = shared.quarantine.record(entry) {
                report.newly_quarantined += 1;
            }
        }
    }
}

pub(super) fn preview_row(punch: &Punch) -> PreviewRow {
    PreviewRow {
        id: punch.id.to_string(),
        device: punch.device.name.to_string(),
        user_id: punch.user_id.clone(),
        local_time: punch.local_time_text(),
        state: punch.state,
        verify_mode: punch.verify_mode,
    }
}
