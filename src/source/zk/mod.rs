//! ZKTeco terminals read directly over the ZK binary protocol (TCP or UDP port 4370).
//!
//! The protocol has no "read since": every cycle reads the whole attendance log, and a
//! cursor over the log's handled prefix keeps unchanged history from being decoded and
//! checked again (see `log`).
//!
//! While reading, the terminal is disabled (keypad locked) so no punch lands mid-read,
//! and it is enabled again whatever happens — over a new connection if the old one
//! broke. With `clear_after_sync` the log is cleared only when everything read was
//! delivered and the terminal's counter shows no punch arrived since the read.

pub mod client;
pub mod codec;
mod config;
mod log;
mod transport;
mod user_switches;

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Datelike, Utc};
use serde_json::Value;
use tokio::sync::mpsc;

pub use client::{Connection, ZkError};
pub use config::{DEFAULT_PORT, KIND, TransportChoice, ZkConfig, default_timeout};
pub use transport::{TransportError, TransportKind};

use self::codec::attendance::{self, AttendanceLayout};
use self::codec::packet::PacketError;
use self::log::{LogCursor, LogRead, UserTable};
use crate::punch::DeviceLabel;
use crate::source::{
    DeviceCheck, FetchEnd, FetchPlan, Fetched, ReadProgress, RecordTime, Settlement, Source,
    SourceError, SourceErrorKind,
};
use crate::user_control::{SwitchLog, UserSwitch};

/// Records handed on per batch.
const BATCH: usize = 1000;

pub struct ZkSource {
    label: Arc<DeviceLabel>,
    config: ZkConfig,
    cursor: LogCursor,
    last_read: Option<LogRead>,
    /// With `clear_after_sync`: the punch count to find before clearing, or why not.
    clear: Option<Result<u32, String>>,
    /// What the last read learned of the terminal, for `status`.
    facts: Option<Value>,
}

impl ZkSource {
    pub fn new(label: Arc<DeviceLabel>, config: &ZkConfig, cursor: Option<&Value>) -> ZkSource {
        ZkSource {
            label,
            config: config.clone(),
            cursor: cursor
                .and_then(|value| serde_json::from_value(value.clone()).ok())
                .unwrap_or_default(),
            last_read: None,
            clear: None,
            facts: None,
        }
    }

    /// The year on the terminal's side of the world (for judging record dates).
    fn current_year(&self) -> u32 {
        Utc::now()
            .with_timezone(&self.label.timezone)
            .year()
            .max(2000) as u32
    }

    fn who(&self) -> String {
        format!("device '{}' ({})", self.label.name, self.config.address)
    }

    fn error(&self, error: ZkError) -> SourceError {
        let who = self.who();
        let (kind, message) = match error {
            ZkError::Transport(TransportError::Framing(PacketError::Http(line))) => (
                SourceErrorKind::Configuration,
                format!("{who}: {}", PacketError::Http(line)),
            ),
            ZkError::Connect { transport, source } => (
                SourceErrorKind::Unreachable,
                format!(
                    "{who}: cannot connect over {transport} ({source}) — check the address and that the terminal is on; a terminal that only speaks UDP needs transport = \"udp\" or \"auto\""
                ),
            ),
            ZkError::Timeout { what, timeout } => (
                SourceErrorKind::Unreachable,
                format!(
                    "{who}: no answer within {} s to {what} — check the address and the network, and that no other program is using the terminal; raise `timeout` for slow links",
                    timeout.as_secs_f32()
                ),
            ),
            error if error.is_dropped_connection() => (
                SourceErrorKind::Unreachable,
                format!(
                    "{who}: the terminal closed the connection mid-read; nothing from this read was delivered, it is read again next cycle"
                ),
            ),
            ZkError::Transport(TransportError::Io(error)) => (
                SourceErrorKind::Unreachable,
                format!(
                    "{who}: the connection failed ({error}); nothing from this read was delivered, it is read again next cycle"
                ),
            ),
            ZkError::CommKeyRejected => (
                SourceErrorKind::Credentials,
                format!(
                    "{who}: comm key rejected — set comm_key in [[device]] '{}' to the value in the terminal's menu (System → Comm → Comm Key)",
                    self.label.name
                ),
            ),
            other => (SourceErrorKind::Protocol, format!("{who}: {other}")),
        };
        SourceError::new(kind, message)
    }

