//! Configuration: `iclock-sync.toml` (or `--config PATH`), `.env` (see
//! [`Environment`]), and `${ENV}` references, turned into a validated [`Config`] — or a
//! [`ConfigError`] that names the file, the key and the fix, which the binary reports
//! with exit code 2.
//!
//! Without a TOML file, a BioTime server can be configured from the environment alone
//! (`BIOTIME_URL`, `BIOTIME_USERNAME`, `BIOTIME_PASSWORD`, ...; see `.env.example`).
//! Relative paths are relative to the working directory, as with the Python tool.

mod env_expand;
mod environment;
mod secret;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono_tz::Tz;
use serde::Deserialize;

pub use environment::Environment;
pub use secret::Secret;

use crate::duration;
use crate::punch::IdScheme;
use crate::sink::firestore::{FirestoreConfig, PYTHON_DEFAULT_KEY};
use crate::sink::frappe::{FrappeConfig, RawFrappeConfig};
use crate::sink::sqlite::SqliteConfig;
use crate::source::biotime::BiotimeConfig;
use crate::source::zk::ZkConfig;

pub const DEFAULT_CONFIG_FILE: &str = "iclock-sync.toml";

/// A configuration problem: where, what, and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{origin}: {problem} — {fix}")]
pub struct ConfigError {
    pub origin: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub fn new(
        origin: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            origin: origin.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Where the configuration came from, for messages (`iclock-sync.toml`, `.env`).
    pub origin: String,
    pub sync: SyncSettings,
    pub devices: Vec<DeviceConfig>,
    pub sinks: SinkSettings,
    /// Where sinks look up their own variables (FIREBASE_KEY, ...).
    pub environment: Environment,
}

#[derive(Debug, Clone)]
pub struct SyncSettings {
    pub id_scheme: IdScheme,
    pub cache_dir: PathBuf,
    pub output_dir: PathBuf,
    /// Punches further than this in the device's future are quarantined.
    pub max_future_skew: Duration,
    /// How many devices are read at the same time.
    pub parallel_devices: usize,
}

impl Default for SyncSettings {
    fn default() -> SyncSettings {
        SyncSettings {
            id_scheme: IdScheme::Native,
            cache_dir: PathBuf::from("cache"),
            output_dir: PathBuf::from("output"),
            max_future_skew: Duration::from_secs(86_400),
            parallel_devices: 4,
        }
    }
}

#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    pub timezone: Tz,
    pub enabled: bool,
    /// With `--loop`: how often this device is read (default: the loop's interval).
    pub interval: Option<Duration>,
    /// Where the device stands (`latitude`, `longitude`), for sinks that record it.
    pub coordinates: Option<(f64, f64)>,
    pub kind: DeviceKind,
}

