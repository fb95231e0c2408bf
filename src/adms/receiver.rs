//! The ADMS receiver: the HTTP endpoints pushing terminals talk to, as one axum
//! router that `serve` mounts beside the others.
//!
//! An upload is answered `OK: n` only after its punches (and the lines it could not
//! read, quarantined with the reason) are journaled in the ledger, in one transaction
//! with the table's new stamp. If the ledger cannot take them the answer is 503 and the
//! terminal keeps them and sends them again after `ErrorDelay`; a batch sent again is
//! answered "already there" by the ledger, never journaled twice.
//!
//! A terminal is known by its serial number (`SN`). One that is not configured is not
//! acknowledged (403), so that it keeps its data until someone adds it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::attlog::parse_line;
use super::check::in_touch;
use super::options::{Options, Stamps};
use super::{Endpoint, Query, SET_CLOCK};
use crate::config::adms::{Cidr, UnknownDevices};
use crate::ledger::{DeviceRecord, Journal, Ledger, SinkId};
use crate::normalize::Normalizer;
use crate::punch::DeviceLabel;
use crate::quarantine::QuarantineEntry;
use crate::source::Fetched;
use crate::source::zk::codec::time::DeviceTime;

/// Held (unknown) terminals kept track of; more are not noted (nor logged). The
/// configured ones do not count.
const HELD_KEPT: usize = 1_000;

/// A configured pushing terminal.
#[derive(Debug, Clone)]
pub struct Terminal {
    pub serial: String,
    pub label: Arc<DeviceLabel>,
    pub location: String,
}

/// What the receiver needs, shared by its requests.
pub struct Receiver {
    pub ledger: Arc<dyn Ledger>,
    pub normalizer: Normalizer,
    /// By serial number.
    pub terminals: HashMap<String, Terminal>,
    /// Seconds between command polls, and before retrying a failed upload.
    pub delay: u32,
    pub error_delay: u32,
    /// Bodies above this many bytes are refused (413) before they are read whole.
    pub body_limit: usize,
    pub unknown: UnknownDevices,
    /// The sinks a new punch is queued for (they change when a sink comes back).
    sinks: RwLock<Vec<SinkId>>,
    /// Told when an upload brought punches new to the ledger.
    pub arrived: tokio::sync::Notify,
    /// Set when an upload brought new punches; cleared when a cycle starts (which
    /// delivers them).
    pub undelivered: AtomicBool,
    /// What each terminal last said about itself, by serial; written to the ledger by
    /// [`Receiver::record_contacts`] (not on every heartbeat).
    contacts: Mutex<HashMap<String, Contact>>,
    /// Told of punches as they arrive (the dashboard's live view).
    pub events: crate::events::Events,
    /// Counts requests and pushed punches, when `serve` keeps metrics.
    pub metrics: Option<Arc<crate::web::Metrics>>,
    /// Held terminals a person approved (taken like configured ones) or rejected
    /// (refused without being noted), by serial.
    decided: RwLock<HashMap<String, Option<Arc<Terminal>>>>,
    /// When this receiver was made: a terminal silent since then for longer than
    /// [`in_touch`] is quiet, whatever it did before.
    started: Instant,
}

/// A terminal's last contact and what it said about itself.
#[derive(Debug, Clone, Default)]
struct Contact {
    /// The configured device's name; `None`: a terminal held for approval.
    device: Option<String>,
    last_contact: String,
    ip: Option<String>,
    push_version: Option<String>,
    /// From `getrequest?INFO=`: firmware, users, fingerprints, punches, IP, …
    info: Vec<String>,
    /// Changed since last written to the ledger.
    dirty: bool,
    /// When it was last heard from.
    seen: Option<Instant>,
    /// What watchers were last told: in touch or quiet (`None`: nothing yet).
    announced: Option<bool>,
}

