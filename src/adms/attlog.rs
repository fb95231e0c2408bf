//! The ATTLOG line: one punch as a pushing terminal uploads it, written once for the
//! receiver (which reads it) and the simulator (which writes it).
//!
//! Positional fields, TAB-separated: PIN, time, status (punch state), verify mode, work
//! code, then reserved fields, mask flag, temperatures, the punch's UTC offset in
//! seconds (field 11 of 12) and extended data. Firmware in the field varies (see
//! `docs/adms.md`): 5 to 12 fields; spaces instead of tabs (date and time then arrive as
//! two tokens); CRLF; Unix seconds instead of a date; lines tagged `ATTLOG⇥`; an empty
//! fifth field with the work code in the sixth; Android firmware's 11 fields whose last
//! is a record ID, not an offset. Any line this module cannot read is an error naming
//! the reason; the lines around it are unaffected.

use std::sync::Arc;

use chrono::{DateTime, NaiveDateTime, TimeZone};
use chrono_tz::Tz;

use crate::punch::{SourceKind, WALL_TIME_FORMAT, wall_time_text};
use crate::source::{RecordTime, SourceRecord};

/// Fields beyond this many are not a punch line (V5.8 defines 12).
const MOST_FIELDS: usize = 32;

/// One punch line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttlogLine {
    pub pin: String,
    pub time: LineTime,
    pub status: i32,
    pub verify: i32,
    pub work_code: String,
    /// Field 11 of the 12-field form: the punch's offset from UTC in seconds.
    pub time_offset: Option<i32>,
}

/// The time as the line gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LineTime {
    /// The terminal's wall clock.
    Wall(NaiveDateTime),
    /// Unix seconds (some firmware).
    Unix(i64),
    /// Shaped like a date but not one (`2026-02-30 10:00:00`), kept as text for the
    /// quarantine.
    Invalid(String),
}

/// How a simulated terminal writes its lines (the firmware it imitates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineStyle {
    /// Push 1.x / 2.x: seven TAB-separated fields.
    Seven,
    /// Push 2.4 with mask and temperature: twelve fields, the UTC offset in the
    /// eleventh.
    Twelve,
    /// Android firmware: eleven fields, the last a record ID.
    Android,
}

impl AttlogLine {
    /// The line as a terminal of `style` writes it (without the line end).
    pub fn write(&self, style: LineStyle) -> String {
        let time = match &self.time {
            LineTime::Wall(time) => wall_time_text(*time),
            LineTime::Unix(seconds) => seconds.to_string(),
            LineTime::Invalid(text) => text.clone(),
        };
        let head = [
            self.pin.as_str(),
            time.as_str(),
            &self.status.to_string(),
            &self.verify.to_string(),
            self.work_code.as_str(),
        ]
        .join("\t");
        match style {
            LineStyle::Seven => format!("{head}\t0\t0"),
            LineStyle::Twelve => {
                let offset = self
                    .time_offset
                    .map(|offset| format!("{offset:+}"))
                    .unwrap_or_default();
                format!("{head}\t0\t0\t0\t36.5\t0\t{offset}\t")
            }
            LineStyle::Android => format!("{head}\t0\t0\t0\t0\t0\t1"),
        }
    }

    /// The record the normalizer takes, for the terminal `serial` whose clock runs in
    /// `timezone`. The source key is the spec's idempotency key (serial, PIN, time,
    /// status, verify); the punch ID, as for every source, is made from serial, PIN,
    /// wall time and state, so a terminal moved from being read to pushing keeps its
    /// IDs.
    pub fn record(&self, serial: &Arc<str>, terminal: &Arc<str>, timezone: Tz) -> SourceRecord {
        let time = match &self.time {
            LineTime::Wall(wall) => match self.time_offset {
                // The terminal says where its clock stood; our wall time is the
                // device's zone's reading of that instant.
                Some(offset) => match chrono::FixedOffset::east_opt(offset)
                    .and_then(|zone| zone.from_local_datetime(wall).single())
                {
                    Some(instant) => {
                        RecordTime::Valid(instant.with_timezone(&timezone).naive_local())
                    }
                    None => RecordTime::Valid(*wall),
                },
                None => RecordTime::Valid(*wall),
            },
            LineTime::Unix(seconds) => match DateTime::from_timestamp(*seconds, 0) {
                Some(instant) => RecordTime::Valid(instant.with_timezone(&timezone).naive_local()),
                None => RecordTime::Invalid(seconds.to_string()),
            },
            LineTime::Invalid(text) => RecordTime::Invalid(text.clone()),
        };
        let time_key = match &time {
            RecordTime::Valid(wall) => wall_time_text(*wall),
            RecordTime::Invalid(text) => text.clone(),
        };
        SourceRecord {
            source: SourceKind::Adms,
            source_key: format!(
                "adms:{serial}#{}#{time_key}#{}#{}",
                self.pin, self.status, self.verify
            ),
            serial: Arc::clone(serial),
            terminal: Arc::clone(terminal),
            user_id: self.pin.clone(),
            time,
            state: self.status,
            verify_mode: self.verify,
            work_code: self.work_code.clone(),
        }
    }
}

