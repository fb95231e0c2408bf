//! A session with one terminal: connect (with the comm key), ask, and read its tables
//! with the buffered-read protocol (docs/zk-protocol.md: "The comm key", "Bulk reads").
//!
//! Every request carries the next reply number and the reply must echo it; anything
//! else that arrives (a live event, a late packet from a retried request) is set aside.
//! A chunk that times out is asked for again, up to three times.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::codec::commkey;
use super::codec::counters::Counters;
use super::codec::event::AttendanceEvent;
use super::codec::le::Fields;
use super::codec::messages;
use super::codec::packet::{Packet, code};
use super::codec::time::DeviceTime;
use super::codec::users::{UserLayout, UserRecord, decode_users};
use super::transport::{Transport, TransportError, TransportKind};
use crate::source::ReadProgress;

/// TCP chunks are 0xFFC0 bytes; UDP chunks 16 KiB (sent as 1 KiB datagrams).
const TCP_CHUNK: u32 = 0xFFC0;
const UDP_CHUNK: u32 = 16 * 1024;
const CHUNK_ATTEMPTS: u32 = 3;
/// A table larger than this is not a real device's (100,000 punches are 4 MB).
const MAX_TABLE: u32 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("cannot connect over {transport}: {source}")]
    Connect {
        transport: &'static str,
        source: std::io::Error,
    },
    #[error("no answer within {} s to {what}", .timeout.as_secs_f32())]
    Timeout { what: String, timeout: Duration },
    #[error("{0}")]
    Transport(#[from] TransportError),
    #[error("comm key rejected")]
    CommKeyRejected,
    #[error("the terminal refused {what} (answer {code})")]
    Refused { what: String, code: u16 },
    #[error("{0}")]
    Protocol(String),
    /// A chunk arrived short (a lost datagram): worth asking for again.
    #[error("{0}")]
    Incomplete(String),
}

impl ZkError {
    /// Whether nothing answered at all (no reply in time, or the port refused).
    pub fn is_unanswered(&self) -> bool {
        match self {
            ZkError::Timeout { .. } | ZkError::Connect { .. } => true,
            ZkError::Transport(TransportError::Io(error)) => {
                error.kind() == std::io::ErrorKind::ConnectionRefused
            }
            _ => false,
        }
    }

    /// Whether the terminal dropped the connection (closed or reset it).
    pub fn is_dropped_connection(&self) -> bool {
        use std::io::ErrorKind;
        match self {
            ZkError::Transport(TransportError::Closed) => true,
            ZkError::Transport(TransportError::Io(error)) => matches!(
                error.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
            ),
            _ => false,
        }
    }
}

pub struct Connection {
    transport: Transport,
    session: u16,
    reply: u16,
    timeout: Duration,
    events: Vec<AttendanceEvent>,
}

impl Connection {
    /// Connects and authenticates.
    pub async fn open(
        address: SocketAddr,
        kind: TransportKind,
        comm_key: u32,
        timeout: Duration,
    ) -> Result<Connection, ZkError> {
        let transport = Transport::connect(kind, address, timeout)
            .await
            .map_err(|source| ZkError::Connect {
                transport: kind.name(),
                source,
            })?;
        let mut connection = Connection {
            transport,
            session: 0,
            reply: 0,
            timeout,
            events: Vec::new(),
        };
        let answer = connection
            .exchange(code::CONNECT, Vec::new(), "connect")
            .await?;
        connection.session = answer.session;
        match answer.command {
            code::ACK_OK => Ok(connection),
            code::ACK_UNAUTH => {
                let key = commkey::mix(comm_key, connection.session).to_vec();
                let answer = connection.exchange(code::AUTH, key, "the comm key").await?;
                match answer.command {
                    code::ACK_OK => Ok(connection),
                    code::ACK_UNAUTH => Err(ZkError::CommKeyRejected),
                    other => Err(ZkError::Refused {
                        what: "the comm key".into(),
                        code: other,
                    }),
                }
            }
            other => Err(ZkError::Refused {
                what: "the connection".into(),
                code: other,
            }),
        }
    }

    pub fn kind(&self) -> TransportKind {
        self.transport.kind()
    }

    /// Says goodbye; errors are ignored (the session ends either way).
    pub async fn close(mut self) {
        let _ = self.exchange(code::EXIT, Vec::new(), "exit").await;
    }

    /// Sends one request and returns the reply that echoes its number.
    async fn exchange(
        &mut self,
        command: u16,
        payload: Vec<u8>,
        what: &str,
    ) -> Result<Packet, ZkError> {
        let reply = self.reply;
        self.reply = self.reply.wrapping_add(1);
        let request = Packet::new(command, self.session, reply, payload);
        self.transport.send(&request).await?;
        self.receive_reply(reply, what).await
    }

