//! What a running cycle tells whoever hosts it, as it goes: how far each device's read
//! has come, how many punches were delivered, and the cycle's report at the end. The
//! command line draws a progress line and prints the summary; a service can publish
//! the same to its dashboard. The engine knows nothing of terminals or screens.

use crate::report::CycleReport;

pub trait CycleObserver: Send + Sync {
    /// `device` has read `done` of `total` (when known) `unit`s ("bytes", "rows").
    fn reading(&self, device: &str, done: u64, total: Option<u64>, unit: &'static str) {
        let _ = (device, done, total, unit);
    }

    /// `count` more punches were delivered.
    fn delivered(&self, count: u64) {
        let _ = count;
    }

    /// The cycle is over; `report` says how it went.
    fn finished(&self, report: &CycleReport) {
        let _ = report;
    }
}

/// An observer that ignores everything (tests, dry runs driven from code).
pub struct Unobserved;

impl CycleObserver for Unobserved {}
