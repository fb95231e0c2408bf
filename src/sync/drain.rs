//! Draining one sink: its open punches, oldest first, from the ledger to the sink in
//! batches, each answer recorded back in the ledger. Sinks drain at the same time and
//! each on its own, so one that is down or slow holds back neither reading nor the
//! others; what it could not take waits in the ledger, due again after a pause that
//! grows with each failed attempt.
//!
//! The first batch is small: a sink that is down costs one small failed attempt per
//! cycle, not thousands of punches' worth of timeouts. A batch in which every punch
//! failed ends the sink's drain for this cycle.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::future::OptionFuture;
use futures::stream::FuturesUnordered;

use super::observer::CycleObserver;
use crate::crash_point;
use crate::ledger::export::Exporter;
use crate::ledger::{CycleId, Ledger, LedgerError, Queued, Seq, SinkId};
use crate::punch::Punch;
use crate::quarantine::{Quarantine, QuarantineEntry};
use crate::report::SinkReport;
use crate::sink::{Sink, SinkOutcome};

/// Punches handed to a sink first, while it is not known to be up.
const PROBE: usize = 100;
/// Punches handed to a sink at once after that.
const BATCH: usize = 5_000;

/// What happened to each punch drained this cycle, across all sinks, for the devices'
/// rows of the summary: per punch a device (by its place in `devices`) and flags.
#[derive(Default)]
pub(super) struct Tally {
    punches: HashMap<Seq, (u16, u8)>,
    devices: Vec<Arc<str>>,
}

const WRITTEN: u8 = 1;
const PRESENT: u8 = 2;
const REFUSED: u8 = 4;
const FAILED: u8 = 8;

/// Per device: (written by some sink, already there everywhere, refused by some sink).
pub(super) type DeviceTally = HashMap<Arc<str>, (u64, u64, u64)>;

impl Tally {
    fn note(&mut self, punch: &Punch, seq: Seq, outcome: &SinkOutcome) {
        let flag = match outcome {
            SinkOutcome::Delivered => WRITTEN,
            SinkOutcome::AlreadyPresent | SinkOutcome::Skipped | SinkOutcome::Withheld(_) => {
                PRESENT
            }
            SinkOutcome::Rejected(_) | SinkOutcome::Unmapped(_) => REFUSED,
            SinkOutcome::Failed(_) => FAILED,
        };
        let device = match self
            .devices
            .iter()
            .position(|name| *name == punch.device.name)
        {
            Some(at) => at,
            None => {
                self.devices.push(Arc::clone(&punch.device.name));
                self.devices.len() - 1
            }
        };
        self.punches
            .entry(seq)
            .or_insert((u16::try_from(device).unwrap_or(u16::MAX), 0))
            .1 |= flag;
    }

    pub fn by_device(self) -> DeviceTally {
        let mut devices: DeviceTally = HashMap::new();
        for (device, flags) in self.punches.into_values() {
            let Some(name) = self.devices.get(usize::from(device)) else {
                continue;
            };
            let counts = devices.entry(Arc::clone(name)).or_default();
            // As before the ledger: a punch some sink refused counts as refused, even if
            // another took it.
            if flags & REFUSED != 0 {
                counts.2 += 1;
            } else if flags & WRITTEN != 0 {
                counts.0 += 1;
            } else if flags & (PRESENT | FAILED) == PRESENT {
                counts.1 += 1;
            }
        }
        devices
    }
}

/// The ledger's answer to a read of due punches.
type Reading = Result<Vec<Queued>, LedgerError>;

/// A batch the sink answered: its punches, the answers, and whether they are recorded.
struct Written {
    punches: Vec<Punch>,
    answers: Vec<(Seq, SinkOutcome)>,
    settled: Result<(), LedgerError>,
}

/// What the sinks draining this cycle share.
pub(super) struct Drain<'a, 'x> {
    pub ledger: &'a dyn Ledger,
    pub cycle: CycleId,
    /// Failed punches due by then are tried again; `None` (a process's first cycle):
    /// all of them.
    pub due_by: Option<DateTime<Utc>>,
    pub observer: &'a dyn CycleObserver,
    pub tally: Mutex<Tally>,
    pub quarantine: &'a Mutex<&'a mut Quarantine>,
    /// Takes what every sink has, as batches settle.
    pub exporter: Option<&'a tokio::sync::Mutex<Exporter<'x>>>,
}