/// What [`Receiver::contact`] noted.
struct Noted {
    /// The terminal's first request since this process started.
    first: bool,
    /// A configured terminal not known to be in touch until now: its contact is worth
    /// recording (and telling watchers) at once.
    back: bool,
}

impl Receiver {
    pub fn new(
        ledger: Arc<dyn Ledger>,
        normalizer: Normalizer,
        terminals: impl IntoIterator<Item = Terminal>,
    ) -> Receiver {
        let terminals: HashMap<String, Terminal> = terminals
            .into_iter()
            .map(|terminal| (terminal.serial.clone(), terminal))
            .collect();
        // Known from the start, so that one never heard from can be told quiet.
        let contacts = terminals
            .iter()
            .map(|(serial, terminal)| {
                let contact = Contact {
                    device: Some(terminal.label.name.to_string()),
                    ..Contact::default()
                };
                (serial.clone(), contact)
            })
            .collect();
        Receiver {
            ledger,
            normalizer,
            terminals,
            delay: 10,
            error_delay: 30,
            body_limit: 20 * 1024 * 1024,
            unknown: UnknownDevices::Hold,
            sinks: RwLock::new(Vec::new()),
            arrived: tokio::sync::Notify::new(),
            undelivered: AtomicBool::new(false),
            contacts: Mutex::new(contacts),
            events: crate::events::Events::default(),
            metrics: None,
            decided: RwLock::new(HashMap::new()),
            started: Instant::now(),
        }
    }

    /// Takes a person's decision about a held terminal from now on.
    pub fn decide(&self, decision: &crate::ledger::TerminalDecision) {
        let terminal = decision.approved.then(|| {
            Arc::new(Terminal {
                serial: decision.serial.clone(),
                label: Arc::new(DeviceLabel {
                    name: Arc::from(decision.name.as_str()),
                    timezone: decision
                        .timezone
                        .parse()
                        .unwrap_or_else(|_| crate::config::host_timezone()),
                }),
                location: format!("ADMS terminal {}", decision.serial),
            })
        });
        self.decided
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(decision.serial.clone(), terminal);
    }

    /// What was decided about `serial`: approved (`Some(Some)`), rejected
    /// (`Some(None)`), nothing (`None`).
    pub fn decision(&self, serial: &str) -> Option<Option<Arc<Terminal>>> {
        self.decided
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(serial)
            .cloned()
    }

    /// The sinks new punches are queued for from now on.
    pub fn set_sinks(&self, sinks: Vec<SinkId>) {
        *self.sinks.write().unwrap_or_else(PoisonError::into_inner) = sinks;
    }

