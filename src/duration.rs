//! Human durations as users type them: `30s`, `5m`, `2h`, `1d`, `1.5d`.
//!
//! Config values must carry a unit so that `timeout = 30` is never silently read as
//! minutes when seconds were meant. The CLI flags `--loop` and `--since` have their own
//! documented default unit (minutes and days) and go through [`parse_with_default_unit`].

use std::time::Duration;

/// The units we accept, longest names first so that `ms` is not read as `m` + garbage.
const UNITS: &[(&str, f64)] = &[
    ("ms", 0.001),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86_400.0),
];

/// Parses `"30s"`, `"5m"`, `"2h"`, `"1.5d"`. A bare number is an error.
pub fn parse(text: &str) -> Result<Duration, String> {
    parse_inner(text, None)
}

/// Parses like [`parse`], but a bare number is taken in `default_unit` (`"m"`, `"d"`, ...).
pub fn parse_with_default_unit(text: &str, default_unit: &str) -> Result<Duration, String> {
    parse_inner(text, Some(default_unit))
}

fn parse_inner(text: &str, default_unit: Option<&str>) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let unit = match (unit.trim(), default_unit) {
        ("", Some(default)) => default,
        ("", None) => {
            return Err(format!(
                "'{text}' has no unit; write it like 30s, 5m, 2h or 1d"
            ));
        }
        (unit, _) => unit,
    };
    let seconds_per_unit = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, seconds)| *seconds)
        .ok_or_else(|| format!("'{text}' has an unknown unit '{unit}'; use s, m, h or d"))?;
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration; write it like 30s, 5m, 2h or 1d"))?;
    let seconds = value * seconds_per_unit;
    if !(0.0..=100.0 * 365.0 * 86_400.0).contains(&seconds) {
        return Err(format!("'{text}' is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// Formats a duration compactly for messages: `1.2 s`, `5 m`, `2 h`.
pub fn display(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 1.0 {
        format!("{} ms", duration.as_millis())
    } else if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else if seconds < 86_400.0 {
        format!("{:.1} h", seconds / 3600.0)
    } else {
        format!("{:.1} days", seconds / 86_400.0)
    }
}

/// Serde adapter for config fields written as `"30s"`.
pub mod serde_text {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// Serde adapter for optional config fields written as `"30s"`.
pub mod serde_text_option {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::parse(&text)
                .map(Some)
                .map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_understood() {
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("1.5d"), Ok(Duration::from_secs(129_600)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
    }

    #[test]
    fn bare_number_needs_a_default_unit() {
        assert!(parse("5").is_err());
        assert_eq!(
            parse_with_default_unit("5", "m"),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(
            parse_with_default_unit("0.5", "d"),
            Ok(Duration::from_secs(43_200))
        );
        assert_eq!(
            parse_with_default_unit("30s", "m"),
            Ok(Duration::from_secs(30))
        );
    }

    #[test]
    fn garbage_is_rejected_with_a_hint() {
        for bad in ["", "m", "5x", "-1m", "1.2.3s", "1e999d"] {
            let error = parse_with_default_unit(bad, "m").unwrap_err();
            assert!(!error.is_empty(), "{bad}");
        }
    }
}