impl DeviceConfig {
    /// Where the device is, for messages and templates: a URL or an address.
    pub fn location(&self) -> String {
        match &self.kind {
            DeviceKind::Biotime(config) => config.url.clone(),
            DeviceKind::Zk(config) => config.address.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub enum DeviceKind {
    Biotime(BiotimeConfig),
    Zk(ZkConfig),
}

impl DeviceKind {
    pub fn name(&self) -> &'static str {
        match self {
            DeviceKind::Biotime(_) => "biotime",
            DeviceKind::Zk(_) => "zk",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SinkSettings {
    pub sqlite: Option<SqliteConfig>,
    pub firestore: Option<FirestoreConfig>,
    pub frappe: Option<FrappeConfig>,
}

impl SinkSettings {
    pub fn is_empty(&self) -> bool {
        self.sqlite.is_none() && self.firestore.is_none() && self.frappe.is_none()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    sync: RawSync,
    #[serde(default)]
    device: Vec<toml::Table>,
    #[serde(default)]
    sink: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    id_scheme: Option<IdScheme>,
    cache_dir: Option<PathBuf>,
    output_dir: Option<PathBuf>,
    max_future_skew: Option<String>,
    parallel_devices: Option<usize>,
}

/// How to find and read the configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`; when absent, `./iclock-sync.toml`, then the environment.
    pub path: Option<PathBuf>,
    /// Dry runs never contact sinks, so unresolved `${VAR}`s under `[sink.*]` are fine.
    pub dry_run: bool,
}

/// Reads and validates the configuration.
pub fn load(options: &LoadOptions, environment: &Environment) -> Result<Config, ConfigError> {
    let lookup = |name: &str| environment.get(name);
    match read_file(options)? {
        Some((origin, text)) => parse(&origin, &text, options.dry_run, &lookup),
        None => from_environment(&lookup),
    }
    .map(|config| Config {
        environment: environment.clone(),
        ..config
    })
}

/// Only the `[sync]` settings (paths, ID scheme), for commands that touch no device:
/// from the configuration file if there is one, else the defaults (the Python tool's
/// `cache/` and `output/` layout).
pub fn load_settings(
    options: &LoadOptions,
    environment: &Environment,
) -> Result<SyncSettings, ConfigError> {
    let Some((origin, text)) = read_file(options)? else {
        return Ok(SyncSettings::default());
    };
    let value = parse_toml(&origin, &text)?;
    let mut sync = value
        .get("sync")
        .cloned()
        .unwrap_or(toml::Value::Table(toml::Table::new()));
    let lookup = |name: &str| environment.get(name);
    env_expand::expand(&mut sync, &[], &lookup).map_err(|unresolved| {
        ConfigError::new(
            format!("{origin}: [sync]"),
            format!("environment variable {} is not set", unresolved.variable),
            format!("set {} in .env or in the environment", unresolved.variable),
        )
    })?;
    let raw: RawSync = sync.try_into().map_err(|error: toml::de::Error| {
        ConfigError::new(
            format!("{origin}: [sync]"),
            error.message().trim().to_owned(),
            "see the configuration reference in README.md for the allowed keys",
        )
    })?;
    build_sync(&origin, raw)
}

/// The configuration file's name and text: `--config PATH` (which must exist), else
/// `./iclock-sync.toml` if present, else `None`.
fn read_file(options: &LoadOptions) -> Result<Option<(String, String)>, ConfigError> {
    let path = match &options.path {
        Some(path) if !path.exists() => {
            return Err(ConfigError::new(
                path.display().to_string(),
                "file not found",
                "check the --config path, or omit it to use ./iclock-sync.toml",
            ));
        }
        Some(path) => path.clone(),
        None if Path::new(DEFAULT_CONFIG_FILE).exists() => PathBuf::from(DEFAULT_CONFIG_FILE),
        None => return Ok(None),
    };
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(&path).map_err(|error| {
        ConfigError::new(
            &origin,
            format!("cannot be read: {error}"),
            "check the file's permissions",
        )
    })?;
    Ok(Some((origin, text)))
}

fn parse_toml(origin: &str, text: &str) -> Result<toml::Value, ConfigError> {
    toml::from_str(text).map_err(|error| {
        let location = error
            .span()
            .map(|span| format!(" line {}", line_of(text, span.start)))
            .unwrap_or_default();
        ConfigError::new(
            format!("{origin}{location}"),
            error.message().trim().to_owned(),
            "fix the TOML syntax (see the configuration reference in README.md)",
        )
    })
}

/// Parses and validates TOML text; `origin` names it in errors.
pub fn parse(
    origin: &str,
    text: &str,
    dry_run: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut value = parse_toml(origin, text)?;
    let lenient: &[&str] = if dry_run { &["sink"] } else { &[] };
    env_expand::expand(&mut value, lenient, lookup).map_err(|unresolved| {
        ConfigError::new(
            format!("{origin}: {}", describe_key(&value, &unresolved.key_path)),
            format!("environment variable {} is not set", unresolved.variable),
            format!(
                "set {} in .env or in the environment, or write the value directly",
                unresolved.variable
            ),
        )
    })?;
    from_value(origin, value)
}

fn from_value(origin: &str, value: toml::Value) -> Result<Config, ConfigError> {
    let raw: RawConfig = value.try_into().map_err(|error: toml::de::Error| {
        ConfigError::new(
            origin,
            error.message().trim().to_owned(),
            "see the configuration reference in README.md for the allowed keys",
        )
    })?;
    build(origin, raw)
}

fn build(origin: &str, raw: RawConfig) -> Result<Config, ConfigError> {
    let sync = build_sync(origin, raw.sync)?;
    let mut devices = Vec::new();
    let mut names = HashSet::new();
    for (index, table) in raw.device.into_iter().enumerate() {
        let device = build_device(origin, index, table)?;
        if !names.insert(device.name.clone()) {
            return Err(ConfigError::new(
                format!("{origin}: [[device]] '{}'", device.name),
                "the name is used twice",
                "give every [[device]] its own name (cursors and summaries are keyed on it)",
            ));
        }
        devices.push(device);
    }
    if devices.is_empty() {
        return Err(ConfigError::new(
            origin,
            "no [[device]] is configured",
            "add a [[device]] section (see README.md), or try `iclock-sync demo`",
        ));
    }
    Ok(Config {
        origin: origin.to_owned(),
        sync,
        sinks: build_sinks(origin, raw.sink, &devices)?,
        devices,
        environment: Environment::default(),
    })
}

/// Reads each `[sink.NAME]` on its own, so that a mistake names its section.
fn build_sinks(
    origin: &str,
    mut table: toml::Table,
    devices: &[DeviceConfig],
) -> Result<SinkSettings, ConfigError> {
    fn section<T: serde::de::DeserializeOwned>(
        origin: &str,
        name: &str,
        value: toml::Value,
    ) -> Result<T, ConfigError> {
        value.try_into().map_err(|error: toml::de::Error| {
            ConfigError::new(
                format!("{origin}: [sink.{name}]"),
                error.message().trim().to_owned(),
                format!("see [sink.{name}] in the configuration reference in README.md"),
            )
        })
    }
    let frappe = match table.remove("frappe") {
        None => None,
        Some(value) => {
            let raw: RawFrappeConfig = section(origin, "frappe", value)?;
            Some(raw.validate(&format!("{origin}: [sink.frappe]"), devices)?)
        }
    };
    let settings = SinkSettings {
        sqlite: table
            .remove("sqlite")
            .map(|value| section(origin, "sqlite", value))
            .transpose()?,
        firestore: table
            .remove("firestore")
            .map(|value| section(origin, "firestore", value))
            .transpose()?,
        frappe,
    };
    if let Some(unknown) = table.keys().next() {
        return Err(ConfigError::new(
            format!("{origin}: [sink.{unknown}]"),
            "is not a known sink",
            "use [sink.sqlite], [sink.firestore] or [sink.frappe]",
        ));
    }
    Ok(settings)
}

fn build_sync(origin: &str, raw: RawSync) -> Result<SyncSettings, ConfigError> {
    let defaults = SyncSettings::default();
    let max_future_skew = match raw.max_future_skew {
        Some(text) => duration::parse(&text).map_err(|problem| {
            ConfigError::new(
                format!("{origin}: [sync] max_future_skew"),
                problem,
                "write a duration such as \"1d\" or \"2h\"",
            )
        })?,
        None => defaults.max_future_skew,
    };
    let parallel_devices = raw.parallel_devices.unwrap_or(defaults.parallel_devices);
    if parallel_devices == 0 {
        return Err(ConfigError::new(
            format!("{origin}: [sync] parallel_devices"),
            "must be at least 1",
            "set parallel_devices = 4 (or remove the key)",
        ));
    }
    Ok(SyncSettings {
        id_scheme: raw.id_scheme.unwrap_or(defaults.id_scheme),
        cache_dir: raw.cache_dir.unwrap_or(defaults.cache_dir),
        output_dir: raw.output_dir.unwrap_or(defaults.output_dir),
        max_future_skew,
        parallel_devices,
    })
}

fn build_device(
    origin: &str,
    index: usize,
    mut table: toml::Table,
) -> Result<DeviceConfig, ConfigError> {
    let position = format!("{origin}: [[device]] #{}", index + 1);
    let name = match table.remove("name") {
        Some(toml::Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => {
            return Err(ConfigError::new(
                position,
                "has no name",
                "add name = \"Main office\" (any label; it appears in summaries)",
            ));
        }
    };
    let at = format!("{origin}: [[device]] '{name}'");
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        _ => {
            return Err(ConfigError::new(
                at,
                "has no kind",
                "add kind = \"biotime\"",
            ));
        }
    };
    let enabled = match table.remove("enabled") {
        None => true,
        Some(toml::Value::Boolean(enabled)) => enabled,
        Some(_) => {
            return Err(ConfigError::new(
                format!("{at} key `enabled`"),
                "must be true or false",
                "write enabled = true or enabled = false",
            ));
        }
    };
    let timezone = match table.remove("timezone") {
        None => host_timezone(),
        Some(toml::Value::String(zone)) => zone.trim().parse::<Tz>().map_err(|_| {
            ConfigError::new(
                format!("{at} key `timezone`"),
                format!("'{zone}' is not an IANA time zone"),
                "use a name such as \"Indian/Maldives\" or \"Asia/Kolkata\" (the device's zone)",
            )
        })?,
        Some(_) => {
            return Err(ConfigError::new(
                format!("{at} key `timezone`"),
                "must be a string",
                "write timezone = \"Indian/Maldives\"",
            ));
        }
    };
    let interval = match table.remove("interval") {
        None => None,
        Some(toml::Value::String(text)) => Some(
            duration::parse(&text)
                .ok()
                .filter(|interval| !interval.is_zero())
                .ok_or_else(|| {
                    ConfigError::new(
                        format!("{at} key `interval`"),
                        format!("'{text}' is not a duration"),
                        "write how often to read this device with --loop, e.g. interval = \"5m\"",
                    )
                })?,
        ),
        Some(_) => {
            return Err(ConfigError::new(
                format!("{at} key `interval`"),
                "must be a string",
                "write interval = \"5m\"",
            ));
        }
    };
    let coordinate = |table: &mut toml::Table, key: &str, limit: f64| match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::Float(value)) if value.abs() <= limit => Ok(Some(value)),
        Some(toml::Value::Integer(value)) if (value as f64).abs() <= limit => {
            Ok(Some(value as f64))
        }
        Some(_) => Err(ConfigError::new(
            format!("{at} key `{key}`"),
            format!("must be a number between -{limit} and {limit}"),
            "write the device's position in decimal degrees, e.g. latitude = 4.1755, longitude = 73.5093",
        )),
    };
    let coordinates = match (
        coordinate(&mut table, "latitude", 90.0)?,
        coordinate(&mut table, "longitude", 180.0)?,
    ) {
        (Some(latitude), Some(longitude)) => Some((latitude, longitude)),
        (None, None) => None,
        _ => {
            return Err(ConfigError::new(
                &at,
                "has only one of latitude and longitude",
                "give both, or neither",
            ));
        }
    };
    let kind = match kind.as_str() {
        "biotime" => {
            let config: BiotimeConfig =
                toml::Value::Table(table)
                    .try_into()
                    .map_err(|error: toml::de::Error| {
                        ConfigError::new(
                            &at,
                            error.message().trim().to_owned(),
                            "a biotime device takes url, username, password, auth, page_size, timeout, overlap, accept_invalid_certs",
                        )
                    })?;
            DeviceKind::Biotime(validate_biotime(&at, config)?)
        }
        "zk" => {
            let config: ZkConfig = toml::Value::Table(table).try_into().map_err(
                |error: toml::de::Error| {
                    ConfigError::new(
                        &at,
                        error.message().trim().to_owned(),
                        "a zk device takes address, transport, comm_key, timeout, disable_while_reading, clear_after_sync, serial",
                    )
                },
            )?;
            DeviceKind::Zk(validate_zk(&at, config)?)
        }
        other => {
            return Err(ConfigError::new(
                format!("{at} key `kind`"),
                format!("unknown device kind '{other}'"),
                "use kind = \"zk\" (a terminal read over port 4370) or kind = \"biotime\" (a BioTime / ZKBioTime server)",
            ));
        }
    };
    Ok(DeviceConfig {
        name,
        timezone,
        enabled,
        interval,
        coordinates,
        kind,
    })
}

fn validate_biotime(at: &str, mut config: BiotimeConfig) -> Result<BiotimeConfig, ConfigError> {
    let url = config.url.trim().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&url).ok().filter(|parsed| {
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some()
    });
    if parsed.is_none() {
        return Err(ConfigError::new(
            format!("{at} key `url`"),
            format!("'{}' is not an http(s) URL", config.url),
            "write the BioTime address as http://HOST:PORT, e.g. url = \"http://192.168.1.20:8081\"",
        ));
    }
    config.url = url;
    if config.username.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{at} key `username`"),
            "is empty",
            "set the BioTime user the API should log in as",
        ));
    }
    if config.password.is_empty() {
        return Err(ConfigError::new(
            format!("{at} key `password`"),
            "is empty",
            "set password = \"${BIOTIME_PASSWORD}\" and put BIOTIME_PASSWORD in .env",
        ));
    }
    if !(1..=10_000).contains(&config.page_size) {
        return Err(ConfigError::new(
            format!("{at} key `page_size`"),
            format!("{} is out of range", config.page_size),
            "use a value between 1 and 10000 (1000 is a good choice)",
        ));
    }
    Ok(config)
}

