//! The `[[device]]` keys of a terminal read over the ZK protocol (`kind = "zk"`): read,
//! checked, and turned into the source.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::ZkSource;
use super::codec::attendance::Record16;
use crate::config::error::ConfigError;
use crate::config::section::Section;
use crate::duration;
use crate::punch::DeviceLabel;
use crate::source::{DeviceKind, Source, SourceConfig, SourceError};

/// `kind = "zk"` in the configuration's table of kinds.
pub const KIND: DeviceKind = DeviceKind {
    name: "zk",
    describes: "a terminal read over port 4370",
    parse,
};

fn parse(table: toml::Table, section: &Section) -> Result<Arc<dyn SourceConfig>, ConfigError> {
    let config: ZkConfig = section.read(table)?;
    if config.address.trim().is_empty() {
        return Err(section.error(
            Some("address"),
            "is empty",
            "write the terminal's IP address, e.g. address = \"192.168.1.201\" (port 4370 is the default)",
        ));
    }
    if config.comm_key > 999_999 {
        return Err(section.error(
            Some("comm_key"),
            format!("{} is out of range", config.comm_key),
            "a comm key is 0 to 999999, as set in the terminal's menu (System → Comm → Comm Key)",
        ));
    }
    if config.timeout < Duration::from_millis(100) {
        return Err(section.error(
            Some("timeout"),
            "is too short",
            "use at least \"1s\"; \"10s\" suits most networks",
        ));
    }
    Ok(Arc::new(config))
}

impl SourceConfig for ZkConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn location(&self) -> String {
        self.address.clone()
    }

    fn clears_after_sync(&self) -> bool {
        self.clear_after_sync
    }

    fn open(
        &self,
        label: Arc<DeviceLabel>,
        cursor: Option<&Value>,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(ZkSource::new(label, self, cursor)))
    }

    fn user_control(&self) -> Result<&'static str, &'static str> {
        Ok("the disabled bit of their record")
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

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
