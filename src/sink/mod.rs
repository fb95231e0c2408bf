//! Sinks: where punches go. One module per destination, each behind the [`Sink`] trait,
//! which answers for every punch of a batch with a [`SinkOutcome`].
//!
//! Every sink writes "insert if absent" keyed on the punch ID, so sending a punch twice
//! (after a crash, a lost cache, or from two devices) is harmless: the second time the
//! answer is [`SinkOutcome::AlreadyPresent`], which counts as acknowledged.

pub mod database_url;
pub mod firestore;
pub mod frappe;
pub mod mongodb;
pub mod sql;

pub use sql::sqlite;

use std::any::Any;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;

use crate::config::environment::Environment;
use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::punch::Punch;
use crate::report::DeviceReport;
use crate::source::DeviceConfig;
use crate::user_control::UserSwitch;

/// What a sink did with one punch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkOutcome {
    /// Written now.
    Delivered,
    /// Already there (written by an earlier run or another path).
    AlreadyPresent,
    /// Not sent, because the configuration says this sink does not want it (e.g. a
    /// punch state mapped to "skip"); counts as acknowledged.
    Skipped,
    /// Not sent, because the destination's schema cannot hold it (the reason says why,
    /// e.g. SchoolSync's staffId must be a positive number). Counted with the skipped
    /// and acknowledged, and written to the quarantine with the reason.
    Withheld(String),
    /// The destination refuses this punch for good (the reason says why).
    Rejected(String),
    /// The destination knows nobody with this punch's PIN (the reason says where it
    /// looked). Handled like a rejection; the summary lists the PINs.
    Unmapped(String),
    /// Not written this time; the next cycle retries it.
    Failed(String),
}

impl SinkOutcome {
    pub fn is_acknowledged(&self) -> bool {
        matches!(
            self,
            SinkOutcome::Delivered
                | SinkOutcome::AlreadyPresent
                | SinkOutcome::Skipped
                | SinkOutcome::Withheld(_)
        )
    }
}

/// What a sink has to say once a cycle is recorded.
#[derive(Debug, Default)]
pub struct CycleEnd {
    /// Lines for the summary (e.g. a watermark it set).
    pub notes: Vec<String>,
    /// Users to switch on or off on the devices that recorded their punches.
    pub switches: Vec<UserSwitch>,
}

/// A sink that could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("sink {sink} ({target}): {problem} — {fix}")]
pub struct SinkError {
    /// The sink's name (its kind unless the configuration names it).
    pub sink: String,
    pub target: String,
    pub problem: String,
    pub fix: String,
    /// It could not be reached (down, the network): a failing sink whose punches
    /// wait, not a configuration a person must change.
    pub outage: bool,
}

#[async_trait]
pub trait Sink: Send + Sync {
    /// `sqlite`, `payroll`, ...: its kind, or the name the configuration gives it.
    fn name(&self) -> &str;

    /// Where it writes, for summaries (a path or URL, never credentials).
    fn target(&self) -> String;

    /// A mark of the store itself (a random token kept in it), so that a store
    /// replaced or emptied is noticed and filled again; `None` when it has none.
    async fn identity(&self) -> Option<String> {
        None
    }

    /// A cycle starts: forget what was learned during the last one.
    async fn begin_cycle(&self) {}

    /// How many batches it may be handed at once: a database with a pool of
    /// connections writes several side by side; a site with rate limits, or a file
    /// with one writer, takes one at a time.
    fn batches_at_once(&self) -> usize {
        1
    }

    /// Writes a batch (no ID twice) and answers for each punch, in order.
    async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome>;

    /// Before the cycle is recorded: whether everything this sink acknowledged during it
    /// is durably stored. An error (saying what is wrong) keeps the whole cycle from
    /// being recorded, so that it is delivered again next time.
    async fn confirm(&self) -> Result<(), String> {
        Ok(())
    }

    /// The cycle is recorded; `devices` says how each device fared in it.
    async fn finish_cycle(&self, _devices: &[DeviceReport]) -> CycleEnd {
        CycleEnd::default()
    }

    /// Flushes and releases connections before the process exits.
    async fn close(&self) {}
}

/// A sink's own `[sink.NAME]` keys, read and checked; it opens the sink itself.
#[async_trait]
pub trait SinkConfig: std::fmt::Debug + Send + Sync + Any {
    /// `sqlite`, `firestore`, `frappe`, ...
    fn kind(&self) -> &'static str;

    /// The name the ledger, the summary and the commands know it by: its kind, unless
    /// the configuration names it (so that two sinks of one kind can coexist).
    fn name(&self) -> &str {
        self.kind()
    }

    async fn open(&self, context: &SinkContext<'_>) -> Result<Box<dyn Sink>, SinkError>;

    fn as_any(&self) -> &dyn Any;
}

/// What a sink may need besides its own keys when it opens.
pub struct SinkContext<'a> {
    /// Where variables such as FIREBASE_KEY are looked up.
    pub environment: &'a Environment,
    pub devices: &'a [DeviceConfig],
    /// `[sync] output_dir`, for files a sink keeps (the default database, logs).
    pub output_dir: &'a Path,
    /// The configuration file's folder, which relative paths from the environment
    /// (FIREBASE_KEY, config/firebase-key.json) start from.
    pub base_dir: &'a Path,
}

/// Reads a `[sink.NAME]` section into its sink's configuration.
pub type ParseSink =
    fn(toml::Value, &Section, &[DeviceConfig]) -> Result<Arc<dyn SinkConfig>, ConfigError>;

/// A kind of sink, for the configuration's table of kinds.
pub struct SinkKind {
    /// The `NAME` of `[sink.NAME]`.
    pub name: &'static str,
    /// Reads the section; `devices` are the configured devices (a sink may refer to
    /// them by name).
    pub parse: ParseSink,
}