    async fn resolve(&self) -> Result<SocketAddr, SourceError> {
        let (host, port) = split_address(&self.config.address);
        let mut addresses = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|error| {
                SourceError::new(
                    SourceErrorKind::Configuration,
                    format!(
                        "{}: cannot resolve '{host}' ({error}) — check `address`",
                        self.who()
                    ),
                )
            })?;
        addresses.next().ok_or_else(|| {
            SourceError::new(
                SourceErrorKind::Configuration,
                format!("{}: '{host}' has no address — check `address`", self.who()),
            )
        })
    }

    /// Connects over the configured transport (TCP first, then UDP, for `auto`).
    async fn connect(&self) -> Result<Connection, SourceError> {
        let address = self.resolve().await?;
        let open =
            |kind| Connection::open(address, kind, self.config.comm_key, self.config.timeout);
        match self.config.transport {
            TransportChoice::Tcp => open(TransportKind::Tcp).await,
            TransportChoice::Udp => open(TransportKind::Udp).await,
            TransportChoice::Auto => match open(TransportKind::Tcp).await {
                Err(ZkError::Connect { source: tcp, .. }) => match open(TransportKind::Udp).await {
                    Err(udp) if udp.is_unanswered() => {
                        return Err(self.nothing_listens(&tcp, &udp));
                    }
                    other => other,
                },
                other => other,
            },
        }
        .map_err(|error| self.error(error))
    }

    /// Neither TCP nor UDP got an answer (`transport = "auto"`).
    fn nothing_listens(&self, tcp: &std::io::Error, udp: &ZkError) -> SourceError {
        let udp = match udp {
            ZkError::Timeout { .. } => "no answer".to_owned(),
            other => other.to_string(),
        };
        SourceError::new(
            SourceErrorKind::Unreachable,
            format!(
                "{}: nothing answers there, over TCP ({tcp}) or UDP ({udp}) — check the address and port (the terminal's Comm menu shows its IP; 4370 is the usual port), that the terminal is switched on and on this network, and that no firewall blocks port 4370",
                self.who()
            ),
        )
    }

    /// Reads serial, counters and the whole log (and the user table when records name
    /// users by index), with the terminal disabled meanwhile.
    async fn read_device(&self, plan: &FetchPlan) -> Result<LogRead, SourceError> {
        let overran = || plan.overran(&self.who());
        let mut connection = tokio::time::timeout_at(plan.deadline, self.connect())
            .await
            .map_err(|_| overran())??;
        let disabled = self.config.disable_while_reading
            && match connection.disable().await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(device = %self.label.name, "cannot disable the terminal while reading: {error}");
                    false
                }
            };
        let reading = self.read_log(&mut connection, &plan.progress);
        let read = tokio::time::timeout_at(plan.deadline, reading).await;
        if disabled {
            self.enable_again(&mut connection).await;
        }
        connection.close().await;
        match read {
            Ok(read) => read.map_err(|error| self.error(error)),
            Err(_) => Err(overran()),
        }
    }

    async fn read_log(
        &self,
        connection: &mut Connection,
        progress: &ReadProgress,
    ) -> Result<LogRead, ZkError> {
        let serial = match &self.config.serial {
            Some(serial) => serial.clone(),
            None => connection.option("~SerialNumber").await?.ok_or_else(|| {
                ZkError::Protocol(format!(
                    "the terminal does not report its serial number — set serial = \"...\" in [[device]] '{}' (it is on the terminal's label)",
                    self.label.name
                ))
            })?,
        };
        crate::device_text::check("serial number", &serial, crate::device_text::SERIAL).map_err(
            |problem| {
                ZkError::Protocol(format!(
                    "{problem} — set serial = \"...\" in [[device]] '{}' (it is on the terminal's label)",
                    self.label.name
                ))
            },
        )?;
        let counters = connection.counters().await?;
        let buffer = connection.attendance_log(Some(progress)).await?;
        let records =
            attendance::split_log(&buffer).map_err(|error| ZkError::Protocol(error.to_string()))?;
        let layout = attendance::detect_layout(records, counters.records, self.current_year())
            .map_err(|error| ZkError::Protocol(error.to_string()))?
            .with_record16(self.config.record16);
        let users = match layout {
            AttendanceLayout::Pin { .. } => UserTable::default(),
            _ => UserTable::from(connection.users(counters.users).await?.1),
        };
        // The clock is worth knowing (a drifting terminal stamps punches wrongly) but
        // not worth failing a read for.
        let clock_drift = match connection.device_time().await {
            Ok(clock) => clock.to_datetime().map(|clock| {
                let host = Utc::now().with_timezone(&self.label.timezone).naive_local();
                (clock - host).num_seconds()
            }),
            Err(_) => None,
        };
        Ok(LogRead {
            clock_drift,
            serial: Arc::from(serial),
            layout,
            buffer,
            users,
            skipped: 0,
            sent: 0,
            counted: counters.records,
            window: false,
        })
    }

    /// Enables the terminal again; if the connection broke, over a fresh one.
    async fn enable_again(&self, connection: &mut Connection) {
        if connection.enable().await.is_ok() {
            return;
        }
        let result = match self.connect().await {
            Ok(mut fresh) => {
                let result = fresh.enable().await.map_err(|error| self.error(error));
                fresh.close().await;
                result
            }
            Err(error) => Err(error),
        };
        if let Err(error) = result {
            tracing::error!(
                device = %self.label.name,
                "could not enable the terminal again after reading; it re-enables itself when restarted: {error}"
            );
        }
    }

    async fn clear_log(&self, expected: u32) -> Result<u32, String> {
        let mut connection = self.connect().await.map_err(|error| error.message)?;
        let result = async {
            connection.disable().await?;
            let now = connection.counters().await?.records;
            if now != expected {
                return Ok(Err(format!(
                    "the terminal now holds {now} punches, {expected} were read; the new ones are read first"
                )));
            }
            connection.clear_attendance().await?;
            Ok::<_, ZkError>(Ok(expected))
        }
        .await;
        self.enable_again(&mut connection).await;
        connection.close().await;
        result.map_err(|error| self.error(error).message)?
    }
}

