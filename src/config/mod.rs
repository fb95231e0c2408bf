//! Configuration: `iclock-sync.toml` (or `--config PATH`), `.env` (see
//! [`Environment`]), and `${ENV}` references, turned into a validated [`Config`] — or a
//! [`ConfigError`] that names the file, the line, the key and the fix, which the binary
//! reports with exit code 2.
//!
//! This module only loads: each section is read by whoever owns it (`[sync]` by
//! [`sync`], a `[[device]]`'s shared keys by `device` and the rest by its kind, a
//! `[sink.NAME]` by its sink), found through the table in `kinds`. The shared types
//! ([`ConfigError`], [`Secret`], [`section::Section`], [`Environment`]) import nothing
//! else of the crate, so sources and sinks can use them without an import circle.
//!
//! Without a TOML file, devices can be configured from the environment alone
//! (`BIOTIME_URL`, `DEVICE_IPS`, ...; see `.env.example`). Relative paths in a file
//! start from that file's folder; without a file, from the working directory.

pub mod adms;
mod device;
mod env_expand;
pub mod environment;
pub mod error;
mod kinds;
pub mod ledger;
pub mod secret;
pub mod section;
pub mod serve;
pub mod sync;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono_tz::Tz;

pub use environment::Environment;
pub use error::ConfigError;
pub use ledger::LedgerSettings;
pub use secret::Secret;
pub use sync::SyncSettings;

use self::section::Document;
use crate::duration;
use crate::sink::firestore::PYTHON_DEFAULT_KEY;
use crate::sink::{SinkConfig, SinkContext};
use crate::source::DeviceConfig;

pub const DEFAULT_CONFIG_FILE: &str = "iclock-sync.toml";

#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from (`iclock-sync.toml`, `.env`) and its folder.
    pub document: Document,
    pub sync: SyncSettings,
    pub ledger: LedgerSettings,
    /// `[adms]`: the receiver for pushing terminals (`serve`); `None`: off.
    pub adms: Option<adms::AdmsSettings>,
    /// `[serve]`: the dashboard and HTTP API of `serve`.
    pub serve: serve::ServeSettings,
    pub devices: Vec<DeviceConfig>,
    /// The configured sinks; none means the embedded SQLite store.
    pub sinks: Vec<Arc<dyn SinkConfig>>,
    /// Where sinks look up their own variables (FIREBASE_KEY, ...).
    pub environment: Environment,
}

impl Config {
    /// Where the configuration came from, for messages.
    pub fn origin(&self) -> &str {
        &self.document.origin
    }

    /// The configured sink of type `T`, if any.
    pub fn sink<T: SinkConfig>(&self) -> Option<&T> {
        self.sinks
            .iter()
            .find_map(|sink| sink.as_any().downcast_ref::<T>())
    }

    /// What the sinks need to open.
    pub fn sink_context(&self) -> SinkContext<'_> {
        SinkContext {
            environment: &self.environment,
            devices: &self.devices,
            output_dir: &self.sync.output_dir,
            base_dir: self.document.base_dir(),
        }
    }
}

/// How to find and read the configuration.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--config PATH`; when absent, `./iclock-sync.toml`, then the environment.
    pub path: Option<PathBuf>,
    /// Dry runs never contact sinks, so unresolved `${VAR}`s under `[sink.*]` are fine.
    pub dry_run: bool,
}

impl LoadOptions {
    /// The folder the configuration (and its `.env`) is in.
    pub fn folder(&self) -> PathBuf {
        self.path
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }
}

