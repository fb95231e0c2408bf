//! `iclock-sync devices`: can we reach each device, do the credentials work, how many
//! punches does it hold, and is its clock right — the first thing to run on a new setup.

use std::path::PathBuf;

use serde::Serialize;

use crate::config::Environment;
use crate::duration;
use crate::exit::Exit;
use crate::ledger::{LEDGER_FILE_NAME, Ledger, SqliteLedger};
use crate::output::Output;
use crate::punch::WALL_TIME_FORMAT;
use crate::report::ReportedError;
use crate::report::text::thousands;
use crate::sink::frappe::FrappeConfig;
use crate::source::{DeviceCheck, DeviceConfig};
use crate::user_control::Target;

#[derive(Debug, Serialize)]
struct DeviceStatus {
    name: String,
    kind: String,
    location: String,
    enabled: bool,
    reachable: bool,
    auth_ok: Option<bool>,
    punches: Option<u64>,
    device_clock: Option<String>,
    timezone: String,
    clock_drift_seconds: Option<i64>,
    facts: Vec<(String, String)>,
    error: Option<ReportedError>,
}

pub async fn run(config_path: Option<PathBuf>, environment: &Environment, output: &Output) -> Exit {
    let config = match super::load_config(config_path, environment, true, output) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let mut exit = Exit::Success;
    let device_control = config
        .sink::<FrappeConfig>()
        .is_some_and(|frappe| frappe.user_control.contains(&Target::Device));
    // What `serve` recorded of the terminals that push (they cannot be called).
    let ledger_path = config.sync.cache_dir.join(LEDGER_FILE_NAME);
    let ledger = if ledger_path.exists() {
        SqliteLedger::open(&ledger_path, true).await.ok()
    } else {
        None
    };
    let ledger = ledger.as_ref();
    let adms = config.adms.as_ref();
    let checks = config.devices.iter().map(|device| async move {
        if !device.enabled {
            return status(device, String::new(), DeviceCheck::default());
        }
        if let Some(serial) = device.source.pushes() {
            let mut check = crate::adms::check::check(
                ledger.map(|ledger| ledger as &dyn Ledger),
                adms,
                &device.name,
                serial,
            )
            .await;
            if device_control {
                check
                    .facts
                    .push(("user control".into(), user_control(device)));
            }
            return status(device, device.location(), check);
        }
        match device.open(None) {
            Ok(mut source) => {
                let mut check = source.check().await;
                if device_control {
                    check
                        .facts
                        .push(("user control".into(), user_control(device)));
                }
                status(device, source.location(), check)
            }
            Err(error) => status(
                device,
                String::new(),
                DeviceCheck {
                    error: Some(error),
                    ..DeviceCheck::default()
                },
            ),
        }
    });
    let statuses = futures::future::join_all(checks).await;
    if let Some(ledger) = ledger {
        ledger.close().await;
    }
    for device in &statuses {
        if let Some(error) = &device.error {
            exit = exit.max(if error.needs_a_person() {
                Exit::Configuration
            } else {
                Exit::Incomplete
            });
        }
    }
    if output.json {
        output.json_line(&serde_json::json!({ "devices": statuses, "exit_code": exit.code() }));
    } else {
        for device in &statuses {
            print!("{}", render(device));
        }
    }
    exit
}

/// Whether `user_control = ["device"]` can act on this device.
fn user_control(device: &DeviceConfig) -> String {
    match device.source.user_control() {
        Ok(how) => format!("users are switched on and off here ({how})"),
        Err(why) => format!("not possible: {why}"),
    }
}

fn status(device: &DeviceConfig, location: String, check: DeviceCheck) -> DeviceStatus {
    let (name, kind, enabled) = (device.name.clone(), device.kind(), device.enabled);
    let timezone = device.timezone.name().to_owned();
    DeviceStatus {
        name,
        kind: kind.to_owned(),
        location,
        enabled,
        reachable: check.reachable,
        auth_ok: check.auth_ok,
        punches: check.punches,
        device_clock: check
            .device_clock
            .map(|clock| clock.format(WALL_TIME_FORMAT).to_string()),
        timezone,
        clock_drift_seconds: check.clock_drift.map(|drift| drift.num_seconds()),
        facts: check.facts,
        error: check.error.as_ref().map(ReportedError::from),
    }
}

/// How far the device's clock is from this computer's, in words; an offset of whole
/// quarter-hours beyond half an hour is a time zone set wrong far more often than a
/// clock that drifted, so it says so.
fn clock_verdict(drift: i64, timezone: &str) -> String {
    if drift.abs() <= 2 {
        return "in step with this computer".to_owned();
    }
    let direction = if drift > 0 { "ahead of" } else { "behind" };
    let amount = duration::display(std::time::Duration::from_secs(drift.unsigned_abs()));
    let quarter_hours = (drift.abs() + 450) / 900;
    let zone_like = drift.abs() >= 1800 && (drift.abs() - quarter_hours * 900).abs() <= 120;
    if zone_like {
        format!(
            "{amount} {direction} this computer — a whole number of hours usually means a wrong time zone: check timezone in its [[device]] (now {timezone}) and the zone set on the device itself"
        )
    } else {
        format!("{amount} {direction} this computer")
    }
}

fn render(device: &DeviceStatus) -> String {
    let mut lines = vec![format!(
        "{} ({}{})",
        device.name,
        device.kind,
        if device.location.is_empty() {
            String::new()
        } else {
            format!(", {}", device.location)
        }
    )];
    let mut row = |label: &str, value: String| lines.push(format!("  {label:<14} {value}"));
    if !device.enabled {
        row(
            "status",
            "disabled in the configuration (enabled = false)".into(),
        );
        return lines.join("\n") + "\n\n";
    }
    row(
        "reachable",
        if device.reachable {
            "yes".into()
        } else {
            "NO".into()
        },
    );
    match device.auth_ok {
        Some(true) => row("credentials", "ok".into()),
        Some(false) => row("credentials", "REFUSED".into()),
        None => {}
    }
    if let Some(punches) = device.punches {
        row("punches", format!("{} on the server", thousands(punches)));
    }
    if let (Some(clock), Some(drift)) = (&device.device_clock, device.clock_drift_seconds) {
        row(
            "clock",
            format!(
                "{clock} {} ({})",
                device.timezone,
                clock_verdict(drift, &device.timezone)
            ),
        );
    }
    for (label, value) in &device.facts {
        row(label, value.clone());
    }
    if let Some(error) = &device.error {
        let kind = if error.needs_a_person() {
            "fix needed"
        } else {
            "error"
        };
        row(kind, error.message.clone());
    }
    lines.join("\n") + "\n\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_offset_of_whole_hours_points_at_the_time_zone() {
        assert_eq!(clock_verdict(1, "UTC"), "in step with this computer");
        assert!(
            clock_verdict(40, "UTC").starts_with("40"),
            "{}",
            clock_verdict(40, "UTC")
        );
        let five_hours = clock_verdict(-18_000 - 30, "Asia/Kolkata");
        assert!(
            five_hours.contains(
                "behind this computer — a whole number of hours usually means a wrong time zone"
            ),
            "{five_hours}"
        );
        assert!(five_hours.contains("now Asia/Kolkata"), "{five_hours}");
        let drifted = clock_verdict(2_500, "UTC");
        assert!(!drifted.contains("time zone"), "{drifted}");
    }
}
