//! Sources: where punches come from. One module per kind of device connection, each
//! behind the [`Source`] trait so the sync cycle treats them alike.
//!
//! A source sends what it read as [`Fetched`] records, in batches, in a fixed order; the
//! cycle answers, per record position, whether every sink acknowledged it, and only then
//! does the source move its cursor ([`Source::settle`]).

pub mod biotime;
pub mod zk;

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::NaiveDateTime;
use serde_json::Value;
use tokio::sync::mpsc;

use chrono_tz::Tz;

use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::punch::{DeviceLabel, SourceKind};
use crate::shutdown::Shutdown;

/// A record as a source decoded it, before plausibility checks.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceRecord {
    pub source: SourceKind,
    /// The source's own key (e.g. `biotime:http://host:8081#1234`).
    pub source_key: String,
    pub serial: Arc<str>,
    /// The terminal's name, where the source reports one (BioTime's terminal alias).
    pub terminal: Arc<str>,
    pub user_id: String,
    pub time: RecordTime,
    pub state: i32,
    pub verify_mode: i32,
    pub work_code: String,
}

/// A punch time as the source gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordTime {
    Valid(NaiveDateTime),
    /// Not a real calendar date-time (e.g. `2025-02-30 10:00:00`), kept as text.
    Invalid(String),
}

/// What a source hands to the cycle.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    Record(SourceRecord),
    /// Something the source could not decode at all; quarantined as is.
    Undecodable {
        source_key: String,
        reason: String,
        raw: Value,
    },
}

/// What a cycle asks of a source.
#[derive(Debug, Clone)]
pub struct FetchPlan {
    /// `--since`: ignore the cursor and read this far back (in the device's zone).
    pub since: Option<Duration>,
    pub shutdown: Shutdown,
    /// The whole read ends by then (the device's `max_read_time` from its start),
    /// however the device behaves; what was read by then is still delivered.
    pub deadline: tokio::time::Instant,
    /// That `max_read_time`, for the message.
    pub max_read_time: Duration,
    /// Where the source says how far its read has come.
    pub progress: ReadProgress,
}

/// How far a read has come — `done` of `total` (when known) `unit`s, "bytes" or
/// "rows" — reported as it goes (for a progress line).
#[derive(Clone)]
pub struct ReadProgress(Arc<ReportRead>);

type ReportRead = dyn Fn(u64, Option<u64>, &'static str) + Send + Sync;

impl ReadProgress {
    pub fn new(
        report: impl Fn(u64, Option<u64>, &'static str) + Send + Sync + 'static,
    ) -> ReadProgress {
        ReadProgress(Arc::new(report))
    }

    /// Progress nobody watches.
    pub fn unwatched() -> ReadProgress {
        ReadProgress::new(|_, _, _| {})
    }

    pub fn report(&self, done: u64, total: Option<u64>, unit: &'static str) {
        (self.0)(done, total, unit);
    }
}

impl std::fmt::Debug for ReadProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadProgress")
    }
}

impl FetchPlan {
    /// A read starting now, to end within `max_read_time`, its progress unwatched.
    pub fn new(since: Option<Duration>, shutdown: Shutdown, max_read_time: Duration) -> FetchPlan {
        FetchPlan {
            since,
            shutdown,
            deadline: tokio::time::Instant::now() + max_read_time,
            max_read_time,
            progress: ReadProgress::unwatched(),
        }
    }

    /// The error of a read stopped at the deadline.
    pub fn overran(&self, who: &str) -> SourceError {
        SourceError::new(
            SourceErrorKind::Protocol,
            format!(
                "{who}: the read took longer than max_read_time ({}) and was stopped; what was read is delivered, the rest is read next cycle — raise max_read_time in its [[device]] if the device is really that slow",
                crate::duration::display(self.max_read_time)
            ),
        )
    }
}

/// How a fetch ended when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchEnd {
    /// Everything new was read.
    Complete,
    /// Stopped early on request (Ctrl-C); what was sent is still delivered.
    Interrupted,
}

/// How the cycle dealt with what a source sent.
#[derive(Debug, Clone, Default)]
pub struct Settlement {
    /// The fetch read everything new (it neither failed nor was interrupted).
    pub complete: bool,
    /// Positions (in send order) of records not acknowledged by every sink.
    pub unhandled: Vec<usize>,
    /// Forget the scan and move nothing (dry runs, or results that could not be saved).
    pub discard: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceErrorKind {
    /// Missing licence, wrong URL, wrong kind: a person must change something.
    Configuration,
    /// The device refused the credentials (password, comm key): a person must fix them.
    Credentials,
    /// Cannot connect, times out, server errors.
    Unreachable,
    /// The other side answered, but not as the protocol says.
    Protocol,
}

/// A device-level failure, phrased for the user (it names the device).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    pub kind: SourceErrorKind,
    pub message: String,
}

impl SourceError {
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> SourceError {
        SourceError {
            kind,
            message: message.into(),
        }
    }
}