/// Reads and validates the configuration.
pub fn load(options: &LoadOptions, environment: &Environment) -> Result<Config, ConfigError> {
    let lookup = |name: &str| environment.get(name);
    match read_file(options)? {
        Some(document) => parse_document(document, options.dry_run, &lookup),
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
    let Some(document) = read_file(options)? else {
        return Ok(SyncSettings::default());
    };
    let mut value = parse_toml(&document)?;
    let lookup = |name: &str| environment.get(name);
    let section = document.section("[sync]", 0, "[sync]");
    let sync = match value.as_table_mut().and_then(|table| table.remove("sync")) {
        Some(mut sync) => {
            env_expand::expand(&mut sync, &[], &lookup).map_err(|unresolved| {
                section.error(
                    unresolved.key_path.first().map(String::as_str),
                    format!("environment variable {} is not set", unresolved.variable),
                    format!("set {} in .env or in the environment", unresolved.variable),
                )
            })?;
            Some(sync)
        }
        None => None,
    };
    sync::parse(&section, sync)
}

/// The configuration file: `--config PATH` (which must exist), else
/// `./iclock-sync.toml` if present, else `None`.
fn read_file(options: &LoadOptions) -> Result<Option<Document>, ConfigError> {
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
    let folder = path.parent().map(Path::to_path_buf).unwrap_or_default();
    Ok(Some(Document::new(&origin, &text, &folder)))
}

fn parse_toml(document: &Document) -> Result<toml::Value, ConfigError> {
    toml::from_str(document.text()).map_err(|error| {
        let location = error
            .span()
            .map(|span| format!(" line {}", line_of(document.text(), span.start)))
            .unwrap_or_default();
        ConfigError::new(
            format!("{}{location}", document.origin),
            error.message().trim().to_owned(),
            "fix the TOML syntax (see the configuration reference in README.md)",
        )
    })
}

/// Parses and validates TOML text; `origin` names it in errors, and relative paths
/// start from the working directory.
pub fn parse(
    origin: &str,
    text: &str,
    dry_run: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    parse_document(Document::new(origin, text, Path::new("")), dry_run, lookup)
}

fn parse_document(
    document: Document,
    dry_run: bool,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut value = parse_toml(&document)?;
    let lenient: &[&str] = if dry_run { &["sink"] } else { &[] };
    let expanded = env_expand::expand(&mut value, lenient, lookup);
    if let Err(unresolved) = expanded {
        return Err(unset_variable(&document, &value, &unresolved));
    }
    from_value(document, value)
}

/// The top level of the file: `[sync]`, `[[device]]`s and `[sink.NAME]`s.
fn from_value(document: Document, value: toml::Value) -> Result<Config, ConfigError> {
    let top = document.section("", 0, "the top level");
    let mut table = top.table(value)?;
    let sync = sync::parse(
        &document.section("[sync]", 0, "[sync]"),
        table.remove("sync"),
    )?;
    let ledger = ledger::parse(
        &document.section("[ledger]", 0, "[ledger]"),
        table.remove("ledger"),
    )?;
    let adms = adms::parse(
        &document.section("[adms]", 0, "[adms]"),
        table.remove("adms"),
    )?;
    let serve = serve::parse(
        &document.section("[serve]", 0, "[serve]"),
        table.remove("serve"),
    )?;
    let device_tables = match table.remove("device") {
        None => Vec::new(),
        Some(toml::Value::Array(items)) => items,
        Some(_) => {
            return Err(top.error(
                Some("device"),
                "is not a list of devices",
                "write each device as a [[device]] section (two brackets)",
            ));
        }
    };
    let mut devices = Vec::new();
    let mut names = HashSet::new();
    for (index, item) in device_tables.into_iter().enumerate() {
        let section = document.section("[[device]]", index, &format!("[[device]] #{}", index + 1));
        let device = device::parse(&section, section.table(item)?)?;
        if !names.insert(device.name.clone()) {
            return Err(section
                .titled(format!("[[device]] '{}'", device.name))
                .error(
                    None,
                    "the name is used twice",
                    "give every [[device]] its own name (cursors and summaries are keyed on it)",
                ));
        }
        devices.push(device);
    }
    if devices.is_empty() {
        return Err(ConfigError::new(
            &document.origin,
            "no [[device]] is configured",
            "add a [[device]] section (see README.md, or run `iclock-sync init`), or try `iclock-sync demo`",
        ));
    }
    let sinks = sinks(&document, table.remove("sink"), &devices)?;
    if let Some(unknown) = table.keys().next() {
        return Err(top.error(
            Some(unknown),
            format!("`{unknown}` is not a section or key of the configuration"),
            "the file holds [sync], [ledger], [adms], [serve], [[device]] and [sink.NAME] sections (see README.md)",
        ));
    }
    Ok(Config {
        document,
        sync,
        ledger,
        adms,
        serve,
        devices,
        sinks,
        environment: Environment::default(),
    })
}

/// Each `[sink.NAME]` read by its own kind.
fn sinks(
    document: &Document,
    value: Option<toml::Value>,
    devices: &[DeviceConfig],
) -> Result<Vec<Arc<dyn SinkConfig>>, ConfigError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let table = document.section("", 0, "the top level").table(value)?;
    let mut sinks = Vec::new();
    for (name, value) in table {
        let header = format!("[sink.{name}]");
        let Some(kind) = kinds::SINKS.iter().find(|kind| kind.name == name) else {
            let known: Vec<String> = kinds::SINKS
                .iter()
                .map(|kind| format!("[sink.{}]", kind.name))
                .collect();
            return Err(document.section(&header, 0, &header).error(
                None,
                "is not a known sink",
                format!("use {}", known.join(", ")),
            ));
        };
        // `[[sink.postgres]]`: several sinks of one kind, each with its own `name`.
        let (values, header) = match value {
            toml::Value::Array(values) => (values, format!("[{header}]")),
            value => (vec![value], header),
        };
        for (occurrence, value) in values.into_iter().enumerate() {
            let section = document.section(&header, occurrence, &header);
            let sink = (kind.parse)(value, &section, devices)?;
            if sinks
                .iter()
                .any(|other: &Arc<dyn SinkConfig>| other.name() == sink.name())
            {
                return Err(section.error(
                    Some("name"),
                    format!("a second sink is named \"{}\"", sink.name()),
                    format!(
                        "give each {header} its own name = \"…\" (the ledger, the summary and `iclock-sync db migrate` know sinks by name)"
                    ),
                ));
            }
            sinks.push(sink);
        }
    }
    Ok(sinks)
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
    from_value(
        Document::new(".env", "", Path::new("")),
        toml::Value::Table(root),
    )
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
    let comm_key = match lookup("DEVICE_COMM_KEY") {
        None => None,
        Some(text) => Some(
            text.trim()
                .parse::<i64>()
                .ok()
                .filter(|key| (0..=999_999).contains(key))
                .ok_or_else(|| {
                    ConfigError::new(
                        ".env",
                        format!("DEVICE_COMM_KEY '{text}' is not a comm key (a number from 0 to 999999)"),
                        "write the terminals' Comm Key (System → Comm → Comm Key), e.g. DEVICE_COMM_KEY=123456, or remove the line if none is set",
                    )
                })?,
        ),
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
            if let Some(key) = comm_key {
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
fn unset_variable(
    document: &Document,
    value: &toml::Value,
    unresolved: &env_expand::Unresolved,
) -> ConfigError {
    let variable = &unresolved.variable;
    let (problem, fix) = (
        format!("environment variable {variable} is not set"),
        format!("set {variable} in .env or in the environment, or write the value directly"),
    );
    let path = &unresolved.key_path;
    if let [section, index, key, ..] = path.as_slice()
        && let Ok(index) = index.parse::<usize>()
    {
        let name = value
            .get(section)
            .and_then(|items| items.get(index))
            .and_then(|item| item.get("name"))
            .and_then(|name| name.as_str())
            .map(|name| format!("'{name}'"))
            .unwrap_or_else(|| format!("#{}", index + 1));
        let header = format!("[[{section}]]");
        return document
            .section(&header, index, &format!("{header} {name}"))
            .error(Some(key), problem, fix);
    }
    let (header, key) = match path.as_slice() {
        [key] => (String::new(), key.as_str()),
        [tables @ .., key] => (format!("[{}]", tables.join(".")), key.as_str()),
        [] => (String::new(), ""),
    };
    let title = if header.is_empty() {
        "the top level".to_owned()
    } else {
        header.clone()
    };
    document
        .section(&header, 0, &title)
        .error(Some(key), problem, fix)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::punch::IdScheme;
    use crate::sink::firestore::FirestoreConfig;
    use crate::sink::frappe::FrappeConfig;
    use crate::sink::sqlite::SqliteConfig;
    use crate::source::biotime::BiotimeConfig;
    use crate::source::zk::ZkConfig;

    fn kind<T: 'static>(device: &DeviceConfig) -> &T {
        device
            .source
            .as_any()
            .downcast_ref::<T>()
            .expect("the device's kind")
    }

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

    /// The example every user starts from parses as it is, and with every commented
    /// option switched on.
    #[test]
    fn the_example_config_is_valid() {
        let example = include_str!("../../iclock-sync.example.toml");
        let uncommented = example
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(setting)
                    if setting.starts_with('[')
                        || (setting.contains(" = ") && !setting.starts_with(' ')) =>
                {
                    setting
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        let variables = |name: &str| Some(format!("value of {name}"));
        let config = parse("iclock-sync.example.toml", example, false, &variables)
            .unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(
            config.devices.len(),
            1,
            "one terminal, and no BioTime to configure"
        );
        assert!(config.sinks.is_empty());
        let config = parse("iclock-sync.example.toml", &uncommented, false, &variables)
            .unwrap_or_else(|error| panic!("{error}\n{uncommented}"));
        let kinds: Vec<&str> = config.devices.iter().map(DeviceConfig::kind).collect();
        assert_eq!(kinds, ["adms", "zk", "biotime"]);
        let adms = config.adms.as_ref().expect("the [adms] example");
        assert_eq!(adms.listen.to_string(), "0.0.0.0:8081");
        assert_eq!(adms.allow.len(), 1);
        let firestore = config
            .sink::<FirestoreConfig>()
            .expect("the Firestore example");
        assert_eq!(firestore.concurrency(), 8);
        assert_eq!(firestore.retry_for(), Duration::from_secs(60));
        let frappe = config.sink::<FrappeConfig>().expect("the Frappe example");
        assert_eq!(frappe.shift_types[0].devices, ["Main gate"]);
        assert_eq!(config.devices[1].interval, Some(Duration::from_secs(900)));
        let names: Vec<&str> = config.sinks.iter().map(|sink| sink.name()).collect();
        assert_eq!(
            names,
            [
                "firestore",
                "frappe",
                "mongodb",
                "payroll",
                "postgres",
                "sqlite"
            ]
        );
    }

    #[test]
    fn a_full_config_is_read_and_expanded() {
        let config = parse("iclock-sync.toml", GOOD, false, &env).unwrap();
        assert_eq!(config.sync.id_scheme, IdScheme::LegacyMd5);
        assert_eq!(config.sync.max_future_skew, Duration::from_secs(7200));
        let device = &config.devices[0];
        assert_eq!(device.timezone, chrono_tz::Indian::Maldives);
        let biotime: &BiotimeConfig = kind(device);
        assert_eq!(biotime.url, "http://192.168.1.20:8081");
        assert_eq!(biotime.password.expose(), "s3cret");
        assert_eq!(
            config.sink::<SqliteConfig>().unwrap().path,
            Some(PathBuf::from("punches.db"))
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
            message.starts_with(
                "iclock-sync.toml line 10: [[device]] 'Main office' key `user_name`: `user_name` is not a key here — did you mean `username`?"
            ),
            "{message}"
        );

        let message = error_for(&GOOD.replace("${BT_PASS}", "${NOT_SET}"));
        assert!(
            message
                .starts_with("iclock-sync.toml line 11: [[device]] 'Main office' key `password`"),
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

    /// What a new user wrote, and what they were told.
    #[test]
    fn a_new_users_mistakes_are_explained_with_their_line() {
        let terminal = "[[device]]\nname = \"Gate\"\nkind = \"zk\"\naddress = \"192.168.1.201\"\n";
        let message = error_for(&format!("{terminal}comm_key = \"1234\"\n"));
        assert!(
            message.starts_with("iclock-sync.toml line 5: [[device]] 'Gate' key `comm_key`: \"1234\" is given where a number is expected — write comm_key = 1234, without quotes"),
            "{message}"
        );
        let message = error_for(&format!("[sync]\nparallel_devices = \"4\"\n\n{terminal}"));
        assert!(
            message.starts_with("iclock-sync.toml line 2: [sync] key `parallel_devices`")
                && message.contains("write parallel_devices = 4, without quotes"),
            "{message}"
        );
        let message = error_for(&format!("{terminal}timezon = \"Asia/Kolkata\"\n"));
        assert!(
            message.starts_with("iclock-sync.toml line 5: [[device]] 'Gate' key `timezon`")
                && message.contains("did you mean `timezone`?"),
            "{message}"
        );
        let message = error_for("[[device]]\nname = 5\nkind = \"zk\"\n");
        assert!(
            message.starts_with("iclock-sync.toml line 2: [[device]] #1 key `name`")
                && message.contains("name = \"5\""),
            "{message}"
        );
        let message = error_for(&format!("{terminal}[sink.sqlte]\n"));
        assert!(
            message.starts_with("iclock-sync.toml line 5: [sink.sqlte]: is not a known sink"),
            "{message}"
        );
    }

    #[test]
    fn relative_paths_start_from_the_files_folder() {
        let document = Document::new(
            "/srv/school/iclock-sync.toml",
            GOOD,
            Path::new("/srv/school"),
        );
        let config = parse_document(document, false, &env).unwrap();
        assert_eq!(config.sync.cache_dir, Path::new("/srv/school/cache"));
        assert_eq!(config.sync.output_dir, Path::new("/srv/school/output"));
        assert_eq!(
            config.sink::<SqliteConfig>().unwrap().path,
            Some(PathBuf::from("/srv/school/punches.db"))
        );
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
        let zk: &ZkConfig = kind(&config.devices[0]);
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
        let second: &ZkConfig = kind(&config.devices[1]);
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
    fn an_invalid_comm_key_in_the_env_is_an_error_not_ignored() {
        let vars = |name: &str| match name {
            "DEVICE_IPS" => Some("192.168.1.201".to_owned()),
            "DEVICE_COMM_KEY" => Some("12345x".to_owned()),
            _ => None,
        };
        let message = from_environment(&vars).unwrap_err().to_string();
        assert!(
            message.starts_with(".env: DEVICE_COMM_KEY '12345x' is not a comm key"),
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
        let biotime: &BiotimeConfig = kind(&config.devices[0]);
        assert_eq!(biotime.password.expose(), "p\"w");
        assert_eq!(config.devices[0].name, "BioTime");

        let missing = |name: &str| (name == "BIOTIME_URL").then(|| "http://x".to_owned());
        let message = from_environment(&missing).unwrap_err().to_string();
        assert!(message.contains("BIOTIME_USERNAME"), "{message}");
    }
}
