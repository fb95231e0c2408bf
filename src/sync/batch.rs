//! One batch from one device: normalize → quarantine → dedup → every sink → ledger.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::Utc;

use super::observer::CycleObserver;
use crate::audit::AuditLog;
use crate::cache::DedupCache;
use crate::crash_point;
use crate::normalize::Normalizer;
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
    /// Writes an entry to the quarantine file. `Some(true)` if it is reported for the
    /// first time, `None` if it could not be written down.
    fn quarantine(&mut self, entry: &QuarantineEntry) -> Option<bool> {
        match self.quarantine.record(entry) {
            Ok(new) => {
                if new {
                    tracing::warn!(
                        device = %entry.device,
                        record = %entry.source_key,
                        "quarantined: {}",
                        entry.reason
                    );
                }
                Some(new)
            }
            Err(error) => {
                self.problem(format!(
                    "cannot write the quarantine file {}: {error}",
                    self.quarantine.path().display()
                ));
                None
            }
        }
    }

    /// Every sink acknowledged `punch`: cache it, and list it in the audit file if some
    /// sink `written` it now (the audit file lists what this tool wrote).
    fn acknowledge(&mut self, punch: &Punch, written: bool) -> bool {
        if written && let Err(error) = self.audit.append(punch) {
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
    pub observer: &'a dyn CycleObserver,
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
        let sorted = self.sort(device, batch, report);
        if self.dry_run {
            let mut ledger = self.ledger();
            ledger.would_upload += sorted.punches.len() as u64;
            let room = PREVIEW_LIMIT.saturating_sub(ledger.preview.len());
            ledger
                .preview
                .extend(sorted.punches.iter().take(room).map(preview_row));
            return sorted.unhandled;
        }
        if sorted.punches.is_empty() {
            return sorted.unhandled;
        }
        let outcomes: Vec<Vec<SinkOutcome>> =
            futures::future::join_all(self.sinks.iter().map(|sink| sink.deliver(&sorted.punches)))
                .await;
        crash_point::reached(crash_point::AFTER_SINK_WRITE);
        self.record(sorted, &outcomes, report)
    }

    /// Normalizes the batch, quarantines what is implausible, and keeps the punches
    /// neither the cache nor this batch has seen.
    fn sort(
        &self,
        device: &Arc<DeviceLabel>,
        batch: Vec<Fetched>,
        report: &mut DeviceReport,
    ) -> Sorted {
        let now_local = Utc::now().with_timezone(&device.timezone).naive_local();
        let mut sorted = Sorted::default();
        let mut first_of: HashMap<PunchId, usize> = HashMap::new();
        let mut ledger = self.ledger();
        for (offset, fetched) in batch.into_iter().enumerate() {
            report.fetched += 1;
            let punch = match self.normalizer.normalize(device, now_local, fetched) {
                Ok(punch) => punch,
                Err(entry) => {
                    report.quarantined += 1;
                    match ledger.quarantine(&entry) {
                        Some(new) => report.newly_quarantined += u64::from(new),
                        None => sorted.unhandled.push(offset),
                    }
                    continue;
                }
            };
            if ledger.cache.contains(&punch.id) {
                report.already += 1;
            } else if let Some(&first) = first_of.get(&punch.id) {
                report.already += 1;
                sorted.repeats.push((offset, first));
            } else {
                first_of.insert(punch.id.clone(), sorted.punches.len());
                sorted.offsets.push(offset);
                sorted.punches.push(punch);
            }
        }
        report.new += sorted.punches.len() as u64;
        sorted
    }

    /// Records what every sink acknowledged; returns the offsets to read again.
    fn record(
        &self,
        sorted: Sorted,
        outcomes: &[Vec<SinkOutcome>],
        report: &mut DeviceReport,
    ) -> Vec<usize> {
        let Sorted {
            punches,
            offsets,
            repeats,
            mut unhandled,
        } = sorted;
        let mut handled = vec![false; punches.len()];
        let mut delivered = 0;
        let mut ledger = self.ledger();
        for (index, punch) in punches.iter().enumerate() {
            let mut failed = false;
            let mut written = false;
            let mut present = false;
            let mut rejection = None;
            let mut withheld = Vec::new();
            for (sink_index, sink_outcomes) in outcomes.iter().enumerate() {
                let outcome = sink_outcomes.get(index).cloned().unwrap_or_else(|| {
                    SinkOutcome::Failed("the sink gave no answer for this punch".into())
                });
                count(&mut ledger.sinks[sink_index], &outcome, punch);
                let sink = self.sinks[sink_index].name();
                match outcome {
                    SinkOutcome::Failed(_) => failed = true,
                    SinkOutcome::Rejected(reason) => {
                        rejection = Some(format!("rejected by sink {sink}: {reason}"));
                    }
                    SinkOutcome::Unmapped(reason) => {
                        rejection = Some(format!("unmapped in sink {sink}: {reason}"));
                    }
                    SinkOutcome::Withheld(reason) => {
                        withheld.push((sink, format!("withheld by sink {sink}: {reason}")));
                    }
                    SinkOutcome::Delivered => written = true,
                    SinkOutcome::AlreadyPresent => present = true,
                    SinkOutcome::Skipped => {}
                }
            }
            handled[index] = if failed {
                report.not_delivered += 1;
                false
            } else if let Some(reason) = rejection {
                report.rejected += 1;
                ledger
                    .quarantine(&sink_entry(punch, "rejected", reason))
                    .is_some()
            } else if withheld.into_iter().all(|(sink, reason)| {
                let entry = sink_entry(punch, &format!("withheld-{sink}"), reason);
                ledger.quarantine(&entry).is_some()
            }) && ledger.acknowledge(punch, written)
            {
                if written {
                    report.delivered += 1;
                    delivered += 1;
                } else if present {
                    report.already_in_sinks += 1;
                }
                true
            } else {
                report.not_delivered += 1;
                false
            };
        }
        drop(ledger);
        if delivered > 0 {
            self.observer.delivered(delivered);
        }

        let not_acknowledged = handled
            .iter()
            .zip(&offsets)
            .filter(|(handled, _)| !**handled);
        unhandled.extend(not_acknowledged.map(|(_, offset)| *offset));
        let repeats_of_failures = repeats.into_iter().filter(|(_, first)| !handled[*first]);
        unhandled.extend(repeats_of_failures.map(|(offset, _)| offset));
        unhandled
    }
}

