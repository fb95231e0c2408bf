//! The Shift Type watermark: HRMS's auto-attendance marks attendance only up to a
//! Shift Type's `last_sync_of_checkin`, so once every device mapped to a Shift Type
//! has been read in full and delivered, it is moved to when that read began — the
//! moment up to which its checkins are known to be complete. It moves only when all of
//! its devices have completed at least once in this process, and only forward: the
//! site's current value is read first and a later one is left alone (a restart, or a
//! second install on the same site, must not set it back). Frappe has no conditional
//! update, so two installs that write in the same instant can still race.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use chrono::NaiveDateTime;
use serde_json::json;

use super::client::{CallError, FrappeClient};
use super::config::ShiftTypeMapping;
use crate::punch::wall_time_text;
use crate::report::DeviceReport;

pub struct ShiftTypes {
    mappings: Vec<ShiftTypeMapping>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Per device, when its last complete and fully delivered read began.
    complete_since: HashMap<String, NaiveDateTime>,
    /// Per Shift Type, the watermark last set.
    set: HashMap<String, NaiveDateTime>,
}

impl ShiftTypes {
    pub fn new(mappings: Vec<ShiftTypeMapping>) -> ShiftTypes {
        ShiftTypes {
            mappings,
            state: Mutex::new(State::default()),
        }
    }

    /// Records the cycle (which began at `began`, site time) and moves the watermarks
    /// it allows; returns summary lines.
    pub async fn advance(
        &self,
        client: &FrappeClient,
        devices: &[DeviceReport],
        began: NaiveDateTime,
    ) -> Vec<String> {
        if self.mappings.is_empty() {
            return Vec::new();
        }
        let due: Vec<(String, NaiveDateTime)> = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            for device in devices {
                if device.error.is_none() && !device.interrupted && device.not_delivered == 0 {
                    state.complete_since.insert(device.name.clone(), began);
                }
            }
            self.mappings
                .iter()
                .filter_map(|mapping| {
                    let watermark = mapping
                        .devices
                        .iter()
                        .map(|device| state.complete_since.get(device).copied())
                        .collect::<Option<Vec<_>>>()?
                        .into_iter()
                        .min()?;
                    let newer = state
                        .set
                        .get(&mapping.name)
                        .is_none_or(|set| watermark > *set);
                    newer.then(|| (mapping.name.clone(), watermark))
                })
                .collect()
        };
        let mut notes = Vec::new();
        for (name, watermark) in due {
            let current = match client.document("Shift Type", &name).await {
                Ok(document) => document["last_sync_of_checkin"]
                    .as_str()
                    .and_then(site_time),
                Err(error) => {
                    notes.push(cannot_set(&name, &error));
                    continue;
                }
            };
            if let Some(current) = current.filter(|current| *current >= watermark) {
                self.state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .set
                    .insert(name.clone(), current);
                notes.push(format!(
                    "Shift Type '{name}': the site already has checkins complete up to {}; left as it is",
                    wall_time_text(current)
                ));
                continue;
            }
            let text = wall_time_text(watermark);
            match client
                .update(
                    "Shift Type",
                    &name,
                    &json!({ "last_sync_of_checkin": text }),
                )
                .await
            {
                Ok(()) => {
                    self.state
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .set
                        .insert(name.clone(), watermark);
                    notes.push(format!(
                        "Shift Type '{name}': checkins complete up to {text}"
                    ));
                }
                Err(error) => notes.push(cannot_set(&name, &error)),
            }
        }
        notes
    }
}

/// `2026-12-31 23:00:00`, with or without a fraction of a second, as Frappe stores it.
fn site_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text.get(..19)?, crate::punch::WALL_TIME_FORMAT).ok()
}

fn cannot_set(name: &str, error: &CallError) -> String {
    let hint = match error {
        CallError::Answer(answer) if answer.status == 403 => {
            " — setting it needs the HR Manager role for the API user"
        }
        CallError::Answer(answer) if answer.status == 404 => {
            " — check the name in [[sink.frappe.shift_type]]"
        }
        _ => "",
    };
    format!(
        "Shift Type '{name}': cannot set last_sync_of_checkin: {}{hint}",
        error.describe()
    )
}