    fn sinks(&self) -> Vec<SinkId> {
        self.sinks
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Notes a request from `serial` (`device`: its configured name, `None` if held).
    fn contact(
        &self,
        serial: &str,
        device: Option<&str>,
        peer: Option<SocketAddr>,
        query: &Query,
    ) -> Noted {
        let mut contacts = self.contacts.lock().unwrap_or_else(PoisonError::into_inner);
        let first = !contacts.contains_key(serial);
        // Thousands of made-up serials are not kept (nor logged) one by one.
        if device.is_none()
            && first
            && contacts
                .values()
                .filter(|contact| contact.device.is_none())
                .count()
                >= HELD_KEPT
        {
            return Noted {
                first: false,
                back: false,
            };
        }
        let contact = contacts.entry(serial.to_owned()).or_default();
        contact.device = device.map(str::to_owned);
        contact.last_contact = crate::punch::utc_text(Utc::now());
        contact.seen = Some(Instant::now());
        if let Some(peer) = peer {
            contact.ip = Some(peer.ip().to_string());
        }
        if let Some(version) = query.get("pushver") {
            contact.push_version = Some(version.chars().take(32).collect());
        }
        if let Some(info) = query.get("INFO") {
            contact.info = info
                .split(',')
                .take(16)
                .map(|field| field.chars().take(64).collect())
                .collect();
        }
        contact.dirty = true;
        Noted {
            first,
            back: device.is_some() && contact.announced != Some(true),
        }
    }

    /// Writes what changed about the terminals to the ledger, where `status` reads it
    /// (a configured terminal under its device's name, a held one as `ADMS <serial>`
    /// waiting for approval), then tells watchers which terminals came back or went
    /// quiet.
    pub async fn record_contacts(&self) {
        self.write_contacts().await;
        for (device, up) in self.touch_changes() {
            if let Some(metrics) = &self.metrics {
                metrics.device_up(&device, up);
            }
            let error = (!up).then(|| {
                format!(
                    "no contact for over {}",
                    crate::duration::display(in_touch(self.delay))
                )
            });
            self.events.device_state(&device, up, error.as_deref());
        }
    }

    /// The configured terminals whose state (in touch or quiet, as the dashboard
    /// tells it from the last contact) changed since watchers were last told.
    fn touch_changes(&self) -> Vec<(String, bool)> {
        let now = Instant::now();
        let limit = in_touch(self.delay);
        let mut contacts = self.contacts.lock().unwrap_or_else(PoisonError::into_inner);
        let mut changes = Vec::new();
        for contact in contacts.values_mut() {
            let Some(device) = &contact.device else {
                continue;
            };
            let up = match contact.seen {
                Some(seen) => now.duration_since(seen) <= limit,
                // Not heard from since the start: its last contact (before) is older
                // than the limit once the limit has passed.
                None if now.duration_since(self.started) > limit => false,
                None => continue,
            };
            if contact.announced != Some(up) {
                contact.announced = Some(up);
                changes.push((device.clone(), up));
            }
        }
        changes
    }

    async fn write_contacts(&self) {
        let changed: Vec<(String, Contact)> = {
            let mut contacts = self.contacts.lock().unwrap_or_else(PoisonError::into_inner);
            contacts
                .iter_mut()
                .filter(|(_, contact)| contact.dirty)
                .map(|(serial, contact)| {
                    contact.dirty = false;
                    (serial.clone(), contact.clone())
                })
                .collect()
        };
        for (serial, contact) in changed {
            let info = |index: usize| contact.info.get(index).filter(|value| !value.is_empty());
            let mut facts = json!({
                "serial": serial,
                "last_contact": contact.last_contact,
                "ip": info(4).or(contact.ip.as_ref()),
                "push_version": contact.push_version,
                "firmware": info(0),
                "users": info(1),
                "punches_on_terminal": info(3),
            });
            if let Some(facts) = facts.as_object_mut() {
                facts.retain(|_, value| !value.is_null());
            }
            let device = match &contact.device {
                Some(name) => DeviceRecord {
                    name: name.clone(),
                    kind: "adms".to_owned(),
                    location: format!("ADMS terminal {serial}"),
                },
                None => DeviceRecord {
                    name: format!("ADMS {serial}"),
                    kind: "adms".to_owned(),
                    location: format!(
                        "waiting for approval: add [[device]] kind = \"adms\", serial = \"{serial}\""
                    ),
                },
            };
            if let Err(error) = self.ledger.device_read(&device, None, Some(&facts)).await {
                tracing::warn!("cannot record ADMS terminal {serial}'s contact: {error}");
            }
        }
    }

    /// The router: every path under `/iclock/`.
    pub fn router(self: Arc<Self>) -> Router {
        let limit = self.body_limit;
        Router::new()
            .route("/iclock/{*rest}", axum::routing::any(answer))
            .route("/iclock", axum::routing::any(answer))
            .layer(DefaultBodyLimit::max(limit))
            .with_state(self)
    }

    async fn stamps(&self, terminal: &Terminal) -> Result<(Stamps, Value), Response> {
        let cursor = self
            .ledger
            .cursor(&terminal.label.name)
            .await
            .map_err(|error| unavailable(&error.to_string()))?
            .unwrap_or_else(|| json!({}));
        let stamp = |table: &str| cursor.get(table).and_then(Value::as_str).map(str::to_owned);
        let stamps = Stamps {
            attlog: stamp("ATTLOG"),
            operlog: stamp("OPERLOG"),
            attphoto: stamp("ATTPHOTO"),
            biodata: stamp("BIODATA"),
        };
        Ok((stamps, cursor))
    }

    async fn handshake(&self, terminal: &Terminal, query: &Query) -> Response {
        let stamps = match self.stamps(terminal).await {
            Ok((stamps, _)) => stamps,
            Err(response) => return response,
        };
        let options = Options {
            serial: &terminal.serial,
            push_version: query.get("pushver"),
            stamps: &stamps,
            delay: self.delay,
            error_delay: self.error_delay,
            timezone: terminal.label.timezone,
            now: Utc::now(),
        };
        text(StatusCode::OK, options.block())
    }

    /// `POST cdata?table=ATTLOG`: the punches journaled, then `OK: n`.
    async fn punches(&self, terminal: &Terminal, query: &Query, body: &[u8]) -> Response {
        let (_, mut cursor) = match self.stamps(terminal).await {
            Ok(stamps) => stamps,
            Err(response) => return response,
        };
        let body = super::body_text(body);
        let timezone: Tz = terminal.label.timezone;
        let now_local = Utc::now().with_timezone(&timezone).naive_local();
        let serial: Arc<str> = Arc::from(terminal.serial.as_str());
        let mut punches = Vec::new();
        let mut quarantine = Vec::new();
        let mut lines = 0;
        for (number, raw) in body.split('\n').enumerate() {
            match parse_line(raw) {
                Ok(None) => continue,
                Ok(Some(line)) => {
                    lines += 1;
                    let record = line.record(&serial, &terminal.label.name, timezone);
                    match self.normalizer.normalize(
                        &terminal.label,
                        now_local,
                        Fetched::Record(record),
                    ) {
                        Ok(punch) => punches.push(punch),
                        Err(entry) => quarantine.push(*entry),
                    }
                }
                Err(reason) => {
                    lines += 1;
                    quarantine.push(QuarantineEntry {
                        source_key: format!(
                            "adms:{}#line:{}",
                            terminal.serial,
                            crate::punch::short_digest(raw.trim_end())
                        ),
                        device: terminal.label.name.to_string(),
                        reason: format!(
                            "ATTLOG line {} from {}: {reason}",
                            number + 1,
                            terminal.serial
                        ),
                        record: json!({ "line": raw.trim_end() }),
                    });
                }
            }
        }
        if let (Some(stamp), Some(object)) = (query.get("Stamp"), cursor.as_object_mut()) {
            object.insert("ATTLOG".to_owned(), Value::String(stamp.to_owned()));
        }
        let device = DeviceRecord {
            name: terminal.label.name.to_string(),
            kind: "adms".to_owned(),
            location: terminal.location.clone(),
        };
        let sinks = self.sinks();
        let journaled = self
            .ledger
            .journal(Journal {
                device: &device,
                punches: &punches,
                quarantine: &quarantine,
                cursor: Some(&cursor),
                sinks: &sinks,
            })
            .await;
        match journaled {
            Ok(journaled) => {
                if journaled.new > 0 {
                    self.undelivered.store(true, Ordering::SeqCst);
                    self.arrived.notify_one();
                    self.events.send(
                        "punches",
                        json!({ "device": *terminal.label.name, "new": journaled.new }),
                    );
                    if let Some(metrics) = &self.metrics {
                        metrics.pushed(&terminal.label.name, journaled.new);
                    }
                }
                text(StatusCode::OK, format!("OK: {lines}"))
            }
            Err(error) => {
                tracing::warn!(
                    "ADMS terminal {} ({}): {lines} line(s) not stored, the terminal keeps them and sends them again: {error}",
                    terminal.label.name,
                    terminal.serial
                );
                unavailable(&error.to_string())
            }
        }
    }
}

/// A command as handed over: the clock setting (queued without its value) gets the
/// terminal's local time at this moment, in the firmware's packed form.
fn at_hand_over<'a>(terminal: &Terminal, command: &'a str) -> Cow<'a, str> {
    if command != SET_CLOCK {
        return Cow::Borrowed(command);
    }
    let local = Utc::now()
        .with_timezone(&terminal.label.timezone)
        .naive_local();
    Cow::Owned(format!(
        "{SET_CLOCK}={}",
        DeviceTime::from_datetime(local).to_packed()
    ))
}

