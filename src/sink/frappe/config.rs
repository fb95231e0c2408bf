//! `[sink.frappe]`: Frappe HR / ERPNext, where punches become Employee Checkins.

use std::any::Any;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono_tz::Tz;
use serde::Deserialize;

use super::FrappeSink;
use crate::config::error::ConfigError;
use crate::config::secret::Secret;
use crate::config::section::Section;
use crate::duration;
use crate::sink::{Sink, SinkConfig, SinkContext, SinkError, SinkKind};
use crate::source::DeviceConfig;
use crate::user_control::Target;

/// `[sink.frappe]` in the configuration's table of kinds.
pub const KIND: SinkKind = SinkKind {
    name: "frappe",
    parse,
};

fn parse(
    value: toml::Value,
    section: &Section,
    devices: &[DeviceConfig],
) -> Result<Arc<dyn SinkConfig>, ConfigError> {
    let raw: RawFrappeConfig = section.read(section.table(value)?)?;
    Ok(Arc::new(raw.validate(section, devices)?))
}

#[async_trait]
impl SinkConfig for FrappeConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    async fn open(&self, context: &SinkContext<'_>) -> Result<Box<dyn Sink>, SinkError> {
        Ok(Box::new(
            FrappeSink::open(self, context.devices, context.output_dir).await?,
        ))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// What a punch state becomes in Frappe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogChoice {
    In,
    Out,
    /// A checkin without a log type (HRMS then alternates IN and OUT by itself).
    Unspecified,
    /// Not sent at all.
    Skip,
}

impl LogChoice {
    fn parse(text: &str) -> Option<LogChoice> {
        match text.trim().to_ascii_lowercase().as_str() {
            "in" => Some(LogChoice::In),
            "out" => Some(LogChoice::Out),
            "" | "none" => Some(LogChoice::Unspecified),
            "skip" => Some(LogChoice::Skip),
            _ => None,
        }
    }

    /// The `log_type` Frappe is sent, if any.
    pub fn log_type(self) -> Option<&'static str> {
        match self {
            LogChoice::In => Some("IN"),
            LogChoice::Out => Some("OUT"),
            LogChoice::Unspecified | LogChoice::Skip => None,
        }
    }
}

/// Punch state → log type: 0, 3 and 4 (check-in, break-in, overtime-in) IN; 1, 2 and
/// 5 (check-out, break-out, overtime-out) OUT; the rest `other` (IN unless
/// configured), each overridable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTypes {
    by_state: BTreeMap<i32, LogChoice>,
    other: LogChoice,
}

impl Default for LogTypes {
    fn default() -> LogTypes {
        LogTypes {
            by_state: BTreeMap::from([
                (0, LogChoice::In),
                (1, LogChoice::Out),
                (2, LogChoice::Out),
                (3, LogChoice::In),
                (4, LogChoice::In),
                (5, LogChoice::Out),
            ]),
            other: LogChoice::In,
        }
    }
}

impl LogTypes {
    pub fn of(&self, state: i32) -> LogChoice {
        self.by_state.get(&state).copied().unwrap_or(self.other)
    }
}

/// `[[sink.frappe.shift_type]]`: a Shift Type whose `last_sync_of_checkin` follows
/// these devices.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftTypeMapping {
    pub name: String,
    pub devices: Vec<String>,
}

/// The keys of `[sink.frappe]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFrappeConfig {
    url: String,
    api_key: String,
    api_secret: Secret,
    host: Option<String>,
    employee_field: Option<String>,
    #[serde(default)]
    log_types: BTreeMap<String, String>,
    device_id: Option<String>,
    #[serde(default)]
    skip_auto_attendance: bool,
    timezone: Option<String>,
    concurrency: Option<usize>,
    batch_size: Option<usize>,
    #[serde(default, with = "duration::serde_text_option")]
    retry_for: Option<Duration>,
    #[serde(default, with = "duration::serde_text_option")]
    timeout: Option<Duration>,
    #[serde(default)]
    user_control: Vec<Target>,
    #[serde(default)]
    shift_type: Vec<ShiftTypeMapping>,
    #[serde(default)]
    accept_invalid_certs: bool,
    ca_file: Option<PathBuf>,
}

