//! The simulated terminal: its tables and clock, and what it answers to each request.
//! Transport-independent: the servers feed it packets and send back what it returns.

use chrono::{Local, NaiveDateTime, Timelike};

use crate::source::zk::TransportKind;
use crate::source::zk::codec::attendance::{self, AttendanceLayout, AttendanceRecord, Identity};
use crate::source::zk::codec::commkey;
use crate::source::zk::codec::counters::Counters;
use crate::source::zk::codec::event::AttendanceEvent;
use crate::source::zk::codec::le::Fields;
use crate::source::zk::codec::messages;
use crate::source::zk::codec::packet::{Packet, code};
use crate::source::zk::codec::time::DeviceTime;
use crate::source::zk::codec::users::{UserLayout, UserRecord, decode_user};

/// UDP data datagrams carry at most this much payload.
const UDP_DATA: usize = 1024;
/// A table this small is answered in one DATA packet instead of through READ_BUFFER.
const DIRECT_DATA: usize = 1024;

/// What the simulated terminal is.
#[derive(Debug, Clone)]
pub struct TerminalProfile {
    pub serial: String,
    pub comm_key: u32,
    pub layout: AttendanceLayout,
    /// After this many chunk reads (counted over all connections), the terminal drops
    /// the connection mid-read (TCP reset; over UDP it stops answering).
    pub fail_after_chunks: Option<u32>,
    /// A hostile or broken terminal's answer to every chunk read (TCP only).
    pub chunk_fault: Option<ChunkFault>,
}

/// How a hostile terminal answers a chunk read, after announcing the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFault {
    /// Data packets without end, as fast as the connection takes them.
    Flood,
    /// One small data packet every so often, for ever (each arrives well within any
    /// per-packet timeout).
    Drip(std::time::Duration),
}

impl TerminalProfile {
    pub fn user_layout(&self) -> UserLayout {
        match self.layout {
            AttendanceLayout::Pin { .. } => UserLayout::Tft72,
            _ => UserLayout::Old28,
        }
    }

    fn model(&self) -> (&'static str, &'static str) {
        match self.layout {
            AttendanceLayout::Pin { size: 40 } => ("ZEM760_TFT", "K40 Pro"),
            AttendanceLayout::Pin { .. } => ("ZMM220_TFT", "MB560-VL"),
            AttendanceLayout::Extended { .. } => ("ZEM510", "F18"),
            AttendanceLayout::Compact { .. } => ("ZEM500", "MA300"),
        }
    }
}

/// Counters tests assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalStats {
    pub connections: u64,
    pub rejected_keys: u64,
    pub chunk_reads: u64,
    pub disables: u64,
    pub enables: u64,
    pub clears: u64,
    pub user_writes: u64,
    pub bad_checksums: u64,
}

/// One client's session.
#[derive(Debug, Default)]
pub struct Session {
    pub id: u16,
    authenticated: bool,
    buffer: Option<Vec<u8>>,
    /// REG_EVENT mask.
    pub events: u32,
    /// Stopped answering (UDP fault injection).
    pub silenced: bool,
}

/// What to do after sending the replies.
#[derive(Debug, PartialEq, Eq)]
pub enum Then {
    Continue,
    /// Close the connection (after EXIT).
    Close,
    /// Drop the connection abruptly, mid-conversation (fault injection).
    Reset,
    /// Misbehave as `ChunkFault` says, with data packets answering `reply`.
    Misbehave(ChunkFault, Packet),
}

pub struct Terminal {
    pub profile: TerminalProfile,
    pub users: Vec<UserRecord>,
    /// The attendance log as stored: encoded records back to back.
    log: Vec<u8>,
    clock_offset: chrono::Duration,
    pub enabled: bool,
    pub stats: TerminalStats,
    next_session: u16,
}

impl Terminal {
    pub fn new(
        profile: TerminalProfile,
        users: Vec<UserRecord>,
        records: &[AttendanceRecord],
    ) -> Terminal {
        let log = records
            .iter()
            .flat_map(|record| attendance::encode(record, profile.layout))
            .collect();
        Terminal {
            profile,
            users,
            log,
            clock_offset: chrono::Duration::zero(),
            enabled: true,
            stats: TerminalStats::default(),
            next_session: 0x8df3,
        }
    }