/// Reads one line; `Ok(None)` for a blank one.
pub fn parse_line(line: &str) -> Result<Option<AttlogLine>, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let line = line
        .strip_prefix("ATTLOG\t")
        .or_else(|| line.strip_prefix("ATTLOG "))
        .unwrap_or(line);
    if line.trim().is_empty() {
        return Ok(None);
    }
    let fields = split(line);
    if fields.len() > MOST_FIELDS {
        return Err(format!(
            "{} fields; a punch line has at most 12",
            fields.len()
        ));
    }
    let field = |index: usize| fields.get(index).map_or("", |field| field.trim());
    let pin = field(0);
    if pin.is_empty() {
        return Err("no PIN (the first field is empty)".to_owned());
    }
    if fields.len() < 2 || field(1).is_empty() {
        return Err("no time (the second field is missing)".to_owned());
    }
    let time = parse_time(field(1))?;
    let number = |index: usize, what: &str| -> Result<i32, String> {
        let text = field(index);
        if text.is_empty() {
            return Ok(0);
        }
        text.parse()
            .map_err(|_| format!("the {what} {text:?} is not a number"))
    };
    let status = number(2, "status")?;
    let verify = number(3, "verify mode")?;
    // `PIN⇥Time⇥Status⇥Verify⇥⇥WorkCode`: an empty fifth field, the work code next.
    let work_code = match (field(4), fields.len()) {
        ("", 6) => field(5),
        (code, _) => code,
    };
    let time_offset = if fields.len() >= 12 {
        let text = field(10);
        match text.parse::<i32>() {
            Ok(offset) if offset.abs() <= 14 * 3600 => Some(offset),
            Ok(_) => return Err(format!("the UTC offset {text} seconds is beyond ±14 hours")),
            Err(_) if text.is_empty() => None,
            Err(_) => {
                return Err(format!(
                    "the UTC offset {text:?} is not a number of seconds"
                ));
            }
        }
    } else {
        None
    };
    Ok(Some(AttlogLine {
        pin: pin.to_owned(),
        time,
        status,
        verify,
        work_code: work_code.to_owned(),
        time_offset,
    }))
}

/// The fields: TAB-separated, or (some firmware) space-separated with the date and
/// time as two tokens.
fn split(line: &str) -> Vec<&str> {
    if line.contains('\t') {
        return line.split('\t').collect();
    }
    let tokens: Vec<&str> = line.split_whitespace().collect();
    let is_date = |token: &str| token.len() == 10 && token.as_bytes().get(4) == Some(&b'-');
    let is_clock = |token: &str| token.len() == 8 && token.as_bytes().get(2) == Some(&b':');
    match tokens.as_slice() {
        [pin, date, clock, rest @ ..] if is_date(date) && is_clock(clock) => {
            // The date and time are adjacent in the line: one field again.
            let start = date.as_ptr() as usize - line.as_ptr() as usize;
            let end = clock.as_ptr() as usize - line.as_ptr() as usize + clock.len();
            let mut fields = vec![*pin, &line[start..end]];
            fields.extend_from_slice(rest);
            fields
        }
        _ => tokens,
    }
}