/// `[sink.frappe]`, checked.
#[derive(Debug, Clone)]
pub struct FrappeConfig {
    /// The site's address without a trailing slash, e.g. `https://hr.example.com`.
    pub url: String,
    pub api_key: String,
    pub api_secret: Secret,
    /// `Host` header for benches that serve several sites on one address.
    pub host: Option<String>,
    /// The Employee field holding the PIN (default `attendance_device_id`).
    pub employee_field: String,
    pub log_types: LogTypes,
    /// Template of the checkin's `device_id`: `{terminal}`, `{serial}`, `{device}`,
    /// `{location}`.
    pub device_id: String,
    pub skip_auto_attendance: bool,
    /// The site's time zone; `None`: the device's wall time is sent as it is.
    pub timezone: Option<Tz>,
    pub concurrency: usize,
    /// Checkins per `insert_many` request (1: one `add_log` call per checkin).
    pub batch_size: usize,
    pub retry_for: Duration,
    pub timeout: Duration,
    pub user_control: Vec<Target>,
    pub shift_types: Vec<ShiftTypeMapping>,
    pub accept_invalid_certs: bool,
    /// A PEM file of certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
}

pub const DEFAULT_EMPLOYEE_FIELD: &str = "attendance_device_id";
pub const DEFAULT_DEVICE_ID: &str = "{terminal}";
pub const DEFAULT_BATCH_SIZE: usize = 100;
const PLACEHOLDERS: [&str; 4] = ["{terminal}", "{serial}", "{device}", "{location}"];

