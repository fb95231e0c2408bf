//! Lenient, zero-copy decoding of BioTime list pages and transaction rows.
//!
//! BioTime versions disagree on types (numbers as strings, `""` for null, fields
//! missing on 9.0), so each field is read as a [`Loose`] scalar and interpreted by what
//! it means rather than by a strict schema; one odd row becomes one quarantined record
//! instead of a failed page. Rows are decoded straight from the response bytes (a page
//! holds up to thousands of rows, and building a JSON tree for each cost more than
//! everything else the sync does with them).

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use chrono::NaiveDateTime;
use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::punch::SourceKind;
use crate::source::{Fetched, RecordTime, SourceRecord};

/// A JSON scalar as loosely typed as BioTime writes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Loose<'a> {
    /// Absent or `null`.
    #[default]
    Nothing,
    Text(Cow<'a, str>),
    Integer(i64),
    Float(f64),
    Bool(bool),
    /// An object or array where a scalar was expected.
    Nested,
}

impl Loose<'_> {
    /// Text from a string or number; `None` for null, nested values and blank strings.
    pub fn text(&self) -> Option<String> {
        match self {
            Loose::Text(text) => {
                let text = text.trim();
                (!text.is_empty()).then(|| text.to_owned())
            }
            Loose::Integer(number) => Some(number.to_string()),
            Loose::Float(number) => Some(number.to_string()),
            Loose::Bool(flag) => Some(if *flag { "1" } else { "0" }.to_owned()),
            Loose::Nothing | Loose::Nested => None,
        }
    }

    /// An integer from a number (integral floats too) or a numeric string.
    pub fn integer(&self) -> Option<i64> {
        let integral =
            |float: f64| (float.fract() == 0.0 && float.abs() < 9.0e15).then_some(float as i64);
        match self {
            Loose::Integer(number) => Some(*number),
            Loose::Float(number) => integral(*number),
            Loose::Text(text) => {
                let text = text.trim();
                text.parse::<i64>()
                    .ok()
                    .or_else(|| text.parse::<f64>().ok().and_then(integral))
            }
            _ => None,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Loose<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Loose<'a>, D::Error> {
        struct LooseVisitor;
        impl<'de> Visitor<'de> for LooseVisitor {
            type Value = Loose<'de>;
            fn expecting(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
                formatter.write_str("any JSON value")
            }
            fn visit_borrowed_str<E>(self, text: &'de str) -> Result<Loose<'de>, E> {
                Ok(Loose::Text(Cow::Borrowed(text)))
            }
            fn visit_str<E>(self, text: &str) -> Result<Loose<'de>, E> {
                Ok(Loose::Text(Cow::Owned(text.to_owned())))
            }
            fn visit_i64<E>(self, number: i64) -> Result<Loose<'de>, E> {
                Ok(Loose::Integer(number))
            }
            fn visit_u64<E>(self, number: u64) -> Result<Loose<'de>, E> {
                Ok(i64::try_from(number).map_or(Loose::Float(number as f64), Loose::Integer))
            }
            fn visit_f64<E>(self, number: f64) -> Result<Loose<'de>, E> {
                Ok(Loose::Float(number))
            }
            fn visit_bool<E>(self, flag: bool) -> Result<Loose<'de>, E> {
                Ok(Loose::Bool(flag))
            }
            fn visit_unit<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Nothing)
            }
            fn visit_none<E>(self) -> Result<Loose<'de>, E> {
                Ok(Loose::Nothing)
            }
            fn visit_some<D: Deserializer<'de>>(self, inner: D) -> Result<Loose<'de>, D::Error> {
                inner.deserialize_any(self)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Loose<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Loose::Nested)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Loose<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Loose::Nested)
            }
        }
        deserializer.deserialize_any(LooseVisitor)
    }
}

/// One page of a DRF list response, borrowing its rows from the response body.
#[derive(Debug)]
pub struct Page<'a> {
    pub count: Option<u64>,
    pub next: Option<String>,
    pub rows: Vec<&'a RawValue>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(default, borrow)]
    count: Loose<'a>,
    #[serde(default, borrow)]
    next: Loose<'a>,
    #[serde(default, borrow)]
    code: Loose<'a>,
    #[serde(default, borrow)]
    msg: Loose<'a>,
    #[serde(default, borrow)]
    data: Option<Vec<&'a RawValue>>,
    #[serde(default, borrow)]
    results: Option<Vec<&'a RawValue>>,
}

/// Reads the list envelope. `Err` carries the server's own message when `code` is set.
pub fn parse_page(body: &[u8]) -> Result<Page<'_>, String> {
    let envelope: Envelope = serde_json::from_slice(body)
        .map_err(|error| format!("expected a JSON object with a data list ({error})"))?;
    if let Some(code) = envelope.code.integer()
        && code != 0
    {
        let message = envelope.msg.text().unwrap_or_else(|| "no message".into());
        return Err(format!("BioTime answered code {code}: {message}"));
    }
    // The 8.5 manual shows an empty `results` beside `data`: read whichever has rows.
    let rows = match (envelope.data, envelope.results) {
        (Some(data), Some(results)) if data.is_empty() => results,
        (Some(data), _) => data,
        (None, Some(results)) => results,
        (None, None) => return Err("the response has no `data` list".into()),
    };
    Ok(Page {
        count: envelope.count.integer().map(|count| count.max(0) as u64),
        next: envelope.next.text(),
        rows,
    })
}

