//! Incremental reading of BioTime transactions that survives late uploads.
//!
//! BioTime's `start_time`/`end_time` filter `punch_time`, but a terminal that was
//! offline uploads its punches hours or months later, so a punch-time window misses
//! them. Every row does get an `upload_time` and an `id` when it reaches the server, so
//! we read newest upload first (`ordering=-upload_time`) down to a watermark minus an
//! overlap, skip the ids already handled inside that overlap, and stop.
//!
//! The watermark moves only past rows every sink acknowledged: if a row failed, the next
//! watermark is at most that row's upload time, so the next cycle reads it again.
//!
//! If a server ignores `ordering` (upload times not descending within a page), the scan
//! restarts in [`ScanMode::Full`]: every page in the server's default order, filtered by
//! the same rules, with no early stop.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};

use super::transactions::RowPosition;
use crate::source::Settlement;

/// What is persisted between cycles.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watermark {
    /// The server this cursor belongs to; a changed URL starts afresh.
    pub url: String,
    /// Every row uploaded before `max_upload_time - overlap` has been handled.
    pub max_upload_time: Option<NaiveDateTime>,
    /// Rows handled inside the overlap, by id, with their upload times.
    #[serde(default)]
    pub recent: BTreeMap<i64, NaiveDateTime>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanMode {
    /// Newest upload first, stopping below the floor.
    Descending,
    /// The server ignores `ordering`: read everything, filter client-side.
    Full,
    /// `--since`: a punch-time window; the watermark is neither used nor moved.
    Window,
}

/// What to do with a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Send,
    /// Already handled (in the overlap, or earlier in this scan).
    Skip,
    /// Uploaded before the floor: handled in an earlier cycle.
    BelowFloor,
}

/// One cycle's scan of one server.
#[derive(Debug)]
pub struct Scan {
    pub mode: ScanMode,
    floor: Option<NaiveDateTime>,
    seen: HashSet<i64>,
    sent: Vec<RowPosition>,
    max_upload_seen: Option<NaiveDateTime>,
    last_upload: Option<NaiveDateTime>,
}

