//! How the simulated server writes rows: with the type looseness real BioTime versions
//! show (numbers as strings, `""` and `null` for nothing, 9.0 rows without the name
//! fields), varied deterministically by row id so every client path gets exercised.

use serde_json::{Value, json};

use super::dataset::{SimTerminal, SimTransaction};

const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub fn transaction(row: &SimTransaction) -> Value {
    let id = row.id;
    let number_or_text = |value: i64, as_text: bool| {
        if as_text {
            Value::String(value.to_string())
        } else {
            json!(value)
        }
    };
    let punch_state = match row.punch_state.parse::<i64>() {
        Ok(state) => number_or_text(state, id % 3 != 0),
        Err(_) => Value::String(row.punch_state.clone()),
    };
    let emp_code = match row.emp_code.parse::<i64>() {
        Ok(code) if id % 11 == 0 => json!(code),
        _ => Value::String(row.emp_code.clone()),
    };
    let work_code = match id % 13 {
        0 => Value::Null,
        7 => Value::String(String::new()),
        _ => Value::String(row.work_code.clone()),
    };
    let mut fields = json!({
        "id": number_or_text(id, id % 17 == 0),
        "emp": Value::Null,
        "emp_code": emp_code,
        "punch_time": row.punch_time,
        "punch_state": punch_state,
        "verify_type": number_or_text(i64::from(row.verify_type), id % 5 == 0),
        "work_code": work_code,
        "gps_location": Value::Null,
        "area_alias": "Head office",
        "terminal_sn": row.terminal_sn,
        "terminal_alias": row.terminal_alias,
        "temperature": if id % 2 == 0 { json!(0.0) } else { json!("0.0") },
        "is_mask": if id % 2 == 0 { json!("-") } else { json!(255) },
        "upload_time": row.upload_time.format(TIME_FORMAT).to_string(),
    });
    if let Value::Object(map) = &mut fields {
        if id % 4 == 0 {
            // A 9.0-style row: no name or label fields, extra sync fields instead.
            map.insert("mobile".into(), Value::Null);
            map.insert("source".into(), json!(1));
            map.insert("purpose".into(), json!(9));
            map.insert("crc".into(), json!(""));
            map.insert("is_attendance".into(), json!(1));
            map.insert("sync_status".into(), json!(0));
            map.insert("terminal".into(), Value::Null);
        } else {
            map.insert("first_name".into(), Value::Null);
            map.insert("last_name".into(), Value::Null);
            map.insert("department".into(), Value::Null);
            map.insert("position".into(), Value::Null);
            map.insert(
                "punch_state_display".into(),
                json!(match row.punch_state.as_str() {
                    "0" => "Check In",
                    "1" => "Check Out",
                    "2" => "Break Out",
                    "3" => "Break In",
                    _ => "Unknown",
                }),
            );
            map.insert(
                "verify_type_display".into(),
                json!(match row.verify_type {
                    1 => "Fingerprint",
                    4 => "Card",
                    15 => "Face",
                    _ => "Any",
                }),
            );
        }
    }
    fields
}

pub fn terminal(terminal: &SimTerminal, transaction_count: usize) -> Value {
    json!({
        "id": terminal.id,
        "sn": terminal.sn,
        "ip_address": terminal.ip_address,
        "alias": terminal.alias,
        "terminal_name": "SpeedFace-V5L",
        "fw_ver": "ZAM180-NF-Ver1.1.17",
        "push_ver": "2.4.1",
        "state": 1,
        "terminal_tz": 5,
        "area": {"id": 1, "area_code": "1", "area_name": "Head office"},
        "last_activity": Value::Null,
        "user_count": Value::Null,
        "transaction_count": transaction_count,
        "transfer_interval": 1,
        "is_attendance": 1,
        "area_name": "Head office",
    })
}