    /// The log as stored, decoded.
    pub fn records(&self) -> Vec<AttendanceRecord> {
        attendance::decode(&self.log, self.profile.layout).collect()
    }

    pub fn record_count(&self) -> usize {
        self.log.len() / self.profile.layout.size()
    }

    pub fn now(&self) -> NaiveDateTime {
        let now = Local::now().naive_local() + self.clock_offset;
        now.with_nanosecond(0).unwrap_or(now)
    }

    /// Records a punch made now by `user_id`; returns the live event for it.
    pub fn punch(&mut self, user_id: &str, state: u8, verify: u8) -> AttendanceEvent {
        let uid = self
            .users
            .iter()
            .find(|user| user.user_id == user_id)
            .map_or(0, |user| user.uid);
        let identity = match self.profile.layout {
            AttendanceLayout::Compact { .. } => Identity::Index(uid),
            _ => Identity::Pin(user_id.to_owned()),
        };
        let record = AttendanceRecord {
            identity: identity.clone(),
            uid: Some(uid),
            time: DeviceTime::from_datetime(self.now()),
            state,
            verify,
            work_code: 0,
        };
        self.log
            .extend(attendance::encode(&record, self.profile.layout));
        AttendanceEvent {
            identity: Identity::Pin(user_id.to_owned()),
            verify,
            state,
            time: record.time,
        }
    }

    /// The packet a subscribed session receives for `event`.
    pub fn event_packet(&self, event: &AttendanceEvent) -> Packet {
        let numeric = !matches!(self.profile.layout, AttendanceLayout::Pin { .. });
        Packet::new(code::REG_EVENT, code::EF_ATTLOG, 0, event.encode(numeric))
    }

    fn counters(&self) -> Counters {
        Counters {
            users: self.users.len() as u32,
            fingers: self.users.len() as u32,
            records: self.record_count() as u32,
            finger_capacity: 3000,
            user_capacity: 3000,
            record_capacity: (self.record_count() as u32).max(100_000).saturating_mul(2),
            faces: 0,
            face_capacity: 0,
        }
    }

    fn option(&self, key: &str) -> Option<String> {
        let (platform, name) = self.profile.model();
        let extended = matches!(self.profile.layout, AttendanceLayout::Extended { .. });
        Some(match key {
            "~SerialNumber" => self.profile.serial.clone(),
            "~Platform" => platform.to_owned(),
            "~DeviceName" => name.to_owned(),
            "~OEMVendor" => "ZKTeco Inc.".to_owned(),
            "~ZKFPVersion" => "10".to_owned(),
            "ZKFaceVersion" => "0".to_owned(),
            "~OS" => "1".to_owned(),
            "~ExtendFmt" | "~UserExtFmt" => u8::from(extended).to_string(),
            "FaceFunOn" | "CompatOldFirmware" | "WorkCode" => "0".to_owned(),
            "~PIN2Width" => "9".to_owned(),
            "MAC" => "00:17:61:12:b4:3c".to_owned(),
            "IPAddress" => "192.168.1.201".to_owned(),
            "NetMask" => "255.255.255.0".to_owned(),
            "GATEIPAddress" => "192.168.1.1".to_owned(),
            "Language" => "69".to_owned(),
            _ => return None,
        })
    }