/// A batch after normalizing and deduplicating.
#[derive(Default)]
struct Sorted {
    /// New punches, each ID once.
    punches: Vec<Punch>,
    /// Each punch's offset in the batch.
    offsets: Vec<usize>,
    /// `(offset, index into punches)` of repeats of an ID inside the batch, which
    /// share the first one's fate.
    repeats: Vec<(usize, usize)>,
    /// Offsets already known to need another read (quarantine not writable).
    unhandled: Vec<usize>,
}

/// A quarantine entry for a punch a sink refused or withheld (`what` tells them apart
/// in the key, so each is reported once).
fn sink_entry(punch: &Punch, what: &str, reason: String) -> QuarantineEntry {
    QuarantineEntry {
        source_key: format!("{}#{what}", punch.source_key),
        device: punch.device.name.to_string(),
        reason,
        record: serde_json::to_value(preview_row(punch)).unwrap_or_default(),
    }
}

fn count(report: &mut SinkReport, outcome: &SinkOutcome, punch: &Punch) {
    match outcome {
        SinkOutcome::Delivered => report.delivered += 1,
        SinkOutcome::AlreadyPresent => report.already += 1,
        SinkOutcome::Skipped | SinkOutcome::Withheld(_) => report.skipped += 1,
        SinkOutcome::Rejected(_) => report.rejected += 1,
        SinkOutcome::Unmapped(_) => {
            report.unmapped += 1;
            if let Err(at) = report.unmapped_users.binary_search(&punch.user_id) {
                report.unmapped_users.insert(at, punch.user_id.clone());
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::punch::{IdScheme, SourceKind};
    use crate::source::{RecordTime, SourceRecord};
    use async_trait::async_trait;
    use chrono::NaiveDateTime;
    use std::time::Duration;

    /// Answers by user id: "fail" fails, "reject" is rejected, "stranger" is unmapped,
    /// "ignored" skipped, "odd" withheld, "there" already present, anything else
    /// delivered.
    struct ScriptedSink;

    #[async_trait]
    impl Sink for ScriptedSink {
        fn name(&self) -> &'static str {
            "scripted"
        }
        fn target(&self) -> String {
            "memory".into()
        }
        async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome> {
            batch
                .iter()
                .map(|punch| match punch.user_id.as_str() {
                    "fail" => SinkOutcome::Failed("down".into()),
                    "reject" => SinkOutcome::Rejected("inactive employee".into()),
                    "stranger" => SinkOutcome::Unmapped("no such employee".into()),
                    "ignored" => SinkOutcome::Skipped,
                    "odd" => SinkOutcome::Withheld("no such staffId".into()),
                    "there" => SinkOutcome::AlreadyPresent,
                    _ => SinkOutcome::Delivered,
                })
                .collect()
        }
    }

    fn fetched(user: &str, second: u32, state: i32) -> Fetched {
        let time = format!("2026-01-05 08:00:{second:02}");
        Fetched::Record(SourceRecord {
            source: SourceKind::Biotime,
            source_key: format!("k-{user}-{second}-{state}"),
            serial: "SN".into(),
            terminal: "".into(),
            user_id: user.into(),
            time: RecordTime::Valid(
                NaiveDateTime::parse_from_str(&time, "%Y-%m-%d %H:%M:%S").unwrap(),
            ),
            state,
            verify_mode: 1,
            work_code: String::new(),
        })
    }

    #[tokio::test]
    async fn only_what_every_sink_acknowledged_is_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let mut cache = DedupCache::load(&dir.path().join("cache.json")).unwrap();
        let mut quarantine = Quarantine::open(&dir.path().join("q.jsonl"), true).unwrap();
        let normalizer = Normalizer {
            scheme: IdScheme::LegacyMd5,
            max_future_skew: Duration::from_secs(86_400),
        };
        let sinks: Vec<Box<dyn Sink>> = vec![Box::new(ScriptedSink)];

        let context = CycleContext {
            normalizer: &normalizer,
            sinks: &sinks,
            dry_run: false,
            observer: &crate::sync::Unobserved,
            ledger: Mutex::new(Ledger {
                cache: &mut cache,
                quarantine: &mut quarantine,
                audit: AuditLog::new(dir.path(), chrono::Local::now(), true),
                sinks: vec![SinkReport::default()],
                problems: Vec::new(),
                would_upload: 0,
                preview: Vec::new(),
            }),
        };
        let device = Arc::new(DeviceLabel {
            name: "Office".into(),
            timezone: chrono_tz::UTC,
        });
        let batch = vec![
            fetched("ok", 1, 0),
            fetched("fail", 2, 0),
            fetched("fail", 2, 1), // legacy ID repeats offset 1: shares its failure
            fetched("reject", 3, 0),
            fetched("", 4, 0),   // empty PIN: quarantined
            fetched("ok", 1, 1), // legacy ID repeats offset 0: shares its success
            fetched("stranger", 5, 0),
            fetched("ignored", 6, 2),
            fetched("odd", 7, 0),
            fetched("there", 8, 0),
        ];
        let mut report = DeviceReport::default();

        let unhandled = context.process(&device, batch, &mut report).await;

        assert_eq!(
            unhandled,
            vec![1, 2],
            "the failed punch and its repeat are read again"
        );
        assert_eq!(
            (
                report.fetched,
                report.new,
                report.already,
                report.quarantined
            ),
            (10, 7, 2, 1)
        );
        assert_eq!(
            (
                report.delivered,
                report.already_in_sinks,
                report.rejected,
                report.not_delivered
            ),
            (1, 1, 2, 1),
            "skipped and withheld punches are neither delivered nor refused; an unmapped one counts as rejected"
        );
        let ledger = context.ledger.into_inner().unwrap();
        assert_eq!(
            ledger.cache.len(),
            4,
            "only the acknowledged punches (delivered, present, skipped, withheld) are cached"
        );
        let sink = &ledger.sinks[0];
        assert_eq!(
            (
                sink.delivered,
                sink.skipped,
                sink.rejected,
                sink.unmapped,
                sink.failed
            ),
            (1, 2, 1, 1, 1)
        );
        assert_eq!(sink.unmapped_users, vec!["stranger".to_owned()]);
        let quarantined = std::fs::read_to_string(dir.path().join("q.jsonl")).unwrap();
        assert_eq!(quarantined.lines().count(), 4);
        assert!(quarantined.contains("withheld by sink scripted: no such staffId"));
        assert!(quarantined.contains("rejected by sink scripted: inactive employee"));
        assert!(quarantined.contains("unmapped in sink scripted: no such employee"));
        assert!(quarantined.contains("empty user id"));
    }
}
