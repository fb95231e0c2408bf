//! `iclock-sync status`: how things stand, from the ledger — per device its last
//! contact, last error and cursor; per sink what it took today, what waits for it
//! (and when a failed punch is tried again), what it refused and why; the quarantine;
//! the last cycles. `--json` gives the same to monitoring.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;
use serde_json::Value;

use crate::config::Environment;
use crate::exit::Exit;
use crate::ledger::{DeviceStanding, Ledger, SinkStanding};
use crate::output::Output;
use crate::report::text::thousands;

/// Cycles listed.
const CYCLES: usize = 10;
/// The newest commands looked at for those still waiting.
const COMMANDS_LOOKED_AT: usize = 1000;

#[derive(Debug, Serialize)]
struct Status {
    ledger: String,
    devices: Vec<DeviceStanding>,
    sinks: Vec<SinkStanding>,
    quarantined: u64,
    cycles: Vec<Value>,
    /// Commands queued for pushing terminals and not yet answered, by serial.
    commands_waiting: BTreeMap<String, u64>,
}

pub async fn run(config_path: Option<PathBuf>, environment: &Environment, output: &Output) -> Exit {
    let status = match super::ledger::with(config_path, environment, output, true, async |ledger| {
        gather(ledger).await
    })
    .await
    {
        Ok(status) => status,
        Err(exit) => return exit,
    };
    let status = match status {
        Ok(status) => status,
        Err(error) => return output.error(&error.to_string(), Exit::Incomplete),
    };
    if output.json {
        output.json_line(&status);
    } else {
        output.say(render(&status).trim_end());
    }
    Exit::Success
}

async fn gather(ledger: &dyn Ledger) -> Result<Status, crate::ledger::LedgerError> {
    Ok(Status {
        ledger: ledger.location(),
        devices: ledger.device_standings().await?,
        sinks: ledger.sink_standings().await?,
        quarantined: ledger.quarantine_count().await?,
        cycles: ledger.cycles(CYCLES).await?,
        commands_waiting: ledger
            .commands(None, COMMANDS_LOOKED_AT)
            .await?
            .into_iter()
            .filter(|command| command.result_at.is_none())
            .fold(BTreeMap::new(), |mut waiting, command| {
                *waiting.entry(command.serial).or_insert(0) += 1;
                waiting
            }),
    })
}

fn render(status: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Ledger {}\n", status.ledger);
    let _ = writeln!(out, "Devices");
    if status.devices.is_empty() && status.commands_waiting.is_empty() {
        let _ = writeln!(out, "  none read yet");
    }
    for device in &status.devices {
        // A pushing terminal is not read: its last contact is what it did last.
        let (what, when) = match device
            .facts
            .as_ref()
            .and_then(|facts| facts.get("last_contact"))
        {
            Some(contact) if device.kind == "adms" => ("last contact", contact.as_str()),
            _ => ("last read", device.last_read_at.as_deref()),
        };
        let _ = writeln!(
            out,
            "  {} ({}, {}): {what} {}",
            device.name,
            device.kind,
            device.location,
            when.unwrap_or("never"),
        );
        if let Some(error) = &device.last_error {
            let _ = writeln!(
                out,
                "    last error ({}): {error}",
                device.last_error_at.as_deref().unwrap_or("?")
            );
        }
        if let Some(cursor) = &device.cursor {
            let _ = writeln!(out, "    cursor: {}", compact(cursor));
        }
        if let Some(facts) = &device.facts {
            let _ = writeln!(out, "    known: {}", compact(facts));
            if let Some(serial) = facts.get("serial").and_then(Value::as_str)
                && let Some(waiting) = status.commands_waiting.get(serial)
            {
                let _ = writeln!(
                    out,
                    "    commands: {waiting} waiting (`iclock-sync adms commands {serial}`)"
                );
            }
        }
    }
    // Commands for terminals that have not been recorded yet.
    for (serial, waiting) in &status.commands_waiting {
        let recorded = status.devices.iter().any(|device| {
            device
                .facts
                .as_ref()
                .and_then(|facts| facts.get("serial"))
                .and_then(Value::as_str)
                == Some(serial.as_str())
        });
        if !recorded {
            let _ = writeln!(
                out,
                "  terminal {serial}: commands: {waiting} waiting (`iclock-sync adms commands {serial}`)"
            );
        }
    }
    let _ = writeln!(out, "\nSinks");
    for sink in &status.sinks {
        let _ = writeln!(
            out,
            "  {} ({}): {} delivered today; {} waiting",
            sink.name,
            sink.target,
            thousands(sink.delivered_today),
            thousands(sink.pending + sink.failing)
        );
        if sink.failing > 0 {
            let _ = writeln!(
                out,
                "    failing: {} (next retry {})",
                thousands(sink.failing),
                sink.next_retry.as_deref().unwrap_or("at the next cycle")
            );
        }
        if sink.rejected + sink.unmapped > 0 {
            let _ = writeln!(
                out,
                "    refused: {} rejected, {} unmapped — fix them at the sink, then `iclock-sync retry --sink {}`",
                thousands(sink.rejected),
                thousands(sink.unmapped),
                sink.name
            );
        }
        for (reason, count) in &sink.top_reasons {
            let _ = writeln!(out, "      {} × {reason}", thousands(*count));
        }
        if !sink.unmapped_pins.is_empty() {
            let pins: Vec<String> = sink
                .unmapped_pins
                .iter()
                .map(|(pin, count)| format!("{pin} ({count})"))
                .collect();
            let _ = writeln!(out, "    unmapped PINs: {}", pins.join(", "));
        }
    }
    let _ = writeln!(
        out,
        "\nQuarantine: {} record(s) refused before any sink",
        thousands(status.quarantined)
    );
    let _ = writeln!(out, "\nLast cycles");
    if status.cycles.is_empty() {
        let _ = writeln!(out, "  none yet");
    }
    for cycle in &status.cycles {
        let delivered: u64 = cycle["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|device| device["delivered"].as_u64())
            .sum();
        let new: u64 = cycle["devices"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|device| device["new"].as_u64())
            .sum();
        let _ = writeln!(
            out,
            "  {}  exit {}  {} new, {} delivered  {} ms{}",
            cycle["started_at"].as_str().unwrap_or("?"),
            cycle["exit_code"],
            thousands(new),
            thousands(delivered),
            cycle["duration_ms"],
            match cycle["problems"].as_array().map(Vec::len) {
                Some(0) | None => String::new(),
                Some(problems) => format!("  {problems} problem(s)"),
            }
        );
    }
    out
}

/// A JSON value on one line, cut to a readable length.
fn compact(value: &Value) -> String {
    crate::device_text::excerpt(&value.to_string(), 200)
}
