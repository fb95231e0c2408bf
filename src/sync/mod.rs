//! The sync cycle: read every device, normalize, drop what the cache knows, deliver to
//! every sink, and only then record (cache, audit file, cursors) what all of them
//! acknowledged. Kill the process anywhere and the next cycle redoes exactly the
//! unrecorded part; the sinks' idempotent writes absorb any repeat.
//!
//! The engine is hosted, not in charge: the caller passes the [`crate::shutdown::Shutdown`]
//! that stops it and a [`CycleObserver`] that hears how it goes, so the same engine runs
//! under the command line, a service or a test.

mod batch;
mod engine;
mod observer;
mod schedule;

pub use engine::{Engine, EngineError};
pub use observer::{CycleObserver, Unobserved};
pub use schedule::Schedule;