impl Drain<'_, '_> {
    /// Drains `sink` (the ledger's `id` for it) as far as it takes punches; counts
    /// into `report`. Returns problems that are not the sink's answers.
    ///
    /// The ledger reads the next batch while the sink writes, and a sink that can
    /// write several batches at once (a database's pool of connections) is handed up
    /// to that many; each batch is settled in the ledger as soon as its answers come
    /// back, in whatever order they come.
    pub async fn drain(&self, sink: &dyn Sink, id: SinkId, report: &mut SinkReport) -> Vec<String> {
        let mut problems = Vec::new();
        let width = sink.batches_at_once().max(1);
        let mut after = 0;
        let mut size = PROBE;
        // Whether the ledger may hold more for this sink.
        let mut more = true;
        let mut reading: Option<Pin<Box<dyn Future<Output = Reading> + '_>>> = None;
        let mut read: Option<Vec<Queued>> = None;
        let mut writing = FuturesUnordered::new();
        // A stop request does not end it: what was read is still delivered.
        loop {
            if writing.len() < width
                && let Some(queued) = read.take()
            {
                writing.push(self.batch(sink, id, queued));
            }
            // The probe goes alone: nothing more is read until it is answered.
            let probing = size == PROBE && !writing.is_empty();
            if more && reading.is_none() && read.is_none() && !probing {
                reading = Some(Box::pin(self.ledger.due(id, after, size, self.due_by)));
            }
            if writing.is_empty() && reading.is_none() {
                break;
            }
            tokio::select! {
                Some(queued) = OptionFuture::from(reading.as_mut()), if reading.is_some() => {
                    reading = None;
                    match queued {
                        Ok(queued) => {
                            more = queued.len() >= size;
                            match queued.last() {
                                Some(last) => after = last.seq,
                                None => continue,
                            }
                            read = Some(queued);
                        }
                        Err(error) => {
                            problems.push(error.to_string());
                            more = false;
                        }
                    }
                }
                Some(written) = writing.next(), if !writing.is_empty() => {
                    if let Err(error) = written.settled {
                        // They stay open and are sent again; the sink finds them there.
                        problems.push(format!(
                            "{error}; the answers of sink {} for {} punch(es) are not recorded, they are sent again",
                            report.name,
                            written.answers.len()
                        ));
                        (more, read, reading) = (false, None, None);
                        continue;
                    }
                    self.count(&written.punches, &written.answers, report);
                    let all_failed = written
                        .answers
                        .iter()
                        .all(|(_, outcome)| matches!(outcome, SinkOutcome::Failed(_)));
                    if all_failed {
                        (more, read, reading) = (false, None, None);
                    } else {
                        size = BATCH;
                    }
                }
                else => break,
            }
        }
        problems
    }

    /// One batch: written by the sink, its answers settled in the ledger and, once
    /// every sink has them, its punches handed to the export.
    async fn batch(&self, sink: &dyn Sink, id: SinkId, queued: Vec<Queued>) -> Written {
        let (seqs, punches): (Vec<Seq>, Vec<Punch>) = queued
            .into_iter()
            .map(|queued| (queued.seq, queued.punch))
            .unzip();
        let mut outcomes = sink.deliver(&punches).await;
        outcomes.resize_with(punches.len(), || {
            SinkOutcome::Failed("the sink gave no answer for this punch".into())
        });
        crash_point::reached(crash_point::AFTER_SINK_WRITE);
        let answers: Vec<(Seq, SinkOutcome)> = seqs.iter().copied().zip(outcomes).collect();
        let settled = self
            .ledger
            .settle(id, self.cycle, &answers, Utc::now())
            .await;
        if settled.is_ok()
            && let Some(exporter) = self.exporter
        {
            exporter.lock().await.take(&seqs, &punches).await;
        }
        Written {
            punches,
            answers,
            settled,
        }
    }

    fn count(&self, punches: &[Punch], answers: &[(Seq, SinkOutcome)], report: &mut SinkReport) {
        let mut delivered = 0;
        let mut tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        for (punch, (seq, outcome)) in punches.iter().zip(answers) {
            tally.note(punch, *seq, outcome);
            match outcome {
                SinkOutcome::Delivered => {
                    report.delivered += 1;
                    delivered += 1;
                }
                SinkOutcome::AlreadyPresent => report.already += 1,
                SinkOutcome::Skipped => report.skipped += 1,
                SinkOutcome::Withheld(reason) => {
                    report.skipped += 1;
                    self.quarantine(punch, &report.name, "withheld by", reason);
                }
                SinkOutcome::Rejected(reason) => {
                    report.rejected += 1;
                    self.quarantine(punch, &report.name, "rejected by", reason);
                }
                SinkOutcome::Unmapped(reason) => {
                    report.unmapped += 1;
                    if let Err(at) = report.unmapped_users.binary_search(&punch.user_id) {
                        report.unmapped_users.insert(at, punch.user_id.clone());
                    }
                    self.quarantine(punch, &report.name, "unmapped in", reason);
                }
                SinkOutcome::Failed(reason) => {
                    report.failed += 1;
                    report.last_failure = Some(reason.clone());
                }
            }
        }
        drop(tally);
        if delivered > 0 {
            self.observer.delivered(delivered);
        }
    }

    /// Lists a punch a sink refused or withheld in the quarantine file, for a person to
    /// read (the ledger holds the reason too; `status` and `retry` work from there).
    /// `what`: "rejected by", "unmapped in", "withheld by".
    fn quarantine(&self, punch: &Punch, sink: &str, what: &str, reason: &str) {
        let kind = what.split(' ').next().unwrap_or(what);
        let entry = QuarantineEntry {
            source_key: format!("{}#{kind}-{sink}", punch.source_key),
            device: punch.device.name.to_string(),
            reason: format!("{what} sink {sink}: {reason}"),
            record: serde_json::to_value(super::read::preview_row(punch)).unwrap_or_default(),
        };
        let mut quarantine = self
            .quarantine
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Err(error) = quarantine.record(&entry) {
            tracing::warn!(
                "cannot write the quarantine file {}: {error}",
                quarantine.path().display()
            );
        }
    }
}