impl Scan {
    pub fn new(mode: ScanMode, watermark: &Watermark, overlap: Duration) -> Scan {
        let overlap = chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::zero());
        let floor = match mode {
            ScanMode::Window => None,
            _ => watermark.max_upload_time.map(|time| time - overlap),
        };
        Scan {
            mode,
            floor,
            seen: HashSet::new(),
            sent: Vec::new(),
            max_upload_seen: None,
            last_upload: None,
        }
    }

    /// Restarts in full mode, keeping what this cycle already sent.
    pub fn fall_back_to_full(&mut self) {
        self.mode = ScanMode::Full;
        self.last_upload = None;
    }

    /// In descending mode, whether `upload_time` keeps the order (not newer than the
    /// previous row's). Rows without an upload time do not count.
    pub fn keeps_order(&mut self, upload_time: Option<NaiveDateTime>) -> bool {
        if self.mode != ScanMode::Descending {
            return true;
        }
        let Some(upload_time) = upload_time else {
            return true;
        };
        let in_order = self.last_upload.is_none_or(|last| upload_time <= last);
        self.last_upload = Some(upload_time);
        in_order
    }

    pub fn admit(&mut self, position: RowPosition, watermark: &Watermark) -> Admission {
        let below_floor = match (self.floor, position.upload_time) {
            (Some(floor), Some(upload)) => upload < floor,
            _ => false,
        };
        if below_floor {
            return Admission::BelowFloor;
        }
        if self.mode != ScanMode::Window {
            self.max_upload_seen = self.max_upload_seen.max(position.upload_time);
        }
        if let Some(id) = position.id {
            if !self.seen.insert(id) {
                return Admission::Skip;
            }
            if self.mode != ScanMode::Window && watermark.recent.contains_key(&id) {
                return Admission::Skip;
            }
        }
        self.sent.push(position);
        Admission::Send
    }

    /// The watermark after the cycle; `None` when it must not change.
    pub fn settle(
        &self,
        previous: &Watermark,
        settlement: &Settlement,
        overlap: Duration,
    ) -> Option<Watermark> {
        if settlement.discard || self.mode == ScanMode::Window {
            return None;
        }
        let unhandled: HashSet<usize> = settlement.unhandled.iter().copied().collect();
        let mut max_upload_time = previous.max_upload_time;
        if settlement.complete {
            let failed_uploads: Vec<Option<NaiveDateTime>> = unhandled
                .iter()
                .filter_map(|index| self.sent.get(*index))
                .map(|position| position.upload_time)
                .collect();
            let candidate = if failed_uploads.iter().any(Option::is_none) {
                None
            } else {
                let earliest_failure = failed_uploads.into_iter().flatten().min();
                match (self.max_upload_seen, earliest_failure) {
                    (Some(seen), Some(failure)) => Some(seen.min(failure)),
                    (seen, None) => seen,
                    (None, Some(_)) => None,
                }
            };
            max_upload_time = max_upload_time.max(candidate);
        }
        // Without a watermark everything is read anyway: remember nothing.
        let Some(watermark) = max_upload_time else {
            return Some(Watermark {
                url: previous.url.clone(),
                max_upload_time: None,
                recent: BTreeMap::new(),
            });
        };
        let overlap = chrono::Duration::from_std(overlap).unwrap_or(chrono::Duration::zero());
        let keep_from = watermark - overlap;
        let acknowledged = self
            .sent
            .iter()
            .enumerate()
            .filter(|(index, _)| !unhandled.contains(index))
            .filter_map(|(_, position)| Some((position.id?, position.upload_time?)));
        let recent = previous
            .recent
            .iter()
            .map(|(id, upload)| (*id, *upload))
            .chain(acknowledged)
            .filter(|(_, upload)| *upload >= keep_from)
            .collect();
        Some(Watermark {
            url: previous.url.clone(),
            max_upload_time: Some(watermark),
            recent,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::biotime::transactions::parse_time;

    const OVERLAP: Duration = Duration::from_secs(1800);

    fn at(text: &str) -> NaiveDateTime {
        parse_time(text).unwrap()
    }

    fn row(id: i64, upload: &str) -> RowPosition {
        RowPosition {
            id: Some(id),
            upload_time: Some(at(upload)),
        }
    }

    fn complete(unhandled: Vec<usize>) -> Settlement {
        Settlement {
            complete: true,
            unhandled,
            discard: false,
        }
    }

    #[test]
    fn a_first_scan_sends_everything_and_sets_the_watermark() {
        let start = Watermark::default();
        let mut scan = Scan::new(ScanMode::Descending, &start, OVERLAP);
        for (id, upload) in [
            (3, "2026-01-02 10:00:00"),
            (2, "2026-01-02 09:50:00"),
            (1, "2026-01-01 08:00:00"),
        ] {
            assert_eq!(scan.admit(row(id, upload), &start), Admission::Send);
        }
        let next = scan.settle(&start, &complete(vec![]), OVERLAP).unwrap();
        assert_eq!(next.max_upload_time, Some(at("2026-01-02 10:00:00")));
        // Only ids inside the overlap are remembered.
        assert_eq!(next.recent.keys().copied().collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn the_next_scan_skips_the_overlap_and_stops_below_the_floor() {
        let start = Watermark::default();
        let mut first = Scan::new(ScanMode::Descending, &start, OVERLAP);
        first.admit(row(2, "2026-01-02 10:00:00"), &start);
        first.admit(row(1, "2026-01-02 08:00:00"), &start);
        let watermark = first.settle(&start, &complete(vec![]), OVERLAP).unwrap();

        let mut second = Scan::new(ScanMode::Descending, &watermark, OVERLAP);
        // A late upload: punched months ago, uploaded now.
        assert_eq!(
            second.admit(row(3, "2026-01-02 11:00:00"), &watermark),
            Admission::Send
        );
        // Same upload second as the watermark but new id: must not be lost.
        assert_eq!(
            second.admit(row(4, "2026-01-02 10:00:00"), &watermark),
            Admission::Send
        );
        assert_eq!(
            second.admit(row(2, "2026-01-02 10:00:00"), &watermark),
            Admission::Skip
        );
        assert_eq!(
            second.admit(row(1, "2026-01-02 08:00:00"), &watermark),
            Admission::BelowFloor
        );
    }

    #[test]
    fn the_watermark_never_passes_an_unacknowledged_row() {
        let start = Watermark::default();
        let mut scan = Scan::new(ScanMode::Descending, &start, OVERLAP);
        scan.admit(row(3, "2026-01-03 12:00:00"), &start);
        scan.admit(row(2, "2026-01-02 12:00:00"), &start);
        scan.admit(row(1, "2026-01-01 12:00:00"), &start);
        let next = scan.settle(&start, &complete(vec![1]), OVERLAP).unwrap();
        assert_eq!(next.max_upload_time, Some(at("2026-01-02 12:00:00")));
        assert!(
            !next.recent.contains_key(&2),
            "the failed row must be read again"
        );
        assert!(next.recent.contains_key(&3));
        let mut again = Scan::new(ScanMode::Descending, &next, OVERLAP);
        assert_eq!(
            again.admit(row(3, "2026-01-03 12:00:00"), &next),
            Admission::Skip
        );
        assert_eq!(
            again.admit(row(2, "2026-01-02 12:00:00"), &next),
            Admission::Send
        );
    }

    #[test]
    fn an_incomplete_or_dry_scan_does_not_move_the_watermark() {
        let watermark = Watermark {
            max_upload_time: Some(at("2026-01-01 00:00:00")),
            ..Watermark::default()
        };
        let mut scan = Scan::new(ScanMode::Descending, &watermark, OVERLAP);
        scan.admit(row(9, "2026-01-05 00:00:00"), &watermark);
        let interrupted = Settlement {
            complete: false,
            ..Settlement::default()
        };
        let next = scan.settle(&watermark, &interrupted, OVERLAP).unwrap();
        assert_eq!(next.max_upload_time, watermark.max_upload_time);
        let dry = Settlement {
            complete: true,
            discard: true,
            ..Settlement::default()
        };
        assert!(scan.settle(&watermark, &dry, OVERLAP).is_none());
    }

    #[test]
    fn window_scans_ignore_and_keep_the_watermark() {
        let mut watermark = Watermark {
            max_upload_time: Some(at("2026-01-05 00:00:00")),
            ..Watermark::default()
        };
        watermark.recent.insert(7, at("2026-01-05 00:00:00"));
        let mut scan = Scan::new(ScanMode::Window, &watermark, OVERLAP);
        assert_eq!(
            scan.admit(row(1, "2026-01-01 00:00:00"), &watermark),
            Admission::Send
        );
        assert_eq!(
            scan.admit(row(7, "2026-01-05 00:00:00"), &watermark),
            Admission::Send
        );
        assert!(
            scan.settle(&watermark, &complete(vec![]), OVERLAP)
                .is_none()
        );
    }

    #[test]
    fn order_violations_are_detected_in_descending_mode_only() {
        let watermark = Watermark::default();
        let mut scan = Scan::new(ScanMode::Descending, &watermark, OVERLAP);
        assert!(scan.keeps_order(Some(at("2026-01-02 00:00:00"))));
        assert!(scan.keeps_order(None));
        assert!(scan.keeps_order(Some(at("2026-01-01 00:00:00"))));
        assert!(!scan.keeps_order(Some(at("2026-01-03 00:00:00"))));
        scan.fall_back_to_full();
        assert!(scan.keeps_order(Some(at("2026-01-09 00:00:00"))));
    }
}
