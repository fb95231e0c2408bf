//! The `[[device]]` keys of a terminal read over the ZK protocol (`kind = "zk"`).

use std::time::Duration;

use serde::Deserialize;

use super::codec::attendance::Record16;
use crate::duration;

/// How to reach the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportChoice {
    Tcp,
    Udp,
    /// TCP, and UDP if the terminal does not accept TCP connections.
    #[default]
    Auto,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZkConfig {
    /// `host` or `host:port` (default port 4370).
    pub address: String,
    #[serde(default)]
    pub transport: TransportChoice,
    /// The terminal's Comm Key (System → Comm → Comm Key), 0 when none is set.
    #[serde(default)]
    pub comm_key: u32,
    /// How long to wait for each answer.
    #[serde(default = "default_timeout", with = "duration::serde_text")]
    pub timeout: Duration,
    /// Lock the keypad while reading, so no punch lands mid-read; always unlocked after.
    #[serde(default = "enabled")]
    pub disable_while_reading: bool,
    /// Clear the terminal's log once everything read is delivered (never the default).
    #[serde(default)]
    pub clear_after_sync: bool,
    /// The serial number, for terminals that do not report theirs.
    pub serial: Option<String>,
    /// How bytes 8 and 9 of 16-byte records are read (pyzk's way by default).
    #[serde(default)]
    pub record16: Record16,
}

impl ZkConfig {
    /// A terminal at `address` with every other key at its default.
    pub fn at(address: impl Into<String>) -> ZkConfig {
        ZkConfig {
            address: address.into(),
            transport: TransportChoice::default(),
            comm_key: 0,
            timeout: default_timeout(),
            disable_while_reading: true,
            clear_after_sync: false,
            serial: None,
            record16: Record16::default(),
        }
    }
}

pub const DEFAULT_PORT: u16 = 4370;

pub fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn enabled() -> bool {
    true
}
