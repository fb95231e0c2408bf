//! The ledger: the tool's own durable state, between reading and delivering. Every
//! punch read is journaled once — with a pending delivery for every sink and the
//! device's cursor, in one transaction — before any sink sees it; each sink then drains
//! its own pending punches and its answers land here. So a pushing terminal can be told
//! "OK" once its punches are journaled, a sink that is down holds back neither reading
//! nor the other sinks and catches up from here, and `status`, `retry`, `punches` (and
//! later an API) read one place.
//!
//! The engine uses the [`Ledger`] trait; [`SqliteLedger`] is the embedded
//! implementation (one file in the cache folder). A shared PostgreSQL ledger can follow
//! behind the same trait.
//!
//! Delivery states: open (pending, or failed and due again at a time) and settled
//! (delivered, already present, skipped, withheld, rejected, unmapped). Rejected and
//! unmapped punches stay settled until `retry` opens them again.

pub mod export;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use sqlite::{LEDGER_FILE_NAME, SqliteLedger};

use crate::punch::Punch;
use crate::quarantine::QuarantineEntry;
use crate::sink::SinkOutcome;

/// The ledger's number for a configured sink.
pub type SinkId = i64;
/// The ledger's number for a punch (its order of arrival).
pub type Seq = i64;
/// The ledger's number for a cycle.
pub type CycleId = i64;

/// Why the ledger could not do something; the text says what and where.
#[derive(Debug, thiserror::Error)]
#[error("the ledger {path}: {problem}")]
pub struct LedgerError {
    pub path: String,
    pub problem: String,
}

/// A sink as configured now.
#[derive(Debug, Clone)]
pub struct SinkRegistration {
    /// `sqlite`, `firestore`, … — what the sink is called in the ledger.
    pub name: String,
    /// Where it writes (for `status`).
    pub target: String,
    /// The store's own marker, when the sink has one: a changed identity means the store
    /// was replaced or emptied.
    pub identity: Option<String>,
}

/// A registered sink, and what registering it queued.
#[derive(Debug, Clone)]
pub struct RegisteredSink {
    pub id: SinkId,
    pub name: String,
    /// Punches queued for it now: a new sink is offered the recent past, a replaced
    /// store everything.
    pub queued: u64,
    /// Why they were queued, for the summary.
    pub queued_because: Option<String>,
}

/// What one read of a device hands the ledger in one transaction.
#[derive(Debug)]
pub struct Journal<'a> {
    pub device: &'a DeviceRecord,
    pub punches: &'a [Punch],
    pub quarantine: &'a [QuarantineEntry],
    /// The device's new cursor, when this is the read's last batch.
    pub cursor: Option<&'a Value>,
    /// The sinks every new punch is queued for.
    pub sinks: &'a [SinkId],
}

/// A device as the ledger describes it.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub name: String,
    pub kind: String,
    pub location: String,
}

/// What journaling found.
#[derive(Debug, Default)]
pub struct Journaled {
    /// Punches new to the ledger (and queued for the sinks); a batch's repeats count
    /// once.
    pub new: u64,
    /// Of the new ones, how many were delivered before the ledger existed.
    pub delivered_before: u64,
    /// Quarantine entries reported for the first time.
    pub newly_quarantined: u64,
}

/// A punch waiting for a sink.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: Seq,
    pub punch: Punch,
}

/// How a sink stands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SinkStanding {
    pub name: String,
    pub target: String,
    pub pending: u64,
    pub failing: u64,
    /// When the next failed punch is due again.
    pub next_retry: Option<String>,
    /// Punches it took in the cycles that started today (local time).
    pub delivered_today: u64,
    pub rejected: u64,
    pub unmapped: u64,
    /// The most frequent reasons of rejected and unmapped punches, with their counts.
    pub top_reasons: Vec<(String, u64)>,
    /// The unmapped PINs, most frequent first.
    pub unmapped_pins: Vec<(String, u64)>,
}

/// How a device stands.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DeviceStanding {
    pub name: String,
    pub kind: String,
    pub location: String,
    pub last_read_at: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub cursor: Option<Value>,
    pub facts: Option<Value>,
}

/// Which punches `retry` opens again.
#[derive(Debug, Clone, Default)]
pub struct RetryFilter {
    /// Only this sink's deliveries (by name).
    pub sink: Option<String>,
    /// Which settled states: rejected, unmapped, and/or failed (open ones made due now).
    pub rejected: bool,
    pub unmapped: bool,
    pub failed: bool,
    pub pin: Option<String>,
    /// Punches read since then.
    pub since: Option<DateTime<Utc>>,
    /// Only refusals for this reason (a group on the dashboard's problems page).
    pub reason: Option<String>,
}

