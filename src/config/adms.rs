//! `[adms]`: the receiver pushing terminals send their punches to (`iclock-sync
//! serve`). Off unless the section is there.
//!
//! Terminals cannot send credentials, so what stands for authentication is the list of
//! configured serial numbers (`[[device]] kind = "adms"`): a terminal not in it is never
//! acknowledged unless `unknown_devices = "accept"`. `allow` narrows who may connect at
//! all, by address.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use serde::Deserialize;

use super::error::ConfigError;
use super::section::Section;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdmsSettings {
    pub listen: SocketAddr,
    /// Where the `/iclock/` paths start (`""`, or e.g. `/attendance`).
    pub prefix: String,
    /// Bodies above this many bytes are refused.
    pub max_body: usize,
    /// Who may connect; empty: anyone.
    pub allow: Vec<Cidr>,
    pub unknown_devices: UnknownDevices,
    /// Seconds between a terminal's command polls, and before it retries a failed upload.
    pub delay: u32,
    pub error_delay: u32,
    /// HTTPS: the certificate chain and its key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
}

/// What happens to a terminal whose serial number is not configured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownDevices {
    /// Not acknowledged, so it keeps its punches, and noted as waiting for approval.
    Hold,
    /// Taken as a device named after its serial number, in this computer's zone.
    Accept,
    /// Not acknowledged, and not noted.
    Reject,
}

const DEFAULT_MAX_BODY_MB: u32 = 20;
const DEFAULT_DELAY: u32 = 10;
const DEFAULT_ERROR_DELAY: u32 = 30;

impl AdmsSettings {
    /// The defaults, listening on `listen` (the demo's receiver).
    pub fn on(listen: SocketAddr) -> AdmsSettings {
        AdmsSettings {
            listen,
            prefix: String::new(),
            max_body: DEFAULT_MAX_BODY_MB as usize * 1024 * 1024,
            allow: Vec::new(),
            unknown_devices: UnknownDevices::Hold,
            delay: DEFAULT_DELAY,
            error_delay: DEFAULT_ERROR_DELAY,
            tls: None,
        }
    }
}

/// An address range: `10.0.0.0/8`, `192.168.1.20` (one address), `::1/128`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    bits: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (address, bits) = match text.trim().split_once('/') {
            Some((address, bits)) => (address, Some(bits.parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = address.parse().ok()?;
        let most = if network.is_ipv4() { 32 } else { 128 };
        let bits = bits.unwrap_or(most);
        (bits <= most).then_some(Cidr { network, bits })
    }

    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        match (self.network, address) {
            (IpAddr::V4(network), IpAddr::V4(address)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(network) & mask == u32::from(address) & mask
            }
            (IpAddr::V6(network), IpAddr::V6(address)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(network) & mask == u128::from(address) & mask
            }
            _ => false,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdms {
    listen: String,
    prefix: Option<String>,
    max_body_mb: Option<u32>,
    allow: Option<Vec<String>>,
    unknown_devices: Option<String>,
    delay: Option<u32>,
    error_delay: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

/// Reads `[adms]`; `None` when it is absent (no receiver).
pub fn parse(
    section: &Section,
    value: Option<toml::Value>,
) -> Result<Option<AdmsSettings>, ConfigError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let raw: RawAdms = section.read(section.table(value)?)?;
    let listen = raw.listen.trim().parse::<SocketAddr>().map_err(|_| {
        section.error(
            Some("listen"),
            format!("'{}' is not an address and port", raw.listen),
            "write the address terminals reach this computer on, e.g. listen = \"0.0.0.0:8081\" (all addresses) or \"127.0.0.1:8081\"",
        )
    })?;
    let prefix = match raw.prefix.as_deref().map(str::trim) {
        None | Some("" | "/") => String::new(),
        Some(prefix) if prefix.starts_with('/') && !prefix.contains(['?', '#', ' ']) => {
            prefix.trim_end_matches('/').to_owned()
        }
        Some(prefix) => {
            return Err(section.error(
                Some("prefix"),
                format!("'{prefix}' is not a path"),
                "write the path the terminals' server address ends in, starting with /, e.g. prefix = \"/attendance\"",
            ));
        }
    };
    let max_body_mb = raw.max_body_mb.unwrap_or(DEFAULT_MAX_BODY_MB);
    if !(1..=200).contains(&max_body_mb) {
        return Err(section.error(
            Some("max_body_mb"),
            format!("is {max_body_mb}"),
            "use 1 to 200 (megabytes; terminals send well under 1 MB per upload)",
        ));
    }
    let mut allow = Vec::new();
    for text in raw.allow.unwrap_or_default() {
        allow.push(Cidr::parse(&text).ok_or_else(|| {
            section.error(
                Some("allow"),
                format!("'{text}' is not an address or range"),
                "list addresses or ranges, e.g. allow = [\"192.168.1.0/24\", \"10.20.0.5\"]",
            )
        })?);
    }
    let unknown_devices = match raw.unknown_devices.as_deref().map(str::trim) {
        None | Some("hold") => UnknownDevices::Hold,
        Some("accept") => UnknownDevices::Accept,
        Some("reject") => UnknownDevices::Reject,
        Some(other) => {
            return Err(section.error(
                Some("unknown_devices"),
                format!("'{other}' is not hold, accept or reject"),
                "write unknown_devices = \"hold\" (keep their punches waiting until you add them), \"accept\" or \"reject\"",
            ));
        }
    };
    let seconds =
        |key: &str, value: Option<u32>, default: u32, range: std::ops::RangeInclusive<u32>| {
            let value = value.unwrap_or(default);
            if range.contains(&value) {
                Ok(value)
            } else {
                Err(section.error(
                    Some(key),
                    format!("is {value}"),
                    format!(
                        "use {} to {} seconds (default {default})",
                        range.start(),
                        range.end()
                    ),
                ))
            }
        };
    let tls = section.tls_files(raw.tls_cert, raw.tls_key)?;
    Ok(Some(AdmsSettings {
        listen,
        prefix,
        max_body: max_body_mb as usize * 1024 * 1024,
        allow,
        unknown_devices,
        delay: seconds("delay", raw.delay, DEFAULT_DELAY, 2..=600)?,
        error_delay: seconds(
            "error_delay",
            raw.error_delay,
            DEFAULT_ERROR_DELAY,
            10..=600,
        )?,
        tls,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_hold_what_they_should() {
        let lan = Cidr::parse("192.168.1.0/24").unwrap();
        assert!(lan.contains("192.168.1.77".parse().unwrap()));
        assert!(!lan.contains("192.168.2.1".parse().unwrap()));
        assert!(lan.contains("::ffff:192.168.1.9".parse().unwrap()));
        let one = Cidr::parse("10.0.0.5").unwrap();
        assert!(one.contains("10.0.0.5".parse().unwrap()));
        assert!(!one.contains("10.0.0.6".parse().unwrap()));
        assert!(
            Cidr::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        assert!(
            Cidr::parse("fd00::/8")
                .unwrap()
                .contains("fd12::1".parse().unwrap())
        );
        for bad in ["10.0.0.0/33", "nonsense", "10.0.0/8", "::1/129"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
