//! `iclock-sync punches`: search what was read, and where each punch went — by device,
//! PIN, time (the device's wall time) and delivery state. As a table for people,
//! `--csv` for a spreadsheet, `--json` for scripts.

use std::fmt::Write;
use std::path::PathBuf;

use chrono::{Local, NaiveDate, NaiveDateTime};
use clap::Args;

use crate::config::Environment;
use crate::exit::Exit;
use crate::ledger::{DeliveryState, Ledger, PunchQuery, PunchRecord};
use crate::output::Output;
use crate::punch::{WALL_TIME_FORMAT, wall_time_text};

#[derive(Debug, Clone, Args)]
pub struct PunchesArgs {
    /// Only this device's punches (its [[device]] name).
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Only this PIN's punches.
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,
    /// From: a date or time (`2026-12-01`, `2026-12-01 08:00`) or how long ago (`30d`, `12h`, `7`).
    #[arg(long, value_name = "WHEN", value_parser = parse_from)]
    pub since: Option<String>,
    /// Up to (inclusive): a date or time, or how long ago.
    #[arg(long, value_name = "WHEN", value_parser = parse_until)]
    pub until: Option<String>,
    /// Only punches in this state at some sink (or at --sink): pending, failed,
    /// delivered, already, skipped, withheld, rejected, unmapped.
    #[arg(long, value_name = "STATE", value_parser = parse_state)]
    pub state: Option<DeliveryState>,
    /// With --state: at this sink.
    #[arg(long, value_name = "NAME", requires = "state")]
    pub sink: Option<String>,
    /// Comma-separated values with a header line, for a spreadsheet.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// At most this many punches, oldest first.
    #[arg(long, default_value_t = 1000)]
    pub limit: usize,
}

pub async fn run(
    args: &PunchesArgs,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    let query = PunchQuery {
        device: args.device.clone(),
        pin: args.pin.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        state: args.state,
        sink: args.sink.clone(),
        limit: args.limit,
        ..PunchQuery::default()
    };
    let found = match super::ledger::with(config_path, environment, output, true, async |ledger| {
        ledger.punches(&query).await
    })
    .await
    {
        Ok(found) => found,
        Err(exit) => return exit,
    };
    let punches = match found {
        Ok(punches) => punches,
        Err(error) => return output.error(&error.to_string(), Exit::Incomplete),
    };
    if output.json {
        output.json_line(&punches);
    } else if args.csv {
        print!("{}", csv(&punches));
    } else {
        output.say(&table(&punches, args.limit));
    }
    Exit::Success
}

fn table(punches: &[PunchRecord], limit: usize) -> String {
    let mut out = String::new();
    for punch in punches {
        let sinks: Vec<String> = punch
            .sinks
            .iter()
            .map(|delivery| match &delivery.reason {
                Some(reason) => format!("{} {} ({reason})", delivery.sink, delivery.state),
                None => format!("{} {}", delivery.sink, delivery.state),
            })
            .collect();
        let _ = writeln!(
            out,
            "{}  {}  PIN {}  {}  {}",
            punch.local_time,
            punch.device,
            punch.user_id,
            state_name(punch.state),
            if sinks.is_empty() {
                "not queued for any sink".to_owned()
            } else {
                sinks.join("; ")
            }
        );
    }
    let _ = write!(out, "{} punch(es)", punches.len());
    if punches.len() >= limit {
        let _ = write!(out, " (the first {limit}; --limit N for more)");
    }
    out
}

/// The CSV's first line (`punches --csv`, the API's export).
pub const CSV_HEADER: &str = "id,device,serial,user_id,local_time,timezone,punch_state,verify_mode,work_code,source,read_at,deliveries\n";

fn csv(punches: &[PunchRecord]) -> String {
    let mut out = String::from(CSV_HEADER);
    csv_rows(punches, &mut out);
    out
}

/// The punches as CSV lines, appended to `out`.
pub fn csv_rows(punches: &[PunchRecord], out: &mut String) {
    for punch in punches {
        let deliveries: Vec<String> = punch
            .sinks
            .iter()
            .map(|delivery| format!("{}={}", delivery.sink, delivery.state))
            .collect();
        let fields = [
            punch.id.clone(),
            punch.device.clone(),
            punch.serial.clone(),
            punch.user_id.clone(),
            punch.local_time.clone(),
            punch.timezone.clone(),
            punch.state.to_string(),
            punch.verify_mode.to_string(),
            punch.work_code.clone(),
            punch.source.clone(),
            punch.read_at.clone(),
            deliveries.join(";"),
        ];
        let line: Vec<String> = fields.iter().map(|field| csv_field(field)).collect();
        out.push_str(&line.join(","));
        out.push('\n');
    }
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// A punch state's name: in, out, break-out…
pub fn state_name(state: i32) -> String {
    match state {
        0 => "in".into(),
        1 => "out".into(),
        2 => "break-out".into(),
        3 => "break-in".into(),
        4 => "OT-in".into(),
        5 => "OT-out".into(),
        other => format!("state {other}"),
    }
}

fn parse_state(text: &str) -> Result<DeliveryState, String> {
    DeliveryState::parse(text).ok_or_else(|| {
        let names: Vec<&str> = DeliveryState::ALL
            .iter()
            .map(|state| state.name())
            .collect();
        format!(
            "'{text}' is not a delivery state; use one of {}",
            names.join(", ")
        )
    })
}

fn parse_from(text: &str) -> Result<String, String> {
    parse_when(text, false)
}

fn parse_until(text: &str) -> Result<String, String> {
    parse_when(text, true)
}

/// A wall time from a date (its start, or its end for `until`), a date and time, or a
/// duration back from now.
fn parse_when(text: &str, until: bool) -> Result<String, String> {
    let text = text.trim();
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let time = if until {
            date.and_hms_opt(23, 59, 59)
        } else {
            date.and_hms_opt(0, 0, 0)
        };
        return time
            .map(wall_time_text)
            .ok_or_else(|| format!("'{text}' is not a date"));
    }
    for format in [WALL_TIME_FORMAT, "%Y-%m-%d %H:%M"] {
        if let Ok(time) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(wall_time_text(time));
        }
    }
    let ago = crate::duration::parse_with_default_unit(text, "d").map_err(|_| {
        format!("'{text}' is neither a date (2026-12-01), a time (2026-12-01 08:00) nor a duration (30d, 12h)")
    })?;
    let ago = chrono::Duration::from_std(ago).map_err(|error| error.to_string())?;
    Ok(wall_time_text(Local::now().naive_local() - ago))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_dates_times_or_durations_back() {
        assert_eq!(parse_from("2026-12-01").unwrap(), "2026-12-01 00:00:00");
        assert_eq!(parse_until("2026-12-01").unwrap(), "2026-12-01 23:59:59");
        assert_eq!(
            parse_from("2026-12-01 08:05").unwrap(),
            "2026-12-01 08:05:00"
        );
        assert!(parse_from("30d").is_ok());
        let error = parse_from("yesterday").unwrap_err();
        assert!(error.contains("30d"), "{error}");
    }

    #[test]
    fn csv_fields_with_commas_are_quoted() {
        assert_eq!(csv_field("Main gate"), "Main gate");
        assert_eq!(csv_field("Gate, north"), "\"Gate, north\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
