//! Deterministic crash injection for the crash-safety tests.
//!
//! "Kill the process anywhere and the next run delivers what is missing, with no
//! duplicates" is only believable if the dangerous instants are actually exercised.
//! When `ICLOCK_SYNC_CRASH_AT` names a point below, the process aborts there — as
//! abruptly as a `kill -9`, with no destructor or flush running. Unset, this is a no-op.

use std::sync::OnceLock;

pub const ENV: &str = "ICLOCK_SYNC_CRASH_AT";

/// A sink has answered for a batch; its answers are not in the ledger yet.
pub const AFTER_SINK_WRITE: &str = "after-sink-write";
/// An export's JSON cache and audit file are written; the ledger does not know yet.
pub const BEFORE_EXPORT_RECORDED: &str = "before-export-recorded";

pub fn reached(point: &str) {
    static TARGET: OnceLock<Option<String>> = OnceLock::new();
    let target = TARGET.get_or_init(|| std::env::var(ENV).ok());
    if target.as_deref() == Some(point) {
        eprintln!("{ENV}={point}: aborting here on purpose");
        std::process::abort();
    }
}
