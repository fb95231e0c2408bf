//! The keys every `[[device]]` has (`name`, `kind`, `timezone`, `enabled`, `interval`,
//! `latitude`, `longitude`); the rest of the section goes to its kind.

use std::time::Duration;

use chrono_tz::Tz;

use super::error::ConfigError;
use super::kinds;
use super::section::Section;
use crate::duration;
use crate::source::{DEFAULT_MAX_READ_TIME, DeviceConfig};

/// The keys read here, whatever the kind.
pub const SHARED_KEYS: &[&str] = &[
    "name",
    "kind",
    "timezone",
    "enabled",
    "interval",
    "max_read_time",
    "latitude",
    "longitude",
];

/// Reads one `[[device]]`; `section` is titled by its position until its name is known.
pub fn parse(section: &Section, mut table: toml::Table) -> Result<DeviceConfig, ConfigError> {
    let name = match table.remove("name") {
        Some(toml::Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        Some(toml::Value::String(_)) | None => {
            return Err(section.error(
                None,
                "has no name",
                "add name = \"Main office\" (any label; it appears in summaries)",
            ));
        }
        Some(other) => {
            return Err(section.error(
                Some("name"),
                format!("{other} is given where text is expected"),
                format!(
                    "put the name in quotes: name = \"{}\"",
                    other.to_string().trim_matches('"')
                ),
            ));
        }
    };
    let section = section.titled(format!("[[device]] '{name}'"));
    let kinds = || {
        kinds::DEVICES
            .iter()
            .map(|kind| format!("kind = \"{}\" ({})", kind.name, kind.describes))
            .collect::<Vec<_>>()
            .join(" or ")
    };
    let kind_name = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(_) => {
            return Err(section.error(Some("kind"), "must be text", format!("write {}", kinds())));
        }
        None => return Err(section.error(None, "has no kind", format!("add {}", kinds()))),
    };
    let Some(kind) = kinds::DEVICES
        .iter()
        .find(|kind| kind.name == kind_name.trim())
    else {
        return Err(section.error(
            Some("kind"),
            format!("unknown device kind '{kind_name}'"),
            format!("use {}", kinds()),
        ));
    };
    let enabled = match table.remove("enabled") {
        None => true,
        Some(toml::Value::Boolean(enabled)) => enabled,
        Some(_) => {
            return Err(section.error(
                Some("enabled"),
                "must be true or false",
                "write enabled = true or enabled = false",
            ));
        }
    };
    let timezone = match table.remove("timezone") {
        None => super::host_timezone(),
        Some(toml::Value::String(zone)) => zone.trim().parse::<Tz>().map_err(|_| {
            section.error(
                Some("timezone"),
                format!("'{zone}' is not an IANA time zone"),
                "use a name such as \"Indian/Maldives\" or \"Asia/Kolkata\" (the device's zone)",
            )
        })?,
        Some(_) => {
            return Err(section.error(
                Some("timezone"),
                "must be text",
                "write timezone = \"Indian/Maldives\"",
            ));
        }
    };
    let interval = duration_key(&section, "interval", table.remove("interval"))?;
    let max_read_time = duration_key(&section, "max_read_time", table.remove("max_read_time"))?
        .unwrap_or(DEFAULT_MAX_READ_TIME);
    let coordinates = coordinates(&section, &mut table)?;
    let source = (kind.parse)(table, &section.sharing(SHARED_KEYS))?;
    Ok(DeviceConfig {
        name,
        timezone,
        enabled,
        interval,
        coordinates,
        max_read_time,
        source,
    })
}

/// `interval` or `max_read_time`: a duration above zero, written with its unit.
fn duration_key(
    section: &Section,
    key: &str,
    value: Option<toml::Value>,
) -> Result<Option<Duration>, ConfigError> {
    match value {
        None => Ok(None),
        Some(toml::Value::String(text)) => duration::parse(&text)
            .ok()
            .filter(|duration| !duration.is_zero())
            .map(Some)
            .ok_or_else(|| {
                section.error(
                    Some(key),
                    format!("'{text}' is not a duration"),
                    format!("write a duration with its unit, e.g. {key} = \"5m\""),
                )
            }),
        Some(_) => Err(section.error(
            Some(key),
            "must be text",
            format!("write a duration in quotes, e.g. {key} = \"5m\""),
        )),
    }
}

fn coordinates(
    section: &Section,
    table: &mut toml::Table,
) -> Result<Option<(f64, f64)>, ConfigError> {
    let mut coordinate = |key: &str, limit: f64| {
        match table.remove(key) {
        None => Ok(None),
        Some(toml::Value::Float(value)) if value.abs() <= limit => Ok(Some(value)),
        Some(toml::Value::Integer(value)) if (value as f64).abs() <= limit => {
            Ok(Some(value as f64))
        }
        Some(_) => Err(section.error(
            Some(key),
            format!("must be a number between -{limit} and {limit}"),
            "write the device's position in decimal degrees, e.g. latitude = 4.1755, longitude = 73.5093",
        )),
    }
    };
    match (
        coordinate("latitude", 90.0)?,
        coordinate("longitude", 180.0)?,
    ) {
        (Some(latitude), Some(longitude)) => Ok(Some((latitude, longitude))),
        (None, None) => Ok(None),
        _ => Err(section.error(
            None,
            "has only one of latitude and longitude",
            "give both, or neither",
        )),
    }
}