    /// Answers one request. `bytes` is the request as received (for its checksum).
    pub fn handle(
        &mut self,
        session: &mut Session,
        bytes: &[u8],
        request: &Packet,
        kind: TransportKind,
    ) -> (Vec<Packet>, Then) {
        let reply = |command: u16, payload: Vec<u8>| {
            Packet::new(command, session.id, request.reply, payload)
        };
        if !Packet::checksum_ok(bytes) {
            self.stats.bad_checksums += 1;
            return (
                vec![reply(code::ACK_ERROR_DATA, Vec::new())],
                Then::Continue,
            );
        }
        match request.command {
            code::CONNECT => {
                self.next_session = self.next_session.wrapping_add(1).max(1);
                session.id = self.next_session;
                session.authenticated = self.profile.comm_key == 0;
                self.stats.connections += 1;
                let answer = if session.authenticated {
                    code::ACK_OK
                } else {
                    code::ACK_UNAUTH
                };
                return (
                    vec![Packet::new(answer, session.id, request.reply, Vec::new())],
                    Then::Continue,
                );
            }
            code::AUTH => {
                let expected = commkey::mix(self.profile.comm_key, session.id);
                session.authenticated = request.payload.get(..4) == Some(&expected[..]);
                if !session.authenticated {
                    self.stats.rejected_keys += 1;
                }
                let answer = if session.authenticated {
                    code::ACK_OK
                } else {
                    code::ACK_UNAUTH
                };
                return (vec![reply(answer, Vec::new())], Then::Continue);
            }
            code::EXIT => return (vec![reply(code::ACK_OK, Vec::new())], Then::Close),
            // The acknowledgement of a live event needs no answer.
            code::ACK_OK => return (Vec::new(), Then::Continue),
            _ if !session.authenticated => {
                return (vec![reply(code::ACK_UNAUTH, Vec::new())], Then::Continue);
            }
            _ => {}
        }
        let answer = match request.command {
            code::ENABLE_DEVICE => {
                self.enabled = true;
                self.stats.enables += 1;
                reply(code::ACK_OK, Vec::new())
            }
            code::DISABLE_DEVICE => {
                self.enabled = false;
                self.stats.disables += 1;
                reply(code::ACK_OK, Vec::new())
            }
            code::REFRESH_DATA | code::START_VERIFY | code::CANCEL_CAPTURE | code::OPTIONS_WRQ => {
                reply(code::ACK_OK, Vec::new())
            }
            // What pyzk sends to clear an error state.
            code::ACK_ERROR | code::ACK_UNKNOWN => reply(code::ACK_OK, Vec::new()),
            code::GET_VERSION => reply(code::ACK_OK, b"Ver 6.60 Apr 28 2016\0".to_vec()),
            code::OPTIONS_RRQ => {
                let key = messages::c_string(&request.payload);
                match self.option(&key) {
                    Some(value) => reply(code::ACK_OK, format!("{key}={value}\0").into_bytes()),
                    None => reply(code::ACK_ERROR, Vec::new()),
                }
            }
            code::GET_FREE_SIZES => reply(code::ACK_OK, self.counters().encode()),
            code::GET_TIME => reply(
                code::ACK_OK,
                DeviceTime::from_datetime(self.now())
                    .to_packed()
                    .to_le_bytes()
                    .to_vec(),
            ),
            code::SET_TIME => match Fields(&request.payload)
                .exact_u32(0)
                .and_then(|packed| DeviceTime::from_packed(packed).to_datetime())
            {
                Some(time) => {
                    self.clock_offset = time - Local::now().naive_local();
                    reply(code::ACK_OK, Vec::new())
                }
                None => reply(code::ACK_ERROR, Vec::new()),
            },
            code::USER_WRQ => {
                let layout = self.profile.user_layout();
                if request.payload.len() < layout.size() {
                    reply(code::ACK_ERROR, Vec::new())
                } else {
                    let user = decode_user(&request.payload, layout);
                    self.stats.user_writes += 1;
                    match self
                        .users
                        .iter_mut()
                        .find(|existing| existing.uid == user.uid)
                    {
                        Some(existing) => *existing = user,
                        None => self.users.push(user),
                    }
                    reply(code::ACK_OK, Vec::new())
                }
            }
            code::DELETE_USER => {
                let uid = Fields(&request.payload).exact_u16(0);
                self.users.retain(|user| Some(user.uid) != uid);
                reply(code::ACK_OK, Vec::new())
            }
            code::CLEAR_ATTLOG | code::CLEAR_DATA => {
                self.log.clear();
                self.stats.clears += 1;
                reply(code::ACK_OK, Vec::new())
            }
            code::REG_EVENT => {
                session.events = Fields(&request.payload).exact_u32(0).unwrap_or(0);
                reply(code::ACK_OK, Vec::new())
            }
            code::PREPARE_BUFFER => return (self.prepare_buffer(session, request), Then::Continue),
            code::READ_BUFFER => return self.read_buffer(session, request, kind),
            code::FREE_DATA => {
                session.buffer = None;
                reply(code::ACK_OK, Vec::new())
            }
            _ => reply(code::ACK_UNKNOWN, Vec::new()),
        };
        (vec![answer], Then::Continue)
    }