/// What `iclock-sync devices` reports for one device.
#[derive(Debug, Clone, Default)]
pub struct DeviceCheck {
    pub reachable: bool,
    pub auth_ok: Option<bool>,
    pub punches: Option<u64>,
    /// Device (or server) clock minus host clock, when known.
    pub clock_drift: Option<chrono::Duration>,
    pub device_clock: Option<NaiveDateTime>,
    /// Further `label: value` facts in display order.
    pub facts: Vec<(String, String)>,
    pub error: Option<SourceError>,
}

use crate::user_control::{SwitchLog, UserSwitch};

#[async_trait]
pub trait Source: Send {
    fn label(&self) -> &Arc<DeviceLabel>;

    /// `biotime`, ...
    fn kind(&self) -> &'static str;

    /// Where the device is, for summaries (URL or address, never credentials).
    fn location(&self) -> String;

    /// Reads what is new since the cursor (or per `plan`) and sends it in order.
    async fn fetch(
        &mut self,
        plan: &FetchPlan,
        out: &mpsc::Sender<Vec<Fetched>>,
    ) -> Result<FetchEnd, SourceError>;

    /// Moves the cursor past what was acknowledged; returns the cursor to persist.
    fn settle(&mut self, settlement: &Settlement) -> Option<Value>;

    /// Runs once the cycle's results are durably recorded (a terminal's log may be
    /// cleared then); returns a note for the summary.
    async fn after_recorded(&mut self) -> Option<String> {
        None
    }

    /// What the last read learned of the device (serial, firmware, clock drift), for
    /// `status`.
    fn facts(&self) -> Option<Value> {
        None
    }

    /// Connectivity, credentials, counts and clock, for `iclock-sync devices`.
    async fn check(&mut self) -> DeviceCheck;

    /// Switches users on or off on the device (post-checkin user control), appending
    /// every change to `log`; returns a note for the summary. Only terminals can.
    async fn switch_users(&mut self, switches: &[UserSwitch], log: &SwitchLog) -> String {
        let _ = log;
        format!(
            "{} user switch(es) not applied: {}",
            switches.len(),
            USER_CONTROL_UNSUPPORTED
        )
    }
}

/// Why devices other than terminals cannot switch users (also shown by `devices`).
pub const USER_CONTROL_UNSUPPORTED: &str = "BioTime has no flag to disable a person (only resignation or an area change); user control on devices works for terminals (kind = \"zk\" or \"adms\")";

/// A configured device: what every kind shares, and its kind's own settings.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    pub timezone: Tz,
    pub enabled: bool,
    /// With `--loop`: how often this device is read (default: the loop's interval).
    pub interval: Option<Duration>,
    /// Where the device stands (`latitude`, `longitude`), for sinks that record it.
    pub coordinates: Option<(f64, f64)>,
    /// How long one read of the device may take in all.
    pub max_read_time: Duration,
    pub source: Arc<dyn SourceConfig>,
}

/// The default `max_read_time`: far beyond any real read (100,000 punches take
/// seconds), short enough that a device dripping data cannot hold a cycle for ever.
pub const DEFAULT_MAX_READ_TIME: Duration = Duration::from_secs(30 * 60);

impl DeviceConfig {
    /// Where the device is, for messages and templates: a URL or an address.
    pub fn location(&self) -> String {
        self.source.location()
    }

    pub fn kind(&self) -> &'static str {
        self.source.kind()
    }

    /// Builds the source, resuming from its stored cursor.
    pub fn open(&self, cursor: Option<&Value>) -> Result<Box<dyn Source>, SourceError> {
        let label = Arc::new(DeviceLabel {
            name: Arc::from(self.name.as_str()),
            timezone: self.timezone,
        });
        self.source.open(label, cursor)
    }
}

/// A kind's own `[[device]]` keys, read and checked; it builds the source itself.
pub trait SourceConfig: std::fmt::Debug + Send + Sync + Any {
    /// `zk`, `biotime`.
    fn kind(&self) -> &'static str;

    /// Where the device is, for messages (a URL or an address, never credentials).
    fn location(&self) -> String;

    fn open(
        &self,
        label: Arc<DeviceLabel>,
        cursor: Option<&Value>,
    ) -> Result<Box<dyn Source>, SourceError>;

    /// For a terminal that pushes its punches (ADMS) instead of being read: its serial
    /// number. Such a device is never opened or read by a cycle.
    fn pushes(&self) -> Option<&str> {
        None
    }

    /// Whether a read clears the device's log once its punches are everywhere.
    fn clears_after_sync(&self) -> bool {
        false
    }

    /// Whether post-checkin user control can switch people on this device: how it
    /// does, or why it cannot.
    fn user_control(&self) -> Result<&'static str, &'static str> {
        Err(USER_CONTROL_UNSUPPORTED)
    }

    fn as_any(&self) -> &dyn Any;
}

/// Reads a kind's own `[[device]]` keys into its configuration.
pub type ParseDevice = fn(toml::Table, &Section) -> Result<Arc<dyn SourceConfig>, ConfigError>;

/// A kind of device, for the configuration's table of kinds.
pub struct DeviceKind {
    /// The value of `kind`.
    pub name: &'static str,
    /// What it is, for the message about an unknown kind.
    pub describes: &'static str,
    /// Reads the kind's own keys (the shared ones are already taken out).
    pub parse: ParseDevice,
}
