//! Lenient decoding of BioTime list pages and transaction rows.
//!
//! BioTime versions disagree on types (numbers as strings, `""` for null, fields
//! missing on 9.0), so each field is read by what it means rather than by a strict
//! schema, and one odd row becomes one quarantined record instead of a failed page.

use std::sync::Arc;

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::punch::SourceKind;
use crate::source::{Fetched, RecordTime, SourceRecord};

/// One page of a DRF list response.
#[derive(Debug)]
pub struct Page {
    pub count: Option<u64>,
    pub next: Option<String>,
    pub rows: Vec<Value>,
}

/// Reads the list envelope. `Err` carries the server's own message when `code` is set.
pub fn parse_page(body: Value) -> Result<Page, String> {
    let Value::Object(mut envelope) = body else {
        return Err("expected a JSON object with a data list".into());
    };
    if let Some(code) = envelope.get("code").and_then(lenient_int)
        && code != 0
    {
        let message = envelope
            .get("msg")
            .and_then(lenient_text)
            .unwrap_or_else(|| "no message".into());
        return Err(format!("BioTime answered code {code}: {message}"));
    }
    let rows = match (envelope.remove("data"), envelope.remove("results")) {
        (Some(Value::Array(rows)), _) if !rows.is_empty() => rows,
        (_, Some(Value::Array(rows))) if !rows.is_empty() => rows,
        (Some(Value::Array(rows)), _) | (_, Some(Value::Array(rows))) => rows,
        _ => return Err("the response has no `data` list".into()),
    };
    Ok(Page {
        count: envelope
            .get("count")
            .and_then(lenient_int)
            .map(|n| n.max(0) as u64),
        next: envelope.get("next").and_then(lenient_text),
        rows,
    })
}

/// Where a row sits in BioTime's arrival order, for the cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowPosition {
    pub id: Option<i64>,
    pub upload_time: Option<NaiveDateTime>,
}

/// Decodes one transaction row. `key_prefix` is `biotime:<base url>`.
pub fn parse_row(key_prefix: &str, row: Value) -> (Fetched, RowPosition) {
    let Value::Object(fields) = row else {
        let fetched = undecodable(key_prefix, "the row is not a JSON object", row);
        return (
            fetched,
            RowPosition {
                id: None,
                upload_time: None,
            },
        );
    };
    let id = fields.get("id").and_then(lenient_int);
    let upload_time = fields
        .get("upload_time")
        .and_then(lenient_text)
        .and_then(|text| parse_time(&text));
    let position = RowPosition { id, upload_time };
    let Some(id) = id else {
        return (
            undecodable(
                key_prefix,
                "the row has no transaction id",
                Value::Object(fields),
            ),
            position,
        );
    };
    match decode_fields(&fields) {
        Ok(decoded) => (
            Fetched::Record(SourceRecord {
                source: SourceKind::Biotime,
                source_key: format!("{key_prefix}#{id}"),
                ..decoded
            }),
            position,
        ),
        Err(reason) => (
            Fetched::Undecodable {
                source_key: format!("{key_prefix}#{id}"),
                reason,
                raw: Value::Object(fields),
            },
            position,
        ),
    }
}

fn decode_fields(fields: &Map<String, Value>) -> Result<SourceRecord, String> {
    let user_id = fields
        .get("emp_code")
        .and_then(lenient_text)
        .unwrap_or_default();
    let time_text = fields
        .get("punch_time")
        .and_then(lenient_text)
        .ok_or("the row has no punch_time")?;
    let time = match parse_time(&time_text) {
        Some(time) => RecordTime::Valid(time),
        None => RecordTime::Invalid(time_text),
    };
    Ok(SourceRecord {
        source: SourceKind::Biotime,
        source_key: String::new(),
        serial: Arc::from(
            fields
                .get("terminal_sn")
                .and_then(lenient_text)
                .unwrap_or_default(),
        ),
        user_id,
        time,
        state: small_int(fields, "punch_state", 255)?,
        verify_mode: small_int(fields, "verify_type", 0)?,
        work_code: fields
            .get("work_code")
            .and_then(lenient_text)
            .unwrap_or_default(),
    })
}

fn undecodable(key_prefix: &str, reason: &str, raw: Value) -> Fetched {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(raw.to_string().as_bytes());
    let short: String = digest[..8]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    Fetched::Undecodable {
        source_key: format!("{key_prefix}#row-{short}"),
        reason: reason.to_owned(),
        raw,
    }
}

/// A small integer field; missing, null, `""` and `"-"` give `default`.
fn small_int(fields: &Map<String, Value>, name: &str, default: i32) -> Result<i32, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(default),
        Some(value) => match lenient_text(value) {
            None => Ok(default),
            Some(text) if text == "-" => Ok(default),
            Some(text) => lenient_int(value)
                .and_then(|number| i32::try_from(number).ok())
                .ok_or_else(|| format!("{name} '{text}' is not a number")),
        },
    }
}

/// Text from a string or number; `None` for null and blank strings.
pub fn lenient_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        }
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(if *flag { "1" } else { "0" }.to_owned()),
        _ => None,
    }
}

/// An integer from a number (integral floats too) or a numeric string.
pub fn lenient_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number
                .as_f64()
                .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
                .map(|float| float as i64)
        }),
        Value::String(text) => {
            let text = text.trim();
            text.parse::<i64>().ok().or_else(|| {
                text.parse::<f64>()
                    .ok()
                    .filter(|float| float.fract() == 0.0 && float.abs() < 9.0e15)
                    .map(|float| float as i64)
            })
        }
        _ => None,
    }
}

/// `2024-06-05 23:59:39`, also with a `T` separator or fractional seconds.
pub fn parse_time(text: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
    .map(|time| time.with_nanosecond_zero())
}

trait TruncateSubsecond {
    fn with_nanosecond_zero(self) -> Self;
}

impl TruncateSubsecond for NaiveDateTime {
    fn with_nanosecond_zero(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PREFIX: &str = "biotime:http://bt";

    fn decoded(row: Value) -> SourceRecord {
        match parse_row(PREFIX, row).0 {
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
        let (fetched, position) = parse_row(PREFIX, row);
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
        let row = json!({"id":"17","emp_code":1001,"punch_time":"2026-01-05T08:00:00.250",
            "punch_state":1,"verify_type":"15","work_code":null,"terminal_sn":null});
        let record = decoded(row);
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
            match parse_row(PREFIX, row.clone()).0 {
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
        let page = parse_page(
            json!({"count":"84","next":"http://x/?page=2","previous":null,
            "msg":"","code":0,"data":[{"id":1}]}),
        )
        .unwrap();
        assert_eq!(page.count, Some(84));
        assert_eq!(page.next.as_deref(), Some("http://x/?page=2"));
        assert_eq!(page.rows.len(), 1);
        let page = parse_page(json!({"count":1,"next":"","data":[],"results":[{"id":1}]})).unwrap();
        assert_eq!((page.rows.len(), page.next), (1, None));
        let error = parse_page(json!({"code":1,"msg":"permission denied","data":[]})).unwrap_err();
        assert!(error.contains("permission denied"));
        assert!(parse_page(json!([1, 2])).is_err());
    }
}