impl Receiver {
    /// `getrequest`: the open commands, one `C:<id>:<command>` per line, or `OK`.
    async fn poll(&self, terminal: &Terminal) -> Response {
        match self
            .ledger
            .commands_to_send(&terminal.serial, RESEND_AFTER, COMMANDS_PER_POLL)
            .await
        {
            Ok(commands) if commands.is_empty() => text(StatusCode::OK, "OK".to_owned()),
            Ok(commands) => {
                let lines: Vec<String> = commands
                    .iter()
                    .map(|(id, command)| format!("C:{id}:{}", at_hand_over(terminal, command)))
                    .collect();
                text(StatusCode::OK, lines.join("\n") + "\n")
            }
            // The terminal asks again at its next poll.
            Err(error) => {
                tracing::warn!(
                    "ADMS terminal {}: cannot read its commands: {error}",
                    terminal.serial
                );
                text(StatusCode::OK, "OK".to_owned())
            }
        }
    }

    /// `OPERLOG` / `USERINFO`: the users' names kept, then `OK: n` (n lines read);
    /// 503 if the ledger cannot keep them, so that the terminal sends them again.
    async fn people(
        &self,
        terminal: &Terminal,
        query: &Query,
        table: &str,
        body: &[u8],
    ) -> Response {
        let body = super::body_text(body);
        let users = super::users::users(&body);
        if !users.is_empty()
            && let Err(error) = self
                .ledger
                .record_terminal_users(&terminal.serial, &users)
                .await
        {
            return unavailable(&error.to_string());
        }
        // The operation log's stamp (`OpStamp` on older firmware), echoed at the next
        // handshake so that the terminal does not send its whole log again.
        if let Some(stamp) = query.get("Stamp").or_else(|| query.get("OpStamp"))
            && table.eq_ignore_ascii_case("OPERLOG")
        {
            let (_, mut cursor) = match self.stamps(terminal).await {
                Ok(stamps) => stamps,
                Err(response) => return response,
            };
            if let Some(object) = cursor.as_object_mut() {
                object.insert("OPERLOG".to_owned(), Value::String(stamp.to_owned()));
            }
            let device = DeviceRecord {
                name: terminal.label.name.to_string(),
                kind: "adms".to_owned(),
                location: terminal.location.clone(),
            };
            let journal = Journal {
                device: &device,
                punches: &[],
                quarantine: &[],
                cursor: Some(&cursor),
                sinks: &[],
            };
            if let Err(error) = self.ledger.journal(journal).await {
                return unavailable(&error.to_string());
            }
        }
        let lines = body.lines().filter(|line| !line.trim().is_empty()).count();
        text(StatusCode::OK, format!("OK: {lines}"))
    }