impl RawFrappeConfig {
    /// Checks every key.
    pub fn validate(
        self,
        section: &Section,
        devices: &[DeviceConfig],
    ) -> Result<FrappeConfig, ConfigError> {
        let url = self.url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&url).ok().filter(|parsed| {
            matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some()
        });
        if parsed.is_none() {
            return Err(section.error(
                Some("url"),
                format!("'{}' is not an http(s) URL", self.url),
                "write the site's address, e.g. url = \"https://hr.example.com\"",
            ));
        }
        if self.api_key.trim().is_empty() || self.api_secret.is_empty() {
            return Err(section.error(
                Some(if self.api_key.trim().is_empty() {
                    "api_key"
                } else {
                    "api_secret"
                }),
                "is empty",
                "generate API keys for the sync user in Frappe (User → Settings → API Access → Generate Keys) and set api_key and api_secret = \"${FRAPPE_API_SECRET}\"",
            ));
        }
        let mut log_types = LogTypes::default();
        for (state, choice) in &self.log_types {
            let Some(choice_value) = LogChoice::parse(choice) else {
                return Err(section.error(
                    Some("log_types"),
                    format!("'{choice}' (for state {state}) is not a log type"),
                    "use \"IN\", \"OUT\", \"\" (no log type) or \"skip\"",
                ));
            };
            if state == "other" {
                log_types.other = choice_value;
            } else {
                let number = state.parse::<i32>().ok().filter(|n| (0..=255).contains(n));
                let Some(number) = number else {
                    return Err(section.error(
                        Some("log_types"),
                        format!("'{state}' is not a punch state"),
                        "use punch state numbers (0 check-in, 1 check-out, 2 break-out, 3 break-in, 4 overtime-in, 5 overtime-out) or `other`",
                    ));
                };
                log_types.by_state.insert(number, choice_value);
            }
        }
        let device_id = self
            .device_id
            .unwrap_or_else(|| DEFAULT_DEVICE_ID.to_owned());
        let mut rest = device_id.clone();
        for placeholder in PLACEHOLDERS {
            rest = rest.replace(placeholder, "");
        }
        if rest.contains('{') || rest.contains('}') {
            return Err(section.error(
                Some("device_id"),
                format!("'{device_id}' has an unknown placeholder"),
                "use {terminal}, {serial}, {device} or {location}",
            ));
        }
        let timezone = match &self.timezone {
            None => None,
            Some(zone) => Some(zone.trim().parse::<Tz>().map_err(|_| {
                section.error(
                    Some("timezone"),
                    format!("'{zone}' is not an IANA time zone"),
                    "write the site's zone as in Frappe's System Settings, e.g. \"Asia/Kolkata\"",
                )
            })?),
        };
        let concurrency = self.concurrency.unwrap_or(4);
        if concurrency == 0 {
            return Err(section.error(
                Some("concurrency"),
                "must be at least 1",
                "set concurrency = 4 (or remove the key)",
            ));
        }
        let batch_size = self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE);
        if !(1..=200).contains(&batch_size) {
            return Err(section.error(
                Some("batch_size"),
                format!("{batch_size} is out of range"),
                "use 1 to 200 (Frappe takes at most 200 per request; 100 is a good choice, 1 sends each checkin on its own)",
            ));
        }
        for mapping in &self.shift_type {
            if let Some(unknown) = mapping
                .devices
                .iter()
                .find(|name| !devices.iter().any(|device| device.name == **name))
            {
                return Err(section.error(
                    Some("shift_type"),
                    format!(
                        "Shift Type '{}' names the device '{unknown}', which is not a [[device]]",
                        mapping.name
                    ),
                    "list the `name`s of [[device]] entries in devices = [...]",
                ));
            }
        }
        Ok(FrappeConfig {
            url,
            api_key: self.api_key.trim().to_owned(),
            api_secret: self.api_secret,
            host: self
                .host
                .map(|host| host.trim().to_owned())
                .filter(|host| !host.is_empty()),
            employee_field: self
                .employee_field
                .map(|field| field.trim().to_owned())
                .unwrap_or_else(|| DEFAULT_EMPLOYEE_FIELD.to_owned()),
            log_types,
            device_id,
            skip_auto_attendance: self.skip_auto_attendance,
            timezone,
            concurrency,
            batch_size,
            retry_for: self.retry_for.unwrap_or(Duration::from_secs(60)),
            timeout: self.timeout.unwrap_or(Duration::from_secs(30)),
            user_control: self.user_control,
            shift_types: self.shift_type,
            accept_invalid_certs: self.accept_invalid_certs,
            ca_file: self.ca_file.map(|path| section.path(&path)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(extra: &str) -> RawFrappeConfig {
        toml::from_str(&format!(
            "url = \"https://hr.example.com/\"\napi_key = \"k\"\napi_secret = \"s\"\n{extra}"
        ))
        .unwrap()
    }

    impl RawFrappeConfig {
        fn check(self) -> Result<FrappeConfig, ConfigError> {
            let document = crate::config::section::Document::default();
            self.validate(&document.section("[sink.frappe]", 0, "[sink.frappe]"), &[])
        }
    }

    #[test]
    fn defaults_map_in_and_out_states_and_send_the_rest_as_in() {
        let config = raw("").check().unwrap();
        assert_eq!(config.url, "https://hr.example.com");
        assert_eq!(config.employee_field, "attendance_device_id");
        let types = &config.log_types;
        let mapped: Vec<LogChoice> = [0, 1, 2, 3, 4, 5, 255].map(|s| types.of(s)).to_vec();
        use LogChoice::*;
        assert_eq!(mapped, vec![In, Out, Out, In, In, Out, In]);
        assert_eq!(config.device_id, "{terminal}");
    }

    #[test]
    fn log_types_can_be_overridden_per_state_and_for_the_rest() {
        let config = raw("log_types = { 2 = \"skip\", 3 = \"\", other = \"OUT\", 4 = \"out\" }")
            .check()
            .unwrap();
        let types = &config.log_types;
        assert_eq!(types.of(2), LogChoice::Skip);
        assert_eq!(types.of(3), LogChoice::Unspecified);
        assert_eq!(types.of(4), LogChoice::Out);
        assert_eq!(types.of(0), LogChoice::In, "unlisted defaults remain");
        assert_eq!(types.of(9), LogChoice::Out);
    }

    #[test]
    fn mistakes_name_the_key_and_the_fix() {
        let error = raw("log_types = { 2 = \"BREAK\" }").check().unwrap_err();
        assert!(error.to_string().contains("log_types"), "{error}");
        assert!(error.to_string().contains("\"skip\""), "{error}");
        let error = raw("device_id = \"{alias}\"").check().unwrap_err();
        assert!(error.to_string().contains("{terminal}"), "{error}");
        let error = raw("timezone = \"Mars/Base\"").check().unwrap_err();
        assert!(error.to_string().contains("timezone"), "{error}");
        let error = raw("[[shift_type]]\nname = \"Day\"\ndevices = [\"Gate\"]")
            .check()
            .unwrap_err();
        assert!(error.to_string().contains("'Gate'"), "{error}");
    }
}