/// Where a row sits in BioTime's arrival order, for the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowPosition {
    pub id: Option<i64>,
    pub upload_time: Option<NaiveDateTime>,
}

/// The transaction fields we use; everything else in a row is skipped unread.
#[derive(Deserialize)]
struct Row<'a> {
    #[serde(default, borrow)]
    id: Loose<'a>,
    #[serde(default, borrow)]
    emp_code: Loose<'a>,
    #[serde(default, borrow)]
    punch_time: Loose<'a>,
    #[serde(default, borrow)]
    punch_state: Loose<'a>,
    #[serde(default, borrow)]
    verify_type: Loose<'a>,
    #[serde(default, borrow)]
    work_code: Loose<'a>,
    #[serde(default, borrow)]
    terminal_sn: Loose<'a>,
    #[serde(default, borrow)]
    terminal_alias: Loose<'a>,
    #[serde(default, borrow)]
    upload_time: Loose<'a>,
}

/// Decodes one transaction row. `key_prefix` is `biotime:<base url>`.
pub fn parse_row(key_prefix: &str, raw: &RawValue) -> (Fetched, RowPosition) {
    let Ok(row) = serde_json::from_str::<Row>(raw.get()) else {
        let fetched = undecodable(key_prefix, "the row is not a JSON object", raw);
        return (
            fetched,
            RowPosition {
                id: None,
                upload_time: None,
            },
        );
    };
    let id = row.id.integer();
    let position = RowPosition {
        id,
        upload_time: row.upload_time.text().and_then(|text| parse_time(&text)),
    };
    let Some(id) = id else {
        return (
            undecodable(key_prefix, "the row has no transaction id", raw),
            position,
        );
    };
    let source_key = format!("{key_prefix}#{id}");
    let fetched = match decode(&row) {
        Ok(decoded) => Fetched::Record(SourceRecord {
            source_key,
            ..decoded
        }),
        Err(reason) => Fetched::Undecodable {
            source_key,
            reason,
            raw: raw_value(raw),
        },
    };
    (fetched, position)
}

fn decode(row: &Row<'_>) -> Result<SourceRecord, String> {
    let time_text = row.punch_time.text().ok_or("the row has no punch_time")?;
    let time = match parse_time(&time_text) {
        Some(time) => RecordTime::Valid(time),
        None => RecordTime::Invalid(time_text),
    };
    Ok(SourceRecord {
        source: SourceKind::Biotime,
        source_key: String::new(),
        serial: Arc::from(row.terminal_sn.text().unwrap_or_default()),
        terminal: Arc::from(row.terminal_alias.text().unwrap_or_default()),
        user_id: row.emp_code.text().unwrap_or_default(),
        time,
        state: small_int(&row.punch_state, "punch_state", 255)?,
        verify_mode: small_int(&row.verify_type, "verify_type", 0)?,
        work_code: row.work_code.text().unwrap_or_default(),
    })
}

fn undecodable(key_prefix: &str, reason: &str, raw: &RawValue) -> Fetched {
    let short = crate::punch::short_digest(raw.get());
    Fetched::Undecodable {
        source_key: format!("{key_prefix}#row-{short}"),
        reason: reason.to_owned(),
        raw: raw_value(raw),
    }
}

/// The row as a JSON value, for the quarantine file (only bad rows pay for this).
fn raw_value(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or_else(|_| Value::String(raw.get().to_owned()))
}

/// A small integer field; missing, null, `""` and `"-"` give `default`.
fn small_int(value: &Loose<'_>, name: &str, default: i32) -> Result<i32, String> {
    match value.text() {
        None => Ok(default),
        Some(text) if text == "-" => Ok(default),
        Some(text) => value
            .integer()
            .and_then(|number| i32::try_from(number).ok())
            .ok_or_else(|| format!("{name} '{text}' is not a number")),
    }
}

/// `2024-06-05 23:59:39`, also with a `T` separator or fractional seconds.
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    use chrono::Timelike;
    let text = text.trim();
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|time| time.with_nanosecond(0).unwrap_or(time))
}