    /// `devicecmd`: each result recorded against its command, then `OK`.
    async fn results(&self, terminal: &Terminal, body: &[u8]) -> Response {
        let body = super::body_text(body);
        for result in command_results(&body) {
            match self
                .ledger
                .command_result(
                    &terminal.serial,
                    result.id,
                    result.return_code,
                    &result.text,
                )
                .await
            {
                Ok(_) => {}
                Err(error) => {
                    // Not recorded: the terminal is asked again (503) and sends it again.
                    tracing::warn!(
                        "ADMS terminal {}: cannot record command {}'s result: {error}",
                        terminal.serial,
                        result.id
                    );
                    return unavailable(&error.to_string());
                }
            }
        }
        text(StatusCode::OK, "OK".to_owned())
    }
}

/// A command handed over and not answered within this long is handed over again.
const RESEND_AFTER: std::time::Duration = std::time::Duration::from_secs(120);
/// Commands handed over at one poll.
const COMMANDS_PER_POLL: usize = 10;
/// A result's text is kept up to this many bytes (an `INFO` answer is a few hundred).
const RESULT_KEPT: usize = 16 * 1024;

/// One command result from a `devicecmd` body.
#[derive(Debug, PartialEq, Eq)]
struct CommandResult {
    id: i64,
    /// `Return=`: 0 success, negative an error; `None` if the terminal gave none.
    return_code: Option<i64>,
    /// The result line and the lines after it (an `INFO` answer's settings).
    text: String,
}

