//! One batch from one device: normalize → quarantine → dedup → every sink → ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;

use crate::audit::AuditLog;
use crate::cache::DedupCache;
use crate::crash_point;
use crate::normalize::Normalizer;
use crate::progress::Progress;
use crate::punch::{DeviceLabel, Punch, PunchId};
use crate::quarantine::{Quarantine, QuarantineEntry};
use crate::report::{DeviceReport, PreviewRow, SinkReport};
use crate::sink::{Sink, SinkOutcome};
use crate::source::Fetched;

/// Dry runs keep this many punches to show.
const PREVIEW_LIMIT: usize = 1000;

/// What the cycle records as batches are acknowledged. Shared by the concurrently
/// running devices behind one mutex, never held across an await.
pub(super) struct Ledger<'a> {
    pub cache: &'a mut DedupCache,
    pub quarantine: &'a mut Quarantine,
    pub audit: AuditLog,
    pub sinks: Vec<SinkReport>,
    pub problems: Vec<String>,
    pub would_upload: u64,
    pub preview: Vec<PreviewRow>,
}

impl Ledger<'_> {
    /// Records a quarantined record; `false` if it could not be written down.
    fn quarantine(&mut self, entry: &QuarantineEntry, report: &mut DeviceReport) -> bool {
        report.quarantined += 1;
        match self.quarantine.record(entry) {
            Ok(true) => {
                report.newly_quarantined += 1;
                tracing::warn!(
                    device = %entry.device,
                    record = %entry.source_key,
                    "quarantined: {}",
                    entry.reason
                );
                true
            }
            Ok(false) => true,
            Err(error) => {
                self.problem(format!(
                    "cannot write the quarantine file {}: {error}",
                    self.quarantine.path().display()
                ));
                false
            }
        }
    }

    /// Every sink acknowledged `punch`: cache it and list it in the audit file.
    fn acknowledge(&mut self, punch: &Punch) -> bool {
        if let Err(error) = self.audit.append(punch) {
            self.problem(format!("cannot write the audit file: {error}"));
            return false;
        }
        self.cache.insert(punch.id.clone());
        true
    }

    fn problem(&mut self, problem: String) {
        if !self.problems.contains(&problem) {
            tracing::error!("{problem}");
            self.problems.push(problem);
        }
    }
}

pub(super) struct CycleContext<'a> {
    pub normalizer: &'a Normalizer,
    pub sinks: &'a [Box<dyn Sink>],
    pub dry_run: bool,
    pub ledger: Mutex<Ledger<'a>>,
    pub progress: &'a Progress,
}

impl<'a> CycleContext<'a> {
    fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger<'a>> {
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Processes one batch; returns the offsets (within it) of records that were not
    /// acknowledged and must be read again.
    pub async fn process(
        &self,
        device: &Arc<DeviceLabel>,
        batch: Vec<Fetched>,
        report: &mut DeviceReport,
    ) -> Vec<usize> {
        let now_local = Utc::now().with_timezone(&device.timezone).naive_local();
        let mut unhandled = Vec::new();
        let mut offsets = Vec::new();
        let mut punches: Vec<Punch> = Vec::new();
        // Repeats of an ID inside this batch share the first one's fate.
        let mut repeats: Vec<(usize, usize)> = Vec::new();
        {
            let mut ledger = self.ledger();
            let mut first_of: HashMap<PunchId, usize> = HashMap::new();
            for (offset, fetched) in batch.into_iter().enumerate() {
                report.fetched += 1;
                let punch = match self.normalizer.normalize(device, now_local, fetched) {
                    Ok(punch) => punch,
                    Err(entry) => {
                        if !ledger.quarantine(&entry, report) {
                            unhandled.push(offset);
                        }
                        continue;
                    }
                };
                if ledger.cache.contains(&punch.id) {
                    report.already += 1;
                } else if let Some(&first) = first_of.get(&punch.id) {
                    report.already += 1;
                    repeats.push((offset, first));
                } else {
                    first_of.insert(punch.id.clone(), punches.len());
                    offsets.push(offset);
                    punches.push(punch);
                }
            }
            report.new += punches.len() as u64;
            if self.dry_run {
                ledger.would_upload += punches.len() as u64;
                let room = PREVIEW_LIMIT.saturating_sub(ledger.preview.len());
                ledger
                    .preview
                    .extend(punches.iter().take(room).map(preview_row));
                return unhandled;
            }
        }
        if punches.is_empty() {
            return unhandled;
        }

        let outcomes: Vec<Vec<SinkOutcome>> =
            futures::future::join_all(self.sinks.iter().map(|sink| sink.deliver(&punches))).await;
        crash_point::reached(crash_point::AFTER_SINK_WRITE);

        let mut handled = vec![false; punches.len()];
        let mut delivered = 0;
        let mut ledger = self.ledger();
        for (index, punch) in punches.iter().enumerate() {
            let mut failed = false;
            let mut rejection = None;
            for (sink_index, sink_outcomes) in outcomes.iter().enumerate() {
                let outcome = sink_outcomes.get(index).cloned().unwrap_or_else(|| {
                    SinkOutcome::Failed("the sink gave no answer for this punch".into())
                });
                count(&mut ledger.sinks[sink_index], &outcome);
                match outcome {
                    SinkOutcome::Failed(_) => failed = true,
                    SinkOutcome::Rejected(reason) => {
                        rejection = Some(format!(
                            "rejected by sink {}: {reason}",
                            self.sinks[sink_index].name()
                        ));
                    }
                    SinkOutcome::Delivered | SinkOutcome::AlreadyPresent => {}
                }
            }
            handled[index] = if failed {
                report.not_delivered += 1;
                false
            } else if let Some(reason) = rejection {
                report.rejected += 1;
                let entry = QuarantineEntry {
                    source_key: format!("{}#rejected", punch.source_key),
                    device: punch.device.name.to_string(),
                    reason,
                    record: serde_json::to_value(preview_row(punch)).unwrap_or_default(),
                };
                ledger.quarantine(&entry, report)
            } else if ledger.acknowledge(punch) {
                report.delivered += 1;
                delivered += 1;
                true
            } else {
                report.not_delivered += 1;
                false
            };
        }
        drop(ledger);
        self.progress.delivered(delivered);

        unhandled.extend(
            handled
                .iter()
                .zip(&offsets)
                .filter(|(handled, _)| !**handled)
                .map(|(_, offset)| *offset),
        );
        unhandled.extend(
            repeats
                .into_iter()
                .filter(|(_, first)| !handled[*first])
                .map(|(offset, _)| offset),
        );
        unhandled
    }
}

fn count(report: &mut SinkReport, outcome: &SinkOutcome) {
    match outcome {
        SinkOutcome::Delivered => report.delivered += 1,
        SinkOutcome::AlreadyPresent => report.already += 1,
        SinkOutcome::Rejected(_) => report.rejected += 1,
        SinkOutcome::Failed(reason) => {
            report.failed += 1;
            report.last_failure = Some(reason.clone());
        }
    }
}

fn preview_row(punch: &Punch) -> PreviewRow {
    PreviewRow {
        id: punch.id.to_string(),
        device: punch.device.name.to_string(),
        user_id: punch.user_id.clone(),
        local_time: punch.local_time_text(),
        state: punch.state,
        verify_mode: punch.verify_mode,
    }
}
