//! Which checkins Frappe already has, asked for in bulk before creating any: one list
//! request per 200 punches, for their employees between their first and last time.
//! Frappe's own duplicate answer would catch them too, one request each; asking first
//! makes a re-sent backlog (a lost cache, `--since`) cost a request per 200 punches.

use std::collections::HashSet;

use chrono::NaiveDateTime;
use serde_json::json;

use super::client::{CallError, FrappeClient};
use crate::punch::wall_time_text;

/// Punches per query.
const PUNCHES_PER_QUERY: usize = 200;

/// What makes a checkin a duplicate in Frappe: employee, time and log type ("" for none).
pub type CheckinKey = (String, NaiveDateTime, String);

/// The checkins Frappe holds for these (employee, site time) pairs, at any log type.
pub async fn existing(
    client: &FrappeClient,
    wanted: &[(&str, NaiveDateTime)],
) -> Result<HashSet<CheckinKey>, CallError> {
    let mut sorted = wanted.to_vec();
    sorted.sort_by_key(|(_, time)| *time);
    let mut existing = HashSet::new();
    for chunk in sorted.chunks(PUNCHES_PER_QUERY) {
        let mut employees: Vec<&str> = chunk.iter().map(|(employee, _)| *employee).collect();
        employees.sort_unstable();
        employees.dedup();
        let (Some((_, first)), Some((_, last))) = (chunk.first(), chunk.last()) else {
            continue;
        };
        let filters = json!([
            ["employee", "in", employees],
            ["time", ">=", wall_time_text(*first)],
            ["time", "<=", wall_time_text(*last)],
        ]);
        let rows = client
            .list(
                "Employee Checkin",
                &[
                    ("filters", filters.to_string()),
                    (
                        "fields",
                        json!(["employee", "time", "log_type"]).to_string(),
                    ),
                    ("limit_page_length", "0".into()),
                ],
            )
            .await?;
        for row in rows {
            let time = row["time"].as_str().and_then(|text| {
                NaiveDateTime::parse_from_str(text.get(..19).unwrap_or(text), "%Y-%m-%d %H:%M:%S")
                    .ok()
            });
            if let (Some(employee), Some(time)) = (row["employee"].as_str(), time) {
                let log_type = row["log_type"].as_str().unwrap_or_default().to_owned();
                existing.insert((employee.to_owned(), time, log_type));
            }
        }
    }
    Ok(existing)
}