/// `ID=<id>&Return=<code>&CMD=<echo>` lines, several per body, each perhaps followed by
/// lines of its own; some firmware puts `ID=`, `Return=` and `CMD=` on separate lines.
fn command_results(body: &str) -> Vec<CommandResult> {
    let mut results: Vec<CommandResult> = Vec::new();
    for line in body.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("ID=") {
            let pairs = std::iter::once(("ID", rest.split('&').next().unwrap_or(""))).chain(
                rest.split('&')
                    .skip(1)
                    .filter_map(|pair| pair.split_once('=')),
            );
            let mut id = None;
            let mut return_code = None;
            for (key, value) in pairs {
                match key {
                    "ID" => id = value.trim().parse().ok(),
                    "Return" => return_code = value.trim().parse().ok(),
                    _ => {}
                }
            }
            if let Some(id) = id {
                results.push(CommandResult {
                    id,
                    return_code,
                    text: line.chars().take(RESULT_KEPT).collect(),
                });
            }
        } else if let Some(last) = results.last_mut() {
            if let Some(code) = line.strip_prefix("Return=")
                && last.return_code.is_none()
            {
                last.return_code = code.trim().parse().ok();
            }
            if last.text.len() + line.len() < RESULT_KEPT {
                last.text.push('\n');
                last.text.push_str(line);
            }
        }
    }
    results
}

/// Every request under `/iclock/`.
async fn answer(
    State(receiver): State<Arc<Receiver>>,
    peer: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    let peer = peer.map(|axum::Extension(ConnectInfo(peer))| peer);
    let Some(endpoint) = Endpoint::of(uri.path()) else {
        return text(StatusCode::OK, "OK".to_owned());
    };
    let query = Query::parse(uri.query().unwrap_or(""));
    let Some(serial) = query.serial() else {
        return text(StatusCode::BAD_REQUEST, "ERROR: no SN".to_owned());
    };
    let accepted;
    let decided = receiver.decision(serial);
    let terminal = match (receiver.terminals.get(serial), receiver.unknown) {
        (Some(terminal), _) => terminal,
        (None, _) if decided.is_some() => {
            let Some(Some(approved)) = decided else {
                return text(
                    StatusCode::FORBIDDEN,
                    format!("ERROR: terminal {serial} is not approved on this server"),
                );
            };
            accepted = (*approved).clone();
            &accepted
        }
        (None, UnknownDevices::Accept) => {
            accepted = Terminal {
                serial: serial.to_owned(),
                label: Arc::new(DeviceLabel {
                    name: Arc::from(format!("ADMS {serial}")),
                    timezone: crate::config::host_timezone(),
                }),
                location: format!("ADMS terminal {serial}"),
            };
            &accepted
        }
        (None, policy) => {
            if policy == UnknownDevices::Hold && receiver.contact(serial, None, peer, &query).first
            {
                tracing::info!(
                    "ADMS terminal {serial} is not configured: it keeps its punches until you add [[device]] kind = \"adms\", serial = \"{serial}\""
                );
            }
            return text(
                StatusCode::FORBIDDEN,
                format!("ERROR: terminal {serial} is not approved on this server"),
            );
        }
    };
    if receiver
        .contact(serial, Some(&terminal.label.name), peer, &query)
        .back
    {
        receiver.record_contacts().await;
    }
    match (endpoint, method) {
        (Endpoint::Cdata, Method::GET) if query.get("options").is_some() => {
            receiver.handshake(terminal, &query).await
        }
        (Endpoint::Cdata, Method::POST)
            if query
                .get("table")
                .is_some_and(|table| table.eq_ignore_ascii_case("ATTLOG")) =>
        {
            receiver.punches(terminal, &query, &body).await
        }
        (Endpoint::Cdata, Method::POST)
            if query.get("table").is_some_and(|table| {
                table.eq_ignore_ascii_case("OPERLOG") || table.eq_ignore_ascii_case("USERINFO")
            }) =>
        {
            let table = query.get("table").unwrap_or_default();
            receiver.people(terminal, &query, table, &body).await
        }
        (Endpoint::GetRequest, _) => receiver.poll(terminal).await,
        (Endpoint::DeviceCmd, Method::POST) => receiver.results(terminal, &body).await,
        _ => text(StatusCode::OK, "OK".to_owned()),
    }
}

