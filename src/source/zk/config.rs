//! The `[[device]]` keys of a terminal read over the ZK protocol (`kind = "zk"`).

use std::time::Duration;

use serde::Deserialize;

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
}

pub const DEFAULT_PORT: u16 = 4370;

pub fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

fn enabled() -> bool {
    true
}
