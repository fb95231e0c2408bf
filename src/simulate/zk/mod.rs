//! A simulated ZKTeco terminal speaking the ZK binary protocol on a real local port:
//! connect with or without a comm key, options, counters, clock, the user table and
//! attendance log through the buffered-read protocol (TCP 0xFFC0 chunks, or UDP 1 KiB
//! datagrams), user writes, clearing the log, enable/disable, and live attendance
//! events. It uses the same codec as the client (`source::zk::codec`); tests also read
//! it with pyzk, the most-used client in the field, so the two cannot drift together.

mod dataset;
mod server;
mod terminal;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

pub use dataset::{TerminalData, TerminalSpec, generate};
pub use terminal::{ChunkFault, TerminalProfile, TerminalStats};

use self::server::Shared;
use self::terminal::Terminal;
use crate::duration;
use crate::simulate::biotime::now_local;
use crate::source::zk::TransportKind;
use crate::source::zk::codec::attendance::{AttendanceLayout, AttendanceRecord};
use crate::source::zk::codec::users::UserRecord;

/// `iclock-sync simulate zk …`
#[derive(Debug, Clone, clap::Args)]
pub struct ZkSimulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:4370")]
    pub listen: String,
    /// Speak UDP instead of TCP (an older terminal).
    #[arg(long)]
    pub udp: bool,
    /// Require this comm key (0 = none).
    #[arg(long, default_value_t = 0)]
    pub comm_key: u32,
    /// Punches in the log.
    #[arg(long, default_value_t = 1000)]
    pub punches: u64,
    /// Users on the terminal.
    #[arg(long, default_value_t = 50)]
    pub users: u16,
    /// Attendance record size: 40 (TFT), 49 (2022 MB560-VL), 16 (ExtendFmt) or 8 (old B&W).
    #[arg(long, default_value_t = 40, value_parser = parse_record_size)]
    pub record_size: usize,
    /// Serial number the terminal reports.
    #[arg(long, default_value = "CKJT214960123")]
    pub serial: String,
    /// Extra broken records (impossible date, far future, empty PIN or unknown user).
    #[arg(long, default_value_t = 0)]
    pub bad_records: u32,
    /// Seed for the generated data (same seed, same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Make a live punch this often (e.g. 10s), for watching events.
    #[arg(long, value_parser = duration::parse)]
    pub punch_every: Option<Duration>,
}

fn parse_record_size(text: &str) -> Result<usize, String> {
    match text {
        "40" | "49" | "16" | "8" => text.parse().map_err(|_| "not a number".to_owned()),
        _ => Err("the record size is 40, 49, 16 or 8".to_owned()),
    }
}

/// The layout of a record size.
pub fn layout_of(record_size: usize) -> AttendanceLayout {
    match record_size {
        16 => AttendanceLayout::EXTENDED,
        8 => AttendanceLayout::Compact { time_at: 4 },
        size => AttendanceLayout::Pin { size },
    }
}

impl ZkSimulatorArgs {
    pub fn profile(&self) -> TerminalProfile {
        TerminalProfile {
            serial: self.serial.clone(),
            comm_key: self.comm_key,
            layout: layout_of(self.record_size),
            fail_after_chunks: None,
            chunk_fault: None,
        }
    }

    pub fn data(&self) -> TerminalData {
        generate(&TerminalSpec {
            users: self.users,
            punches: self.punches,
            bad_records: self.bad_records,
            seed: self.seed,
            anchor: now_local(),
            layout: layout_of(self.record_size),
        })
    }
}

/// A running simulated terminal; stops when dropped.
pub struct ZkSimulator {
    shared: Arc<Shared>,
    address: SocketAddr,
    kind: TransportKind,
    task: JoinHandle<()>,
}

impl ZkSimulator {
    pub async fn start_tcp(
        listener: TcpListener,
        profile: TerminalProfile,
        data: TerminalData,
    ) -> std::io::Result<ZkSimulator> {
        let address = listener.local_addr()?;
        let shared = shared(profile, data);
        let task = tokio::spawn(server::serve_tcp(listener, Arc::clone(&shared)));
        Ok(ZkSimulator {
            shared,
            address,
            kind: TransportKind::Tcp,
            task,
        })
    }

    pub async fn start_udp(
        socket: UdpSocket,
        profile: TerminalProfile,
        data: TerminalData,
    ) -> std::io::Result<ZkSimulator> {
        let address = socket.local_addr()?;
        let shared = shared(profile, data);
        let task = tokio::spawn(server::serve_udp(socket, Arc::clone(&shared)));
        Ok(ZkSimulator {
            shared,
            address,
            kind: TransportKind::Udp,
            task,
        })
    }

    /// Starts on a free loopback port.
    pub async fn start_local(
        kind: TransportKind,
        profile: TerminalProfile,
        data: TerminalData,
    ) -> std::io::Result<ZkSimulator> {
        match kind {
            TransportKind::Tcp => {
                ZkSimulator::start_tcp(TcpListener::bind("127.0.0.1:0").await?, profile, data).await
            }
            TransportKind::Udp => {
                ZkSimulator::start_udp(UdpSocket::bind("127.0.0.1:0").await?, profile, data).await
            }
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn kind(&self) -> TransportKind {
        self.kind
    }

    pub fn stats(&self) -> TerminalStats {
        self.shared.terminal().stats.clone()
    }

    /// The log as the terminal holds it.
    pub fn records(&self) -> Vec<AttendanceRecord> {
        self.shared.terminal().records()
    }

    pub fn users(&self) -> Vec<UserRecord> {
        self.shared.terminal().users.clone()
    }

    pub fn is_enabled(&self) -> bool {
        self.shared.terminal().enabled
    }

    /// A punch made now; subscribed sessions receive it as a live event.
    pub fn punch(&self, user_id: &str, state: u8, verify: u8) {
        let event = self.shared.terminal().punch(user_id, state, verify);
        let _ = self.shared.events.send(event);
    }

    pub fn set_profile(&self, change: impl FnOnce(&mut TerminalProfile)) {
        change(&mut self.shared.terminal().profile);
    }
}

impl Drop for ZkSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn shared(profile: TerminalProfile, data: TerminalData) -> Arc<Shared> {
    let (events, _) = broadcast::channel(64);
    Arc::new(Shared {
        terminal: Mutex::new(Terminal::new(profile, data.users, &data.records)),
        events,
    })
}