fn validate_zk(at: &str, config: ZkConfig) -> Result<ZkConfig, ConfigError> {
    if config.address.trim().is_empty() {
        return Err(ConfigError::new(
            format!("{at} key `address`"),
            "is empty",
            "write the terminal's IP address, e.g. address = \"192.168.1.201\" (port 4370 is the default)",
        ));
    }
    if config.comm_key > 999_999 {
        return Err(ConfigError::new(
            format!("{at} key `comm_key`"),
            format!("{} is out of range", config.comm_key),
            "a comm key is 0 to 999999, as set in the terminal's menu (System → Comm → Comm Key)",
        ));
    }
    if config.timeout < Duration::from_millis(100) {
        return Err(ConfigError::new(
            format!("{at} key `timeout`"),
            "is too short",
            "use at least \"1s\"; \"10s\" suits most networks",
        ));
    }
    Ok(config)
}

/// A configuration from environment variables alone (no TOML file): a BioTime server
/// from `BIOTIME_*`, and the Python iclock-sync's terminals from `DEVICE_IPS` and
/// friends (with its legacy ID scheme, so its cache and documents carry on).
fn from_environment(lookup: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
    let mut devices = Vec::new();
    if lookup("BIOTIME_URL").is_some() {
        devices.push(biotime_from_environment(lookup)?);
    }
    let legacy = lookup("DEVICE_IPS").is_some();
    if legacy {
        devices.extend(terminals_from_environment(lookup)?);
    }
    if devices.is_empty() {
        return Err(ConfigError::new(
            DEFAULT_CONFIG_FILE,
            "not found, and neither BIOTIME_URL nor DEVICE_IPS is set in the environment or .env",
            "create iclock-sync.toml (see README.md) or pass --config PATH; `iclock-sync demo` shows the tool working without any configuration",
        ));
    }
    let scheme = lookup("ID_SCHEME")
        .unwrap_or_else(|| if legacy { "legacy-md5" } else { "native" }.to_owned());
    let mut sync = toml::Table::new();
    sync.insert("id_scheme".into(), toml::Value::String(scheme));
    let mut root = toml::Table::new();
    root.insert("sync".into(), toml::Value::Table(sync));
    root.insert(
        "device".into(),
        toml::Value::Array(devices.into_iter().map(toml::Value::Table).collect()),
    );
    // The Python tool wrote to Firestore in the SchoolSync schema: with its key in
    // sight, so do we (the key is found when the sink opens, as in [sink.firestore]).
    let firebase_key = ["FIREBASE_KEY", "FIREBASE_KEY_PATH"]
        .iter()
        .any(|variable| lookup(variable).is_some_and(|path| !path.trim().is_empty()))
        || Path::new(PYTHON_DEFAULT_KEY).exists();
    if legacy && firebase_key {
        let mut firestore = toml::Table::new();
        firestore.insert("schema".into(), "schoolsync".into());
        let mut sink = toml::Table::new();
        sink.insert("firestore".into(), toml::Value::Table(firestore));
        root.insert("sink".into(), toml::Value::Table(sink));
    }
    from_value(".env", toml::Value::Table(root))
}