fn parse_time(text: &str) -> Result<LineTime, String> {
    if let Ok(time) = NaiveDateTime::parse_from_str(text, WALL_TIME_FORMAT) {
        return Ok(LineTime::Wall(time));
    }
    if !text.is_empty() && text.len() <= 12 && text.bytes().all(|byte| byte.is_ascii_digit()) {
        return text
            .parse()
            .map(LineTime::Unix)
            .map_err(|_| format!("the time {text:?} is not a date"));
    }
    let shaped = text.len() == 19
        && text.bytes().enumerate().all(|(at, byte)| match at {
            4 | 7 => byte == b'-',
            10 => byte == b' ',
            13 | 16 => byte == b':',
            _ => byte.is_ascii_digit(),
        });
    if shaped {
        return Ok(LineTime::Invalid(text.to_owned()));
    }
    Err(format!(
        "the time {text:?} is neither YYYY-MM-DD HH:MM:SS nor Unix seconds"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wall(text: &str) -> LineTime {
        LineTime::Wall(NaiveDateTime::parse_from_str(text, WALL_TIME_FORMAT).unwrap())
    }

    fn line(text: &str) -> AttlogLine {
        parse_line(text).unwrap().unwrap()
    }

    #[test]
    fn every_field_count_from_five_to_twelve_reads_the_same_punch() {
        let fields = [
            "1383",
            "2026-09-15 09:00:00",
            "1",
            "15",
            "7",
            "0",
            "0",
            "0",
            "36.2",
            "0",
            "",
            "",
        ];
        for count in 5..=12 {
            let text = fields[..count].join("\t");
            let read = line(&text);
            assert_eq!(read.pin, "1383", "{count} fields");
            assert_eq!(read.time, wall("2026-09-15 09:00:00"));
            assert_eq!((read.status, read.verify), (1, 15));
            assert_eq!(read.work_code, "7");
            assert_eq!(read.time_offset, None);
        }
    }

    #[test]
    fn spaces_crlf_tags_and_unix_seconds_are_read() {
        let spaced = line("1383 2026-09-15 09:00:00 0 1 0 0 0\r\n");
        assert_eq!(spaced.time, wall("2026-09-15 09:00:00"));
        assert_eq!((spaced.status, spaced.verify), (0, 1));
        let tagged = line("ATTLOG\t42\t2026-09-15 09:00:00\t0\t1\t0\t0\t0");
        assert_eq!(tagged.pin, "42");
        let unix = line("42\t1789462800\t0\t1\t0");
        assert_eq!(unix.time, LineTime::Unix(1_789_462_800));
        let leading_zeros = line("0042\t2026-09-15 09:00:00\t0\t1");
        assert_eq!(leading_zeros.pin, "0042");
    }

    #[test]
    fn an_empty_fifth_field_takes_the_work_code_from_the_sixth() {
        let read = line("42\t2026-09-15 09:00:00\t0\t1\t\t305");
        assert_eq!(read.work_code, "305");
    }

    #[test]
    fn the_twelve_field_form_carries_the_offset_and_android_eleven_does_not() {
        let twelve = line("42\t2026-09-15 09:00:00\t0\t1\t0\t0\t0\t0\t36.5\t0\t+19800\t");
        assert_eq!(twelve.time_offset, Some(19_800));
        let android = line("42\t2026-09-15 09:00:00\t0\t1\t0\t0\t0\t0\t0\t0\t9912");
        assert_eq!(android.time_offset, None);
    }

    #[test]
    fn each_simulated_style_reads_back_as_written() {
        let punch = AttlogLine {
            pin: "0042".into(),
            time: wall("2026-03-08 01:30:00"),
            status: 1,
            verify: 15,
            work_code: "0".into(),
            time_offset: Some(-18_000),
        };
        for style in [LineStyle::Seven, LineStyle::Twelve, LineStyle::Android] {
            let read = line(&punch.write(style));
            let expected_offset = (style == LineStyle::Twelve).then_some(-18_000);
            assert_eq!(
                read,
                AttlogLine {
                    time_offset: expected_offset,
                    ..punch.clone()
                },
                "{style:?}"
            );
        }
    }

    #[test]
    fn bad_lines_say_why() {
        let cases = [
            ("\t2026-09-15 09:00:00\t0\t1", "no PIN"),
            ("42", "no time"),
            ("42\tyesterday\t0\t1", "neither YYYY-MM-DD"),
            (
                "42\t2026-09-15 09:00:00\tin\t1",
                "the status \"in\" is not a number",
            ),
            (
                "42\t2026-09-15 09:00:00\t0\t1\t0\t0\t0\t0\t0\t0\t+99999\t",
                "beyond ±14 hours",
            ),
        ];
        for (text, reason) in cases {
            let error = parse_line(text).unwrap_err();
            assert!(error.contains(reason), "{text:?}: {error}");
        }
        let many = vec!["1"; 40].join("\t");
        assert!(parse_line(&many).unwrap_err().contains("40 fields"));
        assert_eq!(parse_line("\r\n").unwrap(), None);
        assert_eq!(
            line("42\t2026-02-30 10:00:00\t0\t1").time,
            LineTime::Invalid("2026-02-30 10:00:00".into())
        );
    }

    #[test]
    fn records_carry_the_true_wall_time_in_the_devices_zone() {
        let serial: Arc<str> = "SN1".into();
        let kolkata: Tz = "Asia/Kolkata".parse().unwrap();
        // Unix seconds: 2026-09-15 03:30:00 UTC is 09:00 in Kolkata.
        let unix = line("42\t1789443000\t0\t1").record(&serial, &serial, kolkata);
        assert_eq!(
            unix.time,
            RecordTime::Valid(
                NaiveDateTime::parse_from_str("2026-09-15 09:00:00", WALL_TIME_FORMAT).unwrap()
            )
        );
        // A line stamped +05:30 on a device configured for Kolkata keeps its wall time;
        // one stamped +00:00 is re-read in the device's zone.
        let same = line("42\t2026-09-15 09:00:00\t0\t1\t0\t0\t0\t0\t0\t0\t+19800\t")
            .record(&serial, &serial, kolkata);
        assert_eq!(same.time, unix.time);
        let utc = line("42\t2026-09-15 03:30:00\t0\t1\t0\t0\t0\t0\t0\t0\t0\t")
            .record(&serial, &serial, kolkata);
        assert_eq!(utc.time, unix.time);
        assert_eq!(utc.source, SourceKind::Adms);
        assert_eq!(utc.source_key, "adms:SN1#42#2026-09-15 09:00:00#0#1");
    }
}