    async fn receive_reply(&mut self, reply: u16, what: &str) -> Result<Packet, ZkError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        self.receive_reply_until(reply, what, deadline).await
    }

    /// The next packet that answers `reply`, if it comes before `deadline`. Packets
    /// that are not ours do not move the deadline.
    async fn receive_reply_until(
        &mut self,
        reply: u16,
        what: &str,
        deadline: tokio::time::Instant,
    ) -> Result<Packet, ZkError> {
        loop {
            let packet = tokio::time::timeout_at(deadline, self.transport.receive())
                .await
                .map_err(|_| ZkError::Timeout {
                    what: what.to_owned(),
                    timeout: self.timeout,
                })??;
            if packet.command == code::REG_EVENT {
                self.take_event(&packet).await?;
                continue;
            }
            if packet.reply == reply {
                return Ok(packet);
            }
            // A late answer to an earlier (retried) request: not ours.
        }
    }

    async fn take_event(&mut self, packet: &Packet) -> Result<(), ZkError> {
        let ack = Packet::new(code::ACK_OK, self.session, 0, Vec::new());
        self.transport.send(&ack).await?;
        if packet.session == code::EF_ATTLOG
            && let Some(event) = AttendanceEvent::decode(&packet.payload)
        {
            self.events.push(event);
        }
        Ok(())
    }

    /// Sends a request that must be answered with ACK_OK (or data).
    async fn request(
        &mut self,
        command: u16,
        payload: Vec<u8>,
        what: &str,
    ) -> Result<Packet, ZkError> {
        let answer = self.exchange(command, payload, what).await?;
        match answer.command {
            code::ACK_OK | code::PREPARE_DATA | code::DATA => Ok(answer),
            code::ACK_UNAUTH => Err(ZkError::CommKeyRejected),
            other => Err(ZkError::Refused {
                what: what.to_owned(),
                code: other,
            }),
        }
    }

    /// An option's value (`~SerialNumber`, `~Platform`, ...); `None` if the terminal
    /// does not know the key.
    pub async fn option(&mut self, key: &str) -> Result<Option<String>, ZkError> {
        let what = format!("option {key}");
        let answer = self
            .exchange(code::OPTIONS_RRQ, messages::option_request(key), &what)
            .await?;
        Ok(match answer.command {
            code::ACK_OK => {
                messages::parse_option_reply(&answer.payload).filter(|value| !value.is_empty())
            }
            _ => None,
        })
    }

    pub async fn firmware(&mut self) -> Result<String, ZkError> {
        let answer = self
            .request(code::GET_VERSION, Vec::new(), "the firmware version")
            .await?;
        Ok(messages::c_string(&answer.payload))
    }

    pub async fn counters(&mut self) -> Result<Counters, ZkError> {
        let answer = self
            .request(code::GET_FREE_SIZES, Vec::new(), "the counters")
            .await?;
        Ok(Counters::decode(&answer.payload))
    }

    pub async fn device_time(&mut self) -> Result<DeviceTime, ZkError> {
        let answer = self
            .request(code::GET_TIME, Vec::new(), "the device time")
            .await?;
        let packed = Fields(&answer.payload)
            .exact_u32(0)
            .ok_or_else(|| ZkError::Protocol("the device time answer is too short".into()))?;
        Ok(DeviceTime::from_packed(packed))
    }

    /// Sets the device clock (wall time in the device's zone).
    pub async fn set_time(&mut self, time: NaiveDateTime) -> Result<(), ZkError> {
        let packed = DeviceTime::from_datetime(time)
            .to_packed()
            .to_le_bytes()
            .to_vec();
        self.request(code::SET_TIME, packed, "setting the time")
            .await?;
        self.request(code::REFRESH_DATA, Vec::new(), "refreshing")
            .await?;
        Ok(())
    }

    /// Locks the keypad and sensor ("Working...") so no punch lands mid-read.
    pub async fn disable(&mut self) -> Result<(), ZkError> {
        self.request(code::DISABLE_DEVICE, Vec::new(), "disabling the terminal")
            .await
            .map(drop)
    }

    pub async fn enable(&mut self) -> Result<(), ZkError> {
        self.request(code::ENABLE_DEVICE, Vec::new(), "re-enabling the terminal")
            .await
            .map(drop)
    }

    /// The user table.
    pub async fn users(&mut self, count: u32) -> Result<(UserLayout, Vec<UserRecord>), ZkError> {
        let buffer = self
            .read_table(code::USERTEMP_RRQ, code::FCT_USER, "the user table", None)
            .await?;
        let records = buffer.get(4..).unwrap_or_default();
        let layout = UserLayout::detect(records, count);
        Ok((layout, decode_users(records, layout)))
    }

    /// Writes a user record back (e.g. with the disabled bit changed).
    pub async fn write_user(&mut self, user: &UserRecord) -> Result<(), ZkError> {
        self.request(code::USER_WRQ, user.raw.clone(), "writing a user")
            .await?;
        self.request(code::REFRESH_DATA, Vec::new(), "refreshing")
            .await?;
        Ok(())
    }

    /// The raw attendance log buffer (`u32 total` then the records); how much of it
    /// has arrived is reported to `progress` as it comes.
    pub async fn attendance_log(
        &mut self,
        progress: Option<&ReadProgress>,
    ) -> Result<Vec<u8>, ZkError> {
        self.read_table(code::ATTLOG_RRQ, 0, "the attendance log", progress)
            .await
    }

    pub async fn clear_attendance(&mut self) -> Result<(), ZkError> {
        self.request(
            code::CLEAR_ATTLOG,
            Vec::new(),
            "clearing the attendance log",
        )
        .await?;
        self.request(code::REFRESH_DATA, Vec::new(), "refreshing")
            .await?;
        Ok(())
    }

    /// Asks for live attendance events (mask `EF_ATTLOG`), or stops them (mask 0).
    pub async fn register_events(&mut self, mask: u32) -> Result<(), ZkError> {
        self.request(
            code::REG_EVENT,
            mask.to_le_bytes().to_vec(),
            "registering for events",
        )
        .await
        .map(drop)
    }

    /// The next live attendance event, waiting at most `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Result<Option<AttendanceEvent>, ZkError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            if !self.events.is_empty() {
                return Ok(Some(self.events.remove(0)));
            }
            match tokio::time::timeout_at(deadline, self.transport.receive()).await {
                Err(_) => return Ok(None),
                Ok(packet) => {
                    let packet = packet?;
                    if packet.command == code::REG_EVENT {
                        self.take_event(&packet).await?;
                    }
                }
            }
        }
    }

    /// Reads a table through PREPARE_BUFFER / READ_BUFFER / FREE_DATA.
    async fn read_table(
        &mut self,
        inner: u16,
        fct: u32,
        what: &str,
        progress: Option<&ReadProgress>,
    ) -> Result<Vec<u8>, ZkError> {
        let answer = self
            .request(
                code::PREPARE_BUFFER,
                messages::prepare_buffer(inner, fct),
                what,
            )
            .await?;
        if answer.command == code::DATA {
            return Ok(answer.payload);
        }
        let size = messages::parse_buffer_ready(&answer.payload).ok_or_else(|| {
            ZkError::Protocol(format!("the answer announcing {what} has no size"))
        })?;
        if size > MAX_TABLE {
            return Err(ZkError::Protocol(format!(
                "{what} is announced as {size} bytes, beyond any real terminal"
            )));
        }
        let chunk = match self.transport.kind() {
            TransportKind::Tcp => TCP_CHUNK,
            TransportKind::Udp => UDP_CHUNK,
        };
        // Grown as data arrives: an announced size is a claim, not a fact.
        let mut buffer = Vec::with_capacity((size as usize).min(1024 * 1024));
        let mut offset = 0;
        while offset < size {
            let length = chunk.min(size - offset);
            buffer.extend_from_slice(&self.read_chunk(offset, length, what).await?);
            offset += length;
            if let Some(progress) = progress {
                progress.report(u64::from(offset), Some(u64::from(size)), "bytes");
            }
        }
        self.request(code::FREE_DATA, Vec::new(), "freeing the buffer")
            .await?;
        Ok(buffer)
    }

    async fn read_chunk(
        &mut self,
        offset: u32,
        length: u32,
        what: &str,
    ) -> Result<Vec<u8>, ZkError> {
        let mut attempt = 1;
        loop {
            match self.try_read_chunk(offset, length, what).await {
                Ok(data) => return Ok(data),
                Err(ZkError::Timeout { .. }) | Err(ZkError::Incomplete(_))
                    if attempt < CHUNK_ATTEMPTS =>
                {
                    tracing::debug!(
                        offset,
                        length,
                        attempt,
                        "chunk not received whole; asking again"
                    );
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn try_read_chunk(
        &mut self,
        offset: u32,
        length: u32,
        what: &str,
    ) -> Result<Vec<u8>, ZkError> {
        let reply = self.reply;
        let first = self
            .exchange(
                code::READ_BUFFER,
                messages::read_buffer(offset, length),
                what,
            )
            .await?;
        let data = match first.command {
            // Some firmware answers with the data straight away.
            code::DATA => first.payload,
            code::PREPARE_DATA => {
                // The whole chunk must arrive within the timeout: a terminal dripping
                // small packets must not keep the read alive for ever.
                let deadline = tokio::time::Instant::now() + self.timeout;
                let mut data = Vec::with_capacity(length as usize);
                loop {
                    let packet = self.receive_reply_until(reply, what, deadline).await?;
                    match packet.command {
                        code::DATA if data.len() + packet.payload.len() > length as usize => {
                            return Err(ZkError::Protocol(format!(
                                "the terminal sent more of {what} than the {length} bytes asked for; stopped reading"
                            )));
                        }
                        code::DATA => data.extend_from_slice(&packet.payload),
                        code::ACK_OK => break data,
                        other => {
                            return Err(ZkError::Refused {
                                what: what.to_owned(),
                                code: other,
                            });
                        }
                    }
                }
            }
            other => {
                return Err(ZkError::Refused {
                    what: what.to_owned(),
                    code: other,
                });
            }
        };
        if data.len() != length as usize {
            return Err(ZkError::Incomplete(format!(
                "a chunk of {what} arrived with {} of {length} bytes",
                data.len()
            )));
        }
        Ok(data)
    }
}
