//! The sync cycle: read every due device into the ledger (each batch journaled with a
//! pending delivery for every sink, the cursor with the last), then drain every sink
//! from the ledger on its own, then write the Python tool's files from it. Kill the
//! process anywhere and the next cycle redoes exactly the unrecorded part: a batch not
//! journaled is read again, a delivery not settled is sent again and the sink's
//! insert-if-absent answers "already there".
//!
//! The engine is hosted, not in charge: the caller passes the [`crate::shutdown::Shutdown`]
//! that stops it and a [`CycleObserver`] that hears how it goes, so the same engine runs
//! under the command line, a service or a test.

pub mod control;
mod drain;
mod engine;
mod observer;
mod read;
mod schedule;
mod sinks;

pub use engine::{Engine, EngineError};
pub use observer::{CycleObserver, Unobserved};
pub use schedule::Schedule;