    fn table(&self, inner: u16, fct: u32) -> Option<Vec<u8>> {
        let with_prefix = |records: Vec<u8>| {
            let mut buffer = (records.len() as u32).to_le_bytes().to_vec();
            buffer.extend(records);
            buffer
        };
        match (inner, fct) {
            (code::ATTLOG_RRQ, _) => Some(with_prefix(self.log.clone())),
            (code::USERTEMP_RRQ, code::FCT_USER) => Some(with_prefix(
                self.users
                    .iter()
                    .flat_map(|user| user.raw.iter().copied())
                    .collect(),
            )),
            // Fingerprint templates: none.
            (7, 2) => Some(with_prefix(Vec::new())),
            _ => None,
        }
    }

    fn prepare_buffer(&mut self, session: &mut Session, request: &Packet) -> Vec<Packet> {
        let reply = |command: u16, payload: Vec<u8>| {
            Packet::new(command, session.id, request.reply, payload)
        };
        let table = messages::parse_prepare_buffer(&request.payload)
            .and_then(|(inner, fct)| self.table(inner, fct));
        match table {
            None => vec![reply(code::ACK_ERROR, Vec::new())],
            Some(buffer) if buffer.len() <= DIRECT_DATA => vec![reply(code::DATA, buffer)],
            Some(buffer) => {
                let ready = messages::buffer_ready(buffer.len() as u32);
                session.buffer = Some(buffer);
                vec![reply(code::ACK_OK, ready)]
            }
        }
    }

    fn read_buffer(
        &mut self,
        session: &mut Session,
        request: &Packet,
        kind: TransportKind,
    ) -> (Vec<Packet>, Then) {
        let reply = |command: u16, payload: Vec<u8>| {
            Packet::new(command, session.id, request.reply, payload)
        };
        let chunk = messages::parse_read_buffer(&request.payload).and_then(|(offset, length)| {
            let (offset, length) = (offset as usize, length as usize);
            session
                .buffer
                .as_ref()?
                .get(offset..offset.checked_add(length)?)
                .map(<[u8]>::to_vec)
        });
        let Some(chunk) = chunk else {
            return (vec![reply(code::ACK_ERROR, Vec::new())], Then::Continue);
        };
        self.stats.chunk_reads += 1;
        if self
            .profile
            .fail_after_chunks
            .is_some_and(|limit| self.stats.chunk_reads > u64::from(limit))
        {
            return (Vec::new(), Then::Reset);
        }
        if let (Some(fault), TransportKind::Tcp) = (self.profile.chunk_fault, kind) {
            let announce = reply(
                code::PREPARE_DATA,
                messages::prepare_data(chunk.len() as u32),
            );
            let size = match fault {
                ChunkFault::Flood => 0xFFC0,
                ChunkFault::Drip(_) => 16,
            };
            return (
                vec![announce],
                Then::Misbehave(fault, reply(code::DATA, vec![0x55; size])),
            );
        }
        let mut packets = vec![reply(
            code::PREPARE_DATA,
            messages::prepare_data(chunk.len() as u32),
        )];
        match kind {
            TransportKind::Tcp => packets.push(reply(code::DATA, chunk)),
            TransportKind::Udp => packets.extend(
                chunk
                    .chunks(UDP_DATA)
                    .map(|part| reply(code::DATA, part.to_vec())),
            ),
        }
        packets.push(reply(code::ACK_OK, Vec::new()));
        (packets, Then::Continue)
    }
}