/// `host`, `host:port`, `[v6]:port` → host and port (default 4370).
fn split_address(address: &str) -> (String, u16) {
    if let Ok(socket) = address.parse::<SocketAddr>() {
        return (socket.ip().to_string(), socket.port());
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => match port.parse() {
            Ok(port) => (host.to_owned(), port),
            Err(_) => (address.to_owned(), DEFAULT_PORT),
        },
        _ => (address.trim_matches(['[', ']']).to_owned(), DEFAULT_PORT),
    }
}

#[async_trait]
impl Source for ZkSource {
    fn label(&self) -> &Arc<DeviceLabel> {
        &self.label
    }

    fn kind(&self) -> &'static str {
        "zk"
    }

    fn location(&self) -> String {
        self.config.address.clone()
    }

    async fn fetch(
        &mut self,
        plan: &FetchPlan,
        out: &mpsc::Sender<Vec<Fetched>>,
    ) -> Result<FetchEnd, SourceError> {
        if plan.shutdown.is_requested() {
            return Ok(FetchEnd::Interrupted);
        }
        // The read is not cut short by Ctrl-C: it is bounded by the timeouts, and
        // leaving it halfway could leave the terminal disabled.
        let mut read = self.read_device(plan).await?;
        // `--since`: the punches of the window only (by the terminal's clock), from the
        // whole log; the cursor is neither used nor moved.
        let window_start = plan.since.and_then(|since| {
            let now = Utc::now().with_timezone(&self.label.timezone).naive_local();
            chrono::Duration::from_std(since)
                .ok()
                .and_then(|since| now.checked_sub_signed(since))
        });
        read.window = plan.since.is_some();
        read.skipped = if read.window {
            0
        } else {
            self.cursor.covers(&read)
        };
        let unread: Vec<usize> = (read.skipped..read.record_count()).collect();
        let mut sent = 0;
        let mut end = FetchEnd::Complete;
        for chunk in unread.chunks(BATCH) {
            let batch: Vec<Fetched> = chunk
                .iter()
                .map(|index| read.fetched(*index))
                .filter(|fetched| match (fetched, window_start) {
                    (Fetched::Record(record), Some(start)) => {
                        !matches!(record.time, RecordTime::Valid(time) if time < start)
                    }
                    _ => true,
                })
                .collect();
            if !batch.is_empty() && out.send(batch).await.is_err() {
                end = FetchEnd::Interrupted;
                break;
            }
            sent += chunk.len();
        }
        read.sent = sent;
        self.facts = Some(serde_json::json!({
            "serial": &*read.serial,
            "records_on_device": read.counted,
            "clock_drift_seconds": read.clock_drift,
        }));
        self.last_read = Some(read);
        Ok(end)
    }

    fn facts(&self) -> Option<Value> {
        self.facts.clone()
    }

    fn settle(&mut self, settlement: &Settlement) -> Option<Value> {
        let read = self.last_read.take()?;
        if settlement.discard {
            return None;
        }
        if read.window {
            if self.config.clear_after_sync {
                self.clear = Some(Err("a --since read covers only part of the log".into()));
            }
            return None;
        }
        let first_unhandled = settlement.unhandled.iter().min().copied();
        let handled = read.skipped + first_unhandled.unwrap_or(read.sent).min(read.sent);
        self.cursor = LogCursor::after(&read, handled);
        if self.config.clear_after_sync {
            let everything = read.record_count();
            self.clear = Some(if settlement.complete && handled == everything {
                Ok(read.counted)
            } else {
                Err(format!(
                    "{} of the {everything} punches read are not delivered yet",
                    everything - handled
                ))
            });
        }
        serde_json::to_value(&self.cursor).ok()
    }

    async fn after_recorded(&mut self) -> Option<String> {
        Some(match self.clear.take()? {
            Ok(expected) => match self.clear_log(expected).await {
                Ok(count) => format!("log cleared ({count} punches, all delivered)"),
                Err(reason) => format!("log not cleared: {reason}"),
            },
            Err(reason) => format!("log not cleared: {reason}"),
        })
    }

    async fn switch_users(&mut self, switches: &[UserSwitch], log: &SwitchLog) -> String {
        match self.switch(switches, log, false).await {
            Ok(tally) => tally.describe(),
            Err(problem) => format!(
                "user control: {} switch(es) not applied: {problem}",
                switches.len()
            ),
        }
    }

    async fn check(&mut self) -> DeviceCheck {
        let mut check = DeviceCheck::default();
        let mut connection = match self.connect().await {
            Ok(connection) => connection,
            Err(error) => {
                check.reachable = error.kind != SourceErrorKind::Unreachable;
                check.auth_ok = (error.kind == SourceErrorKind::Credentials).then_some(false);
                check.error = Some(error);
                return check;
            }
        };
        check.reachable = true;
        check.auth_ok = Some(true);
        let facts = async {
            let mut facts = vec![("transport".to_owned(), connection.kind().name().to_owned())];
            for (label, key) in [
                ("serial", "~SerialNumber"),
                ("platform", "~Platform"),
                ("model", "~DeviceName"),
            ] {
                if let Some(value) = connection.option(key).await? {
                    facts.push((label.to_owned(), value));
                }
            }
            facts.push(("firmware".to_owned(), connection.firmware().await?));
            let clock = connection.device_time().await?;
            let counters = connection.counters().await?;
            let log = connection.attendance_log(None).await?;
            Ok::<_, ZkError>((facts, clock, counters, log))
        }
        .await;
        connection.close().await;
        match facts {
            Ok((facts, clock, counters, log)) => {
                check.facts = facts;
                if let Some(clock) = clock.to_datetime() {
                    let host = Utc::now().with_timezone(&self.label.timezone).naive_local();
                    check.clock_drift = Some(clock - host);
                    check.device_clock = Some(clock);
                }
                check.punches = Some(u64::from(counters.records));
                check
                    .facts
                    .push(("users".into(), counters.users.to_string()));
                check.facts.push((
                    "capacity".into(),
                    format!(
                        "{} of {} punches",
                        counters.records, counters.record_capacity
                    ),
                ));
                let records = attendance::split_log(&log).unwrap_or_default();
                let size =
                    match attendance::detect_layout(records, counters.records, self.current_year())
                    {
                        _ if records.is_empty() => "unknown (the log is empty)".to_owned(),
                        Ok(layout) => format!("{} bytes", layout.size()),
                        Err(error) => format!("undetermined: {error}"),
                    };
                check.facts.push(("record size".into(), size));
            }
            Err(error) => check.error = Some(self.error(error)),
        }
        check
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_an_optional_port() {
        assert_eq!(
            split_address("192.168.1.201"),
            ("192.168.1.201".into(), 4370)
        );
        assert_eq!(
            split_address("192.168.1.201:5005"),
            ("192.168.1.201".into(), 5005)
        );
        assert_eq!(
            split_address("clock.school.local"),
            ("clock.school.local".into(), 4370)
        );
        assert_eq!(split_address("[::1]:4371"), ("::1".into(), 4371));
        assert_eq!(split_address("::1"), ("::1".into(), 4370));
    }
}