/// Reads a single object's fields leniently (for small endpoints such as terminals).
pub fn loose_field<'a>(row: &'a RawValue, name: &str) -> Loose<'a> {
    serde_json::from_str::<std::collections::HashMap<&str, Loose>>(row.get())
        .ok()
        .and_then(|mut fields| fields.remove(name))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PREFIX: &str = "biotime:http://bt";

    fn raw(value: Value) -> Box<RawValue> {
        RawValue::from_string(value.to_string()).unwrap()
    }

    fn decoded(row: Value) -> SourceRecord {
        match parse_row(PREFIX, &raw(row)).0 {
            Fetched::Record(record) => record,
            other => panic!("expected a record, got {other:?}"),
        }
    }

    #[test]
    fn the_recorded_8x_row_decodes() {
        let row = json!({"id":2,"emp":null,"emp_code":"4","first_name":null,"last_name":null,
            "department":null,"position":null,"punch_time":"2024-06-05 23:59:39","punch_state":"0",
            "punch_state_display":"Check In","verify_type":4,"verify_type_display":"Card",
            "work_code":"0","gps_location":null,"area_alias":"empty","terminal_sn":"CLGY211460005",
            "temperature":0.0,"is_mask":"-","terminal_alias":"zpad","upload_time":"2024-09-16 10:44:07"});
        let (fetched, position) = parse_row(PREFIX, &raw(row));
        let Fetched::Record(record) = fetched else {
            panic!("not a record")
        };
        assert_eq!(record.source_key, "biotime:http://bt#2");
        assert_eq!(record.user_id, "4");
        assert_eq!(&*record.serial, "CLGY211460005");
        assert_eq!(record.state, 0);
        assert_eq!(record.verify_mode, 4);
        assert_eq!(record.work_code, "0");
        assert_eq!(
            record.time,
            RecordTime::Valid(parse_time("2024-06-05 23:59:39").unwrap())
        );
        assert_eq!(position.id, Some(2));
        assert_eq!(position.upload_time, parse_time("2024-09-16 10:44:07"));
    }

    #[test]
    fn loose_types_are_accepted() {
        let record = decoded(
            json!({"id":"17","emp_code":1001,"punch_time":"2026-01-05T08:00:00.250",
            "punch_state":1,"verify_type":"15","work_code":null,"terminal_sn":null,
            "area":{"id":1},"temperature":"36.6"}),
        );
        assert_eq!(record.user_id, "1001");
        assert_eq!(record.state, 1);
        assert_eq!(record.verify_mode, 15);
        assert_eq!(record.work_code, "");
        assert_eq!(&*record.serial, "");
        assert_eq!(
            record.time,
            RecordTime::Valid(parse_time("2026-01-05 08:00:00").unwrap())
        );
        let missing = decoded(
            json!({"id":3,"emp_code":"1","punch_time":"2026-01-05 08:00:00",
            "punch_state":"","verify_type":"-"}),
        );
        assert_eq!((missing.state, missing.verify_mode), (255, 0));
        let escaped =
            decoded(json!({"id":4.0,"emp_code":"a\"b","punch_time":"2026-01-05 08:00:00"}));
        assert_eq!(escaped.user_id, "a\"b");
        assert_eq!(escaped.source_key, "biotime:http://bt#4");
    }

    #[test]
    fn impossible_dates_are_kept_as_text_for_the_normalizer() {
        let record = decoded(json!({"id":5,"emp_code":"1","punch_time":"2025-02-30 10:00:00"}));
        assert_eq!(
            record.time,
            RecordTime::Invalid("2025-02-30 10:00:00".into())
        );
    }

    #[test]
    fn undecodable_rows_become_quarantine_material() {
        for row in [
            json!("just a string"),
            json!({"emp_code":"1","punch_time":"2026-01-01 08:00:00"}),
            json!({"id":9,"emp_code":"1"}),
            json!({"id":9,"emp_code":"1","punch_time":"2026-01-01 08:00:00","punch_state":"IN"}),
        ] {
            match parse_row(PREFIX, &raw(row.clone())).0 {
                Fetched::Undecodable { reason, raw, .. } => {
                    assert!(!reason.is_empty());
                    assert_eq!(raw, row);
                }
                other => panic!("{row} decoded as {other:?}"),
            }
        }
    }

    #[test]
    fn pages_read_data_or_results_and_report_error_codes() {
        let body = json!({"count":"84","next":"http://x/?page=2","previous":null,
            "msg":"","code":0,"data":[{"id":1}]})
        .to_string();
        let page = parse_page(body.as_bytes()).unwrap();
        assert_eq!(page.count, Some(84));
        assert_eq!(page.next.as_deref(), Some("http://x/?page=2"));
        assert_eq!(page.rows.len(), 1);
        let body = json!({"count":1,"next":"","data":[],"results":[{"id":1}]}).to_string();
        let page = parse_page(body.as_bytes()).unwrap();
        assert_eq!((page.rows.len(), page.next), (1, None));
        let body = json!({"code":1,"msg":"permission denied","data":[]}).to_string();
        assert!(
            parse_page(body.as_bytes())
                .unwrap_err()
                .contains("permission denied")
        );
        assert!(parse_page(b"[1, 2]").is_err());
        assert!(parse_page(b"{\"count\": 3}").is_err());
    }

    #[test]
    fn single_fields_are_read_leniently() {
        let row = raw(json!({"sn": 12345, "alias": " Gate ", "last_activity": null}));
        assert_eq!(loose_field(&row, "sn").text().as_deref(), Some("12345"));
        assert_eq!(loose_field(&row, "alias").text().as_deref(), Some("Gate"));
        assert_eq!(loose_field(&row, "last_activity").text(), None);
        assert_eq!(loose_field(&row, "missing"), Loose::Nothing);
    }
}