/// What `punches` looks for.
#[derive(Debug, Clone, Default)]
pub struct PunchQuery {
    pub device: Option<String>,
    pub pin: Option<String>,
    /// Wall time, `YYYY-MM-DD HH:MM:SS`, from and up to (inclusive).
    pub since: Option<String>,
    pub until: Option<String>,
    /// Only punches in this delivery state (see [`DeliveryState`]) …
    pub state: Option<DeliveryState>,
    /// … at this sink (any sink when `None`).
    pub sink: Option<String>,
    pub limit: usize,
    /// Newest first (the dashboard, the API) rather than oldest first.
    pub newest_first: bool,
    /// Where the previous page ended: its last punch's wall time and seq.
    pub after: Option<(String, Seq)>,
}

/// Where a punch stands with one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Not sent yet.
    Pending,
    /// Sent and not taken; tried again after a pause.
    Failed,
    Delivered,
    /// The sink had it already.
    Already,
    /// The sink's configuration does not want it.
    Skipped,
    /// The sink's schema cannot hold it.
    Withheld,
    /// Refused for good (until `retry`).
    Rejected,
    /// Nobody with its PIN at the sink (until `retry`).
    Unmapped,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 8] = [
        DeliveryState::Pending,
        DeliveryState::Failed,
        DeliveryState::Delivered,
        DeliveryState::Already,
        DeliveryState::Skipped,
        DeliveryState::Withheld,
        DeliveryState::Rejected,
        DeliveryState::Unmapped,
    ];

    pub fn name(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Failed => "failed",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Already => "already",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Withheld => "withheld",
            DeliveryState::Rejected => "rejected",
            DeliveryState::Unmapped => "unmapped",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryState> {
        DeliveryState::ALL
            .into_iter()
            .find(|state| state.name() == text)
    }
}

/// A punch's standing with one sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PunchDelivery {
    pub sink: String,
    pub state: String,
    pub reason: Option<String>,
}

/// A punch as `punches` shows it, with where it went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PunchRecord {
    /// Its place in the ledger (for paging).
    #[serde(skip_serializing)]
    pub seq: Seq,
    pub id: String,
    pub device: String,
    pub serial: String,
    pub user_id: String,
    pub local_time: String,
    pub timezone: String,
    pub state: i32,
    pub verify_mode: i32,
    pub work_code: String,
    pub source: String,
    pub read_at: String,
    /// Where it went, per sink.
    pub sinks: Vec<PunchDelivery>,
}

/// An export of the Python tool's files from the ledger (see `export`).
#[derive(Debug, Clone)]
pub struct Export {
    pub id: i64,
    /// Where its IDs begin in the JSON cache (`None`: there was no file).
    pub cache_append_at: Option<u64>,
    /// How many IDs it then held.
    pub cache_ids: u64,
    /// The audit file it writes, a name in the output folder.
    pub audit_file: String,
}

/// A punch in an export.
#[derive(Debug, Clone)]
pub struct Exported {
    pub seq: Seq,
    pub punch: Punch,
    /// Some sink wrote it (rather than finding it there): it goes in the audit file.
    pub written: bool,
}

/// The JSON cache file as this tool left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheFile {
    pub length: u64,
    pub ids: u64,
}

#[async_trait]
pub trait Ledger: Send + Sync {
    /// Where it is, for messages.
    fn location(&self) -> String;

    /// Registers the configured sinks (the others stop being drained, their history
    /// kept) and queues what each has not had; see [`RegisteredSink`].
    async fn register_sinks(
        &self,
        sinks: &[SinkRegistration],
        backfill: Option<std::time::Duration>,
    ) -> Result<Vec<RegisteredSink>, LedgerError>;

    /// Queues for `sink` every punch read since `since` that it has not settled.
    async fn backfill(&self, sink: &str, since: DateTime<Utc>) -> Result<u64, LedgerError>;

    /// The device's stored cursor.
    async fn cursor(&self, device: &str) -> Result<Option<Value>, LedgerError>;