fn biotime_from_environment(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<toml::Table, ConfigError> {
    let mut device = toml::Table::new();
    device.insert("kind".into(), "biotime".into());
    device.insert(
        "name".into(),
        lookup("BIOTIME_NAME")
            .unwrap_or_else(|| "BioTime".into())
            .into(),
    );
    for (variable, key, required) in [
        ("BIOTIME_URL", "url", true),
        ("BIOTIME_USERNAME", "username", true),
        ("BIOTIME_PASSWORD", "password", true),
        ("BIOTIME_AUTH", "auth", false),
        ("BIOTIME_TIMEZONE", "timezone", false),
    ] {
        match lookup(variable) {
            Some(value) => {
                device.insert(key.into(), value.into());
            }
            None if required => {
                return Err(ConfigError::new(
                    ".env",
                    format!("BIOTIME_URL is set but {variable} is not"),
                    format!("set {variable} in .env (see .env.example)"),
                ));
            }
            None => {}
        }
    }
    Ok(device)
}

/// The Python tool's keys: `DEVICE_IPS`, `DEVICE_NAMES` (same order), `DEVICE_PORT`
/// and `DEVICE_TIMEOUT` (seconds) — the last two it parsed but ignored; we honour them.
fn terminals_from_environment(
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<toml::Table>, ConfigError> {
    let list = |variable: &str| -> Vec<String> {
        lookup(variable)
            .unwrap_or_default()
            .split(',')
            .map(|item| item.trim().to_owned())
            .filter(|item| !item.is_empty())
            .collect()
    };
    let addresses = list("DEVICE_IPS");
    if addresses.is_empty() {
        return Err(ConfigError::new(
            ".env",
            "DEVICE_IPS is empty",
            "list the terminals' IP addresses, separated by commas: DEVICE_IPS=192.168.1.201,192.168.1.202",
        ));
    }
    let mut names = list("DEVICE_NAMES");
    if names.is_empty() {
        names = (1..=addresses.len())
            .map(|index| format!("Device {index}"))
            .collect();
    }
    if names.len() != addresses.len() {
        return Err(ConfigError::new(
            ".env",
            format!(
                "DEVICE_NAMES has {} name(s) for {} address(es) in DEVICE_IPS",
                names.len(),
                addresses.len()
            ),
            "give one name per address, in the same order, separated by commas",
        ));
    }
    let port = match lookup("DEVICE_PORT") {
        None => crate::source::zk::DEFAULT_PORT,
        Some(text) => text.trim().parse::<u16>().map_err(|_| {
            ConfigError::new(
                ".env",
                format!("DEVICE_PORT '{text}' is not a port number"),
                "write DEVICE_PORT=4370",
            )
        })?,
    };
    let timeout = match lookup("DEVICE_TIMEOUT") {
        None => "10s".to_owned(),
        Some(text) => {
            let seconds = duration::parse_with_default_unit(&text, "s").map_err(|problem| {
                ConfigError::new(
                    ".env",
                    format!("DEVICE_TIMEOUT: {problem}"),
                    "write the timeout in seconds, e.g. DEVICE_TIMEOUT=10",
                )
            })?;
            format!("{}ms", seconds.as_millis())
        }
    };
    Ok(names
        .into_iter()
        .zip(addresses)
        .map(|(name, address)| {
            let mut device = toml::Table::new();
            device.insert("name".into(), name.into());
            device.insert("kind".into(), "zk".into());
            let address = if address.contains(':') {
                address
            } else {
                format!("{address}:{port}")
            };
            device.insert("address".into(), address.into());
            device.insert("timeout".into(), timeout.clone().into());
            if let Some(zone) = lookup("DEVICE_TIMEZONE") {
                device.insert("timezone".into(), zone.into());
            }
            if let Some(key) =
                lookup("DEVICE_COMM_KEY").and_then(|key| key.trim().parse::<i64>().ok())
            {
                device.insert("comm_key".into(), key.into());
            }
            device
        })
        .collect())
}

/// The host's IANA zone, the default for devices that do not name one.
pub fn host_timezone() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|name| name.parse().ok())
        .unwrap_or(Tz::UTC)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |head| head.matches('\n').count() + 1)
}