/// Refuses (403) connections from outside `allow` (an empty list allows all); the
/// server must be started with connection info.
pub async fn allow_only(
    State(allow): State<Arc<Vec<Cidr>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    if allow.is_empty() || allow.iter().any(|range| range.contains(peer.ip())) {
        next.run(request).await
    } else {
        text(
            StatusCode::FORBIDDEN,
            format!("ERROR: {} is not allowed here", peer.ip()),
        )
    }
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// The ledger could not take it: the terminal keeps its data and tries again.
fn unavailable(problem: &str) -> Response {
    text(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("ERROR: not stored, send again later ({problem})"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terminal(serial: &str, name: &str) -> Terminal {
        Terminal {
            serial: serial.into(),
            label: Arc::new(DeviceLabel {
                name: Arc::from(name),
                timezone: chrono_tz::Asia::Kolkata,
            }),
            location: String::new(),
        }
    }

    /// Every `device` event waiting, as (device, up).
    fn device_events(
        events: &mut tokio::sync::broadcast::Receiver<crate::events::Event>,
    ) -> Vec<(String, bool)> {
        std::iter::from_fn(|| events.try_recv().ok())
            .filter(|event| event.kind == "device")
            .map(|event| {
                (
                    event.data["device"].as_str().unwrap_or_default().to_owned(),
                    event.data["up"] == true,
                )
            })
            .collect()
    }

    /// A receiver on a new ledger in `dir`.
    async fn receiver(dir: &tempfile::TempDir, terminals: Vec<Terminal>) -> Receiver {
        let ledger = crate::ledger::SqliteLedger::open(&dir.path().join("ledger.db"), false)
            .await
            .unwrap();
        Receiver::new(
            Arc::new(ledger),
            Normalizer {
                scheme: crate::punch::IdScheme::Native,
                max_future_skew: std::time::Duration::from_secs(600),
            },
            terminals,
        )
    }

    #[tokio::test]
    async fn held_terminals_are_noted_however_many_are_configured() {
        let dir = tempfile::tempdir().unwrap();
        let configured = (0..HELD_KEPT)
            .map(|n| terminal(&format!("SIM{n}"), &format!("Gate {n}")))
            .collect();
        let receiver = receiver(&dir, configured).await;
        for n in 0..HELD_KEPT {
            let serial = format!("SIM{n}");
            let query = Query::parse(&format!("SN={serial}"));
            receiver.contact(&serial, Some(&format!("Gate {n}")), None, &query);
        }
        let query = Query::parse("SN=NEW1");
        assert!(receiver.contact("NEW1", None, None, &query).first);
        for n in 1..HELD_KEPT {
            let serial = format!("MADEUP{n}");
            receiver.contact(&serial, None, None, &Query::parse(&format!("SN={serial}")));
        }
        let query = Query::parse("SN=ONEMORE");
        assert!(
            !receiver.contact("ONEMORE", None, None, &query).first,
            "held ones beyond the cap are not noted"
        );
    }

    #[tokio::test]
    async fn pushing_terminals_coming_back_or_going_quiet_are_told_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut receiver = receiver(
            &dir,
            vec![terminal("SIM1", "Gate"), terminal("SIM2", "Hall")],
        )
        .await;
        let mut events = receiver.events.watch();
        let query = Query::parse("SN=SIM1");
        let silent = in_touch(receiver.delay) + std::time::Duration::from_secs(1);

        // Just started: Hall has not been heard from yet, which says nothing.
        assert!(receiver.contact("SIM1", Some("Gate"), None, &query).back);
        receiver.record_contacts().await;
        assert_eq!(device_events(&mut events), [("Gate".to_owned(), true)]);
        assert!(!receiver.contact("SIM1", Some("Gate"), None, &query).back);
        receiver.record_contacts().await;
        assert_eq!(device_events(&mut events), []);

        // Gate falls silent, and Hall has not called since long before.
        receiver.started = Instant::now().checked_sub(silent).unwrap();
        if let Some(gate) = receiver.contacts.lock().unwrap().get_mut("SIM1") {
            gate.seen = Instant::now().checked_sub(silent);
        }
        receiver.record_contacts().await;
        let mut quiet = device_events(&mut events);
        quiet.sort();
        assert_eq!(
            quiet,
            [("Gate".to_owned(), false), ("Hall".to_owned(), false)]
        );
        receiver.record_contacts().await;
        assert_eq!(device_events(&mut events), [], "told once");

        // Gate calls again: back at once.
        assert!(receiver.contact("SIM1", Some("Gate"), None, &query).back);
        receiver.record_contacts().await;
        assert_eq!(device_events(&mut events), [("Gate".to_owned(), true)]);
    }

    #[test]
    fn the_clock_setting_gets_the_terminals_local_time_when_handed_over() {
        let terminal = Terminal {
            serial: "SIM1".into(),
            label: Arc::new(DeviceLabel {
                name: Arc::from("Gate"),
                timezone: chrono_tz::Asia::Kolkata,
            }),
            location: String::new(),
        };
        assert_eq!(at_hand_over(&terminal, "CHECK"), "CHECK");
        let handed = at_hand_over(&terminal, SET_CLOCK);
        let packed: u32 = handed
            .strip_prefix("SET OPTION DateTime=")
            .and_then(|value| value.parse().ok())
            .unwrap_or_else(|| panic!("{handed}"));
        let set = DeviceTime::from_packed(packed).to_datetime().unwrap();
        let now = Utc::now()
            .with_timezone(&chrono_tz::Asia::Kolkata)
            .naive_local();
        assert!((now - set).num_seconds().abs() <= 2, "{set} vs {now}");
    }

    #[test]
    fn command_results_are_read_in_every_shape_seen() {
        let body = "ID=7&Return=0&CMD=CHECK\r\nID=8&Return=-1002&CMD=USER ADD\n\
                    ID=9&Return=0&CMD=INFO\n~DeviceName=MB460\nFWVersion=Ver 6.60\nUserCount=25\n\
                    ID=10\nReturn=0\nCMD=Shell\nContent=ok\nnonsense before\n";
        let results = command_results(body);
        let summary: Vec<(i64, Option<i64>)> = results
            .iter()
            .map(|result| (result.id, result.return_code))
            .collect();
        assert_eq!(
            summary,
            [(7, Some(0)), (8, Some(-1002)), (9, Some(0)), (10, Some(0))]
        );
        assert_eq!(
            results[2].text,
            "ID=9&Return=0&CMD=INFO\n~DeviceName=MB460\nFWVersion=Ver 6.60\nUserCount=25"
        );
        assert!(command_results("Return=0\ngarbage\nID=x&Return=0").is_empty());
    }
}