    /// Journals a batch: punches (inserted if absent, queued for every sink), quarantine
    /// entries and, for a read's last batch, the cursor — in one transaction.
    async fn journal(&self, journal: Journal<'_>) -> Result<Journaled, LedgerError>;

    /// How the device's read went (`error`: why it failed), and what is known of it.
    async fn device_read(
        &self,
        device: &DeviceRecord,
        error: Option<&str>,
        facts: Option<&Value>,
    ) -> Result<(), LedgerError>;

    /// Up to `limit` punches open for `sink` after `after` (a seq; 0 from the start),
    /// in order of arrival: those due by `due_by`, or every open one when `None` (a
    /// fresh run tries everything again).
    async fn due(
        &self,
        sink: SinkId,
        after: Seq,
        limit: usize,
        due_by: Option<DateTime<Utc>>,
    ) -> Result<Vec<Queued>, LedgerError>;

    /// Records the sink's answers for punches it was handed (failed ones are due again
    /// after a growing pause).
    async fn settle(
        &self,
        sink: SinkId,
        cycle: CycleId,
        outcomes: &[(Seq, SinkOutcome)],
        now: DateTime<Utc>,
    ) -> Result<(), LedgerError>;

    /// Opens again what `sink` was recorded to have taken in `cycle` (its store did
    /// not keep it); returns how many.
    async fn reopen_cycle(&self, sink: SinkId, cycle: CycleId) -> Result<u64, LedgerError>;

    /// Punches open for `sink`: (open, of which failed and waiting, next due time).
    async fn open_count(
        &self,
        sink: SinkId,
    ) -> Result<(u64, u64, Option<DateTime<Utc>>), LedgerError>;

    /// Per device, how many of its punches some active sink still has open.
    async fn open_by_device(&self) -> Result<Vec<(String, u64)>, LedgerError>;

    /// Of `punches`, which the ledger knows (read before, or delivered before it existed);
    /// for dry runs, which write nothing.
    async fn known(&self, punches: &[Punch]) -> Result<Vec<bool>, LedgerError>;

    async fn begin_cycle(&self, started_at: DateTime<Utc>) -> Result<CycleId, LedgerError>;

    async fn finish_cycle(
        &self,
        cycle: CycleId,
        report: &Value,
        duration_ms: u64,
        exit_code: u8,
    ) -> Result<(), LedgerError>;

    /// The reports of the last `count` cycles, newest first.
    async fn cycles(&self, count: usize) -> Result<Vec<Value>, LedgerError>;

    /// Records IDs delivered everywhere before the ledger existed (an older cache);
    /// returns how many were new to it.
    async fn import_delivered(&self, ids: &[String]) -> Result<u64, LedgerError>;

    /// Stores a device's cursor (an import of an older cursor file).
    async fn import_cursor(&self, device: &str, cursor: &Value) -> Result<(), LedgerError>;

    /// Whether a one-time step was done; marking it done.
    async fn milestone(&self, name: &str) -> Result<bool, LedgerError>;
    async fn mark_milestone(&self, name: &str, detail: &str) -> Result<(), LedgerError>;

    /// An export a crash interrupted, to be redone exactly.
    async fn unfinished_export(&self) -> Result<Option<Export>, LedgerError>;

    /// Records an export about to be written: where its IDs begin in the JSON cache
    /// (`None`: no file) and the audit file it writes.
    async fn start_export(
        &self,
        cache_append_at: Option<u64>,
        audit_file: &str,
    ) -> Result<Export, LedgerError>;

    /// Of `seqs`, marks as part of `export` those every active sink now has and that
    /// were not exported yet; returns them in order, each with whether some sink wrote
    /// it (the audit file lists those).
    async fn export_batch(
        &self,
        export: i64,
        seqs: &[Seq],
    ) -> Result<Vec<(Seq, bool)>, LedgerError>;

    /// Whether some punch every active sink has was not exported yet.
    async fn exportable(&self) -> Result<bool, LedgerError>;

    /// Marks as part of `export` every other punch every active sink has and that was
    /// not exported yet (one a removed sink held back, say); returns how many.
    async fn export_rest(&self, export: i64) -> Result<u64, LedgerError>;

    /// The punches of `export` after `after`, in order, for writing them from the
    /// ledger (an export redone after a crash, or [`Ledger::export_rest`]'s).
    async fn export_page(
        &self,
        export: i64,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<Exported>, LedgerError>;

    /// The export is written; the JSON cache is now `cache` as this tool left it. An
    /// export of nothing leaves no trace.
    async fn finish_export(&self, export: i64, cache: CacheFile) -> Result<(), LedgerError>;

    /// The JSON cache as this tool last left it.
    async fn cache_file(&self) -> Result<Option<CacheFile>, LedgerError>;

    /// Takes the JSON cache as it is now as this tool's (after importing it).
    async fn adopt_cache_file(&self, cache: CacheFile) -> Result<(), LedgerError>;

    /// IDs delivered before the ledger, after `after` in order, to write the JSON cache
    /// afresh.
    async fn delivered_before_page(
        &self,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, LedgerError>;

    /// Exported punches' IDs after `after` (a seq), in order, for the same.
    async fn exported_page(
        &self,
        after: Seq,
        limit: usize,
    ) -> Result<Vec<(Seq, String)>, LedgerError>;

    async fn sink_standings(&self) -> Result<Vec<SinkStanding>, LedgerError>;
    /// Per device and wall-clock day, the punches from `since` (a wall time) on.
    async fn punches_per_day(&self, since: &str)
    -> Result<Vec<(String, String, u64)>, LedgerError>;
    /// The newest `limit` quarantine entries before `before` (an entry's time and key).
    async fn quarantined(
        &self,
        limit: usize,
        before: Option<(String, String)>,
    ) -> Result<Vec<QuarantineRecord>, LedgerError>;
    /// The quarantine by reason, largest group first.
    async fn quarantine_reasons(&self) -> Result<Vec<(String, u64)>, LedgerError>;
    /// Rejected punches of the active sinks by sink and reason, unmapped ones by sink,
    /// largest group first.
    async fn refusals(&self) -> Result<Vec<Refusal>, LedgerError>;
    async fn device_standings(&self) -> Result<Vec<DeviceStanding>, LedgerError>;
    async fn quarantine_count(&self) -> Result<u64, LedgerError>;

    /// Opens again the punches `filter` selects; returns how many.
    async fn retry(&self, filter: &RetryFilter) -> Result<u64, LedgerError>;

    async fn punches(&self, query: &PunchQuery) -> Result<Vec<PunchRecord>, LedgerError>;

    /// Deletes punches read before `before` that every sink has settled; returns how
    /// many.
    async fn prune(&self, before: DateTime<Utc>) -> Result<u64, LedgerError>;

    /// Queues `command` for the pushing terminal `serial`; its number.
    async fn queue_command(&self, serial: &str, command: &str) -> Result<i64, LedgerError>;

    /// The open commands for `serial` to hand over at its poll (those handed over less
    /// than `again_after` ago wait for their result), marked as handed over.
    async fn commands_to_send(
        &self,
        serial: &str,
        again_after: std::time::Duration,
        limit: usize,
    ) -> Result<Vec<(i64, String)>, LedgerError>;

    /// Records a command's result; whether it was waiting for one.
    async fn command_result(
        &self,
        serial: &str,
        id: i64,
        return_code: Option<i64>,
        result: &str,
    ) -> Result<bool, LedgerError>;

    /// Records who is who on a pushing terminal (from its user uploads); how many.
    async fn record_terminal_users(
        &self,
        serial: &str,
        users: &[crate::adms::users::TerminalUser],
    ) -> Result<u64, LedgerError>;

    /// Who is who on a pushing terminal, by PIN.
    async fn terminal_users(
        &self,
        serial: &str,
    ) -> Result<Vec<crate::adms::users::TerminalUser>, LedgerError>;

    /// Records an approval or a rejection of a held terminal.
    async fn decide_terminal(&self, decision: &TerminalDecision) -> Result<(), LedgerError>;

    /// Every decision about held terminals.
    async fn terminal_decisions(&self) -> Result<Vec<TerminalDecision>, LedgerError>;

    /// The newest `limit` commands, of one terminal or all.
    async fn commands(
        &self,
        serial: Option<&str>,
        limit: usize,
    ) -> Result<Vec<AdmsCommand>, LedgerError>;
}

/// What a person decided about a pushing terminal nobody configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalDecision {
    pub serial: String,
    pub approved: bool,
    /// The device name its punches carry (approved).
    pub name: String,
    /// Its IANA zone (approved).
    pub timezone: String,
    /// Who decided (a token's name, or "dashboard").
    pub by: String,
}

/// A command for a pushing terminal, and what became of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AdmsCommand {
    pub id: i64,
    pub serial: String,
    pub command: String,
    pub queued_at: String,
    /// Last handed to the terminal, and how many times.
    pub sent_at: Option<String>,
    pub sends: u64,
    pub result_at: Option<String>,
    /// The terminal's `Return=` (0 success; see docs/adms.md).
    pub return_code: Option<i64>,
    pub result: Option<String>,
}

/// A record refused before any sink saw it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QuarantineRecord {
    /// The source's key for it (device, serial, PIN, time…).
    pub source_key: String,
    pub device: String,
    pub reason: String,
    /// The record as the device sent it.
    #[schema(value_type = Object)]
    pub record: Value,
    pub quarantined_at: String,
}

/// A group of punches a sink refused: rejected ones by reason, unmapped ones together
/// (with their PINs).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Refusal {
    pub sink: String,
    /// `rejected` or `unmapped`.
    pub state: String,
    /// The sink's reason (rejected); what unmapped means (unmapped).
    pub reason: String,
    pub punches: u64,
    /// Unmapped: the PINs the sink does not know (at most 50).
    pub pins: Vec<String>,
}

/// A shared handle.
pub type SharedLedger = Arc<dyn Ledger>;

#[cfg(test)]
mod tests;
