//! The sync cycle: read every device, normalize, drop what the cache knows, deliver to
//! every sink, and only then record (cache, audit file, cursors) what all of them
//! acknowledged. Kill the process anywhere and the next cycle redoes exactly the
//! unrecorded part; the sinks' idempotent writes absorb any repeat.

mod batch;
mod engine;
mod schedule;

pub use engine::{Engine, EngineError};
pub use schedule::Schedule;
