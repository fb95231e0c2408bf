//! Deterministic crash injection for the crash-safety tests.
//!
//! "Kill the process anywhere and the next run delivers what is missing, with no
//! duplicates" is only believable if the dangerous instants are actually exercised.
//! When `ICLOCK_SYNC_CRASH_AT` names a point below, the process aborts there — as
//! abruptly as a `kill -9`, with no destructor or flush running. Unset, this is a no-op.

use std::sync::OnceLock;

pub const ENV: &str = "ICLOCK_SYNC_CRASH_AT";

/// Every sink has acknowledged a batch; nothing about it is recorded locally yet.
pub const AFTER_SINK_WRITE: &str = "after-sink-write";
/// The cycle delivered everything; the dedup cache is about to be saved.
pub const BEFORE_CACHE_SAVE: &str = "before-cache-save";
/// The cache is saved; the cursors are about to be.
pub const BEFORE_CURSOR_SAVE: &str = "before-cursor-save";

pub fn reached(point: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok());
    if target.as_deref() == Some(point) {
        eprintln!("{ENV}={point}: aborting here on purpose");
        std::process::abort();
    }
}