/// `device.0.password` → `[[device]] 'Main office' key `password``.
fn describe_key(value: &toml::Value, path: &[String]) -> String {
    if let [section, index, rest @ ..] = path
        && let Ok(index) = index.parse::<usize>()
    {
        let name = value
            .get(section)
            .and_then(|items| items.get(index))
            .and_then(|item| item.get("name"))
            .and_then(|name| name.as_str())
            .map(|name| format!("'{name}'"))
            .unwrap_or_else(|| format!("#{}", index + 1));
        return format!("[[{section}]] {name} key `{}`", rest.join("."));
    }
    match path.split_last() {
        Some((key, tables)) if !tables.is_empty() => {
            format!("[{}] key `{key}`", tables.join("."))
        }
        Some((key, _)) => format!("key `{key}`"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "BT_PASS").then(|| "s3cret".to_owned())
    }

    const GOOD: &str = r#"
[sync]
id_scheme = "legacy-md5"
max_future_skew = "2h"

[[device]]
name = "Main office"
kind = "biotime"
url = "http://192.168.1.20:8081/"
username = "admin"
password = "${BT_PASS}"
timezone = "Indian/Maldives"

[sink.sqlite]
path = "punches.db"
"#;

    /// The example every user starts from parses, its commented-out sinks included.
    #[test]
    fn the_example_config_is_valid() {
        let example = include_str!("../../iclock-sync.example.toml");
        let uncommented = example
            .replace("# [sink.firestore]", "[sink.firestore]")
            .replace("# [sink.frappe]", "[sink.frappe]")
            .replace("# [[sink.frappe.shift_type]]", "[[sink.frappe.shift_type]]")
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting) if setting.contains(" = ") && !setting.starts_with("${") => setting,
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let variables = |name: &str| Some(format!("value of {name}"));
        for text in [example, uncommented.as_str()] {
            let config = parse("iclock-sync.example.toml", text, false, &variables)
                .unwrap_or_else(|error| panic!("{error}"));
            assert_eq!(config.devices.len(), 2);
        }
        let config = parse("iclock-sync.example.toml", &uncommented, false, &variables).unwrap();
        let firestore = config.sinks.firestore.expect("the Firestore example");
        assert_eq!(firestore.concurrency(), 8);
        assert_eq!(firestore.retry_for(), Duration::from_secs(60));
        let frappe = config.sinks.frappe.expect("the Frappe example");
        assert_eq!(frappe.shift_types[0].devices.len(), 2);
        assert_eq!(config.devices[0].interval, Some(Duration::from_secs(900)));
    }

    #[test]
    fn a_full_config_is_read_and_expanded() {
        let config = parse("iclock-sync.toml", GOOD, false, &env).unwrap();
        assert_eq!(config.sync.id_scheme, IdScheme::LegacyMd5);
        assert_eq!(config.sync.max_future_skew, Duration::from_secs(7200));
        let device = &config.devices[0];
        assert_eq!(device.timezone, chrono_tz::Indian::Maldives);
        let DeviceKind::Biotime(biotime) = &device.kind else {
            panic!("not biotime")
        };
        assert_eq!(biotime.url, "http://192.168.1.20:8081");
        assert_eq!(biotime.password.expose(), "s3cret");
        assert_eq!(
            config.sinks.sqlite.unwrap().path.unwrap(),
            PathBuf::from("punches.db")
        );
    }

    fn error_for(text: &str) -> String {
        parse("iclock-sync.toml", text, false, &env)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn errors_name_the_file_the_key_and_the_fix() {
        let typo = GOOD.replace("username =", "user_name =");
        let message = error_for(&typo);
        assert!(
            message.contains("iclock-sync.toml: [[device]] 'Main office'"),
            "{message}"
        );
        assert!(message.contains("user_name"), "{message}");

        let message = error_for(&GOOD.replace("${BT_PASS}", "${NOT_SET}"));
        assert!(
            message.contains("'Main office' key `password`"),
            "{message}"
        );
        assert!(message.contains("NOT_SET is not set"), "{message}");
        assert!(!message.contains("s3cret"));

        let message = error_for(&GOOD.replace("Indian/Maldives", "Maldives"));
        assert!(
            message.contains("key `timezone`") && message.contains("IANA"),
            "{message}"
        );

        let message = error_for(&GOOD.replace("http://192.168.1.20:8081/", "192.168.1.20"));
        assert!(
            message.contains("key `url`") && message.contains("http://"),
            "{message}"
        );

        let message = error_for("[[device]]\nname = \"x\"\nkind = \"zkx\"\n");
        assert!(message.contains("unknown device kind 'zkx'"), "{message}");

        let message = error_for("[sync]\nid_scheme = \"sha1\"\n");
        assert!(
            message.contains("id_scheme") || message.contains("sha1"),
            "{message}"
        );

        let message = error_for("[[device]\nname=");
        assert!(message.starts_with("iclock-sync.toml line 1"), "{message}");
    }

    #[test]
    fn dry_runs_do_not_need_sink_credentials() {
        let text = format!("{GOOD}\n[sink.other]\n");
        assert!(
            parse("f", &text, true, &env).is_err(),
            "unknown sinks still fail"
        );
        let text = GOOD.replace("punches.db", "${DB_PATH_NOT_SET}");
        assert!(parse("f", &text, false, &env).is_err());
        assert!(parse("f", &text, true, &env).is_ok());
    }

    #[test]
    fn a_zk_terminal_is_configured_and_checked() {
        let text = "[[device]]\nname = \"Gate\"\nkind = \"zk\"\naddress = \"192.168.1.201\"\ntransport = \"udp\"\ncomm_key = 123456\ntimeout = \"3s\"\nclear_after_sync = true\n";
        let config = parse("f", text, false, &env).unwrap();
        let DeviceKind::Zk(zk) = &config.devices[0].kind else {
            panic!("not zk")
        };
        assert_eq!(zk.transport, crate::source::zk::TransportChoice::Udp);
        assert_eq!((zk.comm_key, zk.timeout), (123_456, Duration::from_secs(3)));
        assert!(zk.disable_while_reading && zk.clear_after_sync);

        let message = error_for(&text.replace("123456", "1234567"));
        assert!(
            message.contains("key `comm_key`") && message.contains("999999"),
            "{message}"
        );
        let message = error_for("[[device]]\nname = \"Gate\"\nkind = \"zk\"\n");
        assert!(
            message.contains("'Gate'") && message.contains("address"),
            "{message}"
        );
    }

    #[test]
    fn the_python_tools_env_becomes_zk_terminals_with_its_port_and_timeout() {
        let vars = |name: &str| match name {
            "DEVICE_IPS" => Some("192.168.1.201, 192.168.1.202".to_owned()),
            "DEVICE_NAMES" => Some("Main gate,Staff room".to_owned()),
            "DEVICE_PORT" => Some("5005".to_owned()),
            "DEVICE_TIMEOUT" => Some("7".to_owned()),
            _ => None,
        };
        let config = from_environment(&vars).unwrap();
        assert_eq!(config.sync.id_scheme, IdScheme::LegacyMd5);
        let names: Vec<&str> = config.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, vec!["Main gate", "Staff room"]);
        let DeviceKind::Zk(second) = &config.devices[1].kind else {
            panic!("not zk")
        };
        assert_eq!(second.address, "192.168.1.202:5005");
        assert_eq!(second.timeout, Duration::from_secs(7));

        let mismatch = |name: &str| match name {
            "DEVICE_IPS" => Some("192.168.1.201,192.168.1.202".to_owned()),
            "DEVICE_NAMES" => Some("Only one".to_owned()),
            _ => None,
        };
        let message = from_environment(&mismatch).unwrap_err().to_string();
        assert!(
            message.contains("DEVICE_NAMES has 1 name(s) for 2 address(es)"),
            "{message}"
        );
    }

    #[test]
    fn a_biotime_device_can_come_from_the_environment_alone() {
        let vars = |name: &str| match name {
            "BIOTIME_URL" => Some("http://10.0.0.5:8081".to_owned()),
            "BIOTIME_USERNAME" => Some("api".to_owned()),
            "BIOTIME_PASSWORD" => Some("p\"w".to_owned()),
            _ => None,
        };
        let config = from_environment(&vars).unwrap();
        let DeviceKind::Biotime(biotime) = &config.devices[0].kind else {
            panic!("not biotime")
        };
        assert_eq!(biotime.password.expose(), "p\"w");
        assert_eq!(config.devices[0].name, "BioTime");

        let missing = |name: &str| (name == "BIOTIME_URL").then(|| "http://x".to_owned());
        let message = from_environment(&missing).unwrap_err().to_string();
        assert!(message.contains("BIOTIME_USERNAME"), "{message}");
    }
}
