//! The summary a person reads after each cycle: one line of verdict, a device table, a
//! sink table, and where the files are. Errors are spelled out under the tables in full,
//! because they carry the fix.

use std::fmt::Write;

use super::CycleReport;
use crate::duration;

/// How many dry-run punches are listed (all of them with `-v`).
const PREVIEW_LINES: usize = 20;

pub fn render(report: &CycleReport, verbose: bool) -> String {
    let mut out = String::new();
    let took = duration::display(std::time::Duration::from_millis(report.duration_ms));
    let _ = writeln!(out, "{}", verdict(report, &took));

    let mut rows = Vec::new();
    for device in &report.devices {
        let status = match (&device.error, device.interrupted) {
            (Some(error), _) => format!("FAILED ({})", error.kind),
            (None, true) => "interrupted".to_owned(),
            (None, false) if device.not_delivered > 0 => {
                format!(
                    "not all delivered ({} waiting)",
                    thousands(device.not_delivered)
                )
            }
            // A terminal that pushes is not read: what it sent is counted as delivered.
            (None, false) if device.kind == "adms" && device.delivered > 0 => format!(
                "ok: {} pushed punch(es) delivered",
                thousands(device.delivered)
            ),
            (None, false) => "ok".to_owned(),
        };
        rows.push(vec![
            device.name.clone(),
            device.kind.clone(),
            thousands(device.fetched),
            thousands(device.new),
            thousands(device.already),
            thousands(device.quarantined),
            status,
        ]);
    }
    let new_header = if report.dry_run {
        "Would upload"
    } else {
        "New"
    };
    out.push('\n');
    table(
        &mut out,
        &[
            "Device",
            "Kind",
            "Fetched",
            new_header,
            "Already",
            "Quarantined",
            "Status",
        ],
        &rows,
    );

    if !report.sinks.is_empty() {
        sink_table(&mut out, report);
    }

    let errors: Vec<String> = report
        .devices
        .iter()
        .filter_map(|device| device.error.as_ref().map(|error| error.message.clone()))
        .chain(report.sinks.iter().filter_map(|sink| {
            sink.down.clone().or_else(|| {
                sink.last_failure
                    .as_ref()
                    .map(|failure| format!("sink {} ({}): {failure}", sink.name, sink.target))
            })
        }))
        .chain(report.problems.iter().cloned())
        .collect();
    if !errors.is_empty() {
        out.push('\n');
        for error in errors {
            let _ = writeln!(out, "  error: {error}");
        }
    }
    let notes: Vec<String> = report
        .devices
        .iter()
        .filter_map(|device| {
            device
                .note
                .as_ref()
                .map(|note| format!("  {}: {note}", device.name))
        })
        .chain(report.sinks.iter().flat_map(sink_notes))
        .collect();
    if !notes.is_empty() {
        out.push('\n');
        out.push_str(&notes.join("\n"));
        out.push('\n');
    }

    if report.dry_run && report.would_upload > 0 {
        out.push('\n');
        let shown = if verbose {
            report.preview.len()
        } else {
            PREVIEW_LINES
        };
        for row in report.preview.iter().take(shown) {
            let _ = writeln!(
                out,
                "  would upload  {}  user {:>8}  {}  state {:>3}  verify {:>3}  id {}",
                row.device, row.user_id, row.local_time, row.state, row.verify_mode, row.id
            );
        }
        let listed = report.preview.len().min(shown) as u64;
        if report.would_upload > listed {
            let _ = writeln!(
                out,
                "  … and {} more (-v lists up to {}; --json gives them as data)",
                thousands(report.would_upload - listed),
                report.preview.len()
            );
        }
    }

    out.push('\n');
    if let Some(audit) = &report.audit_file {
        let _ = writeln!(
            out,
            "  audit file:  {audit} ({} punches)",
            thousands(report.audit_entries as u64)
        );
    }
    let newly: u64 = report
        .devices
        .iter()
        .map(|device| device.newly_quarantined)
        .sum();
    if newly > 0 {
        let _ = writeln!(
            out,
            "  quarantine:  {} new record(s) refused, reasons in {}",
            thousands(newly),
            report.quarantine_file
        );
    }
    if !report.ledger_file.is_empty() {
        let _ = writeln!(out, "  ledger:      {}", report.ledger_file);
    }
    let _ = writeln!(
        out,
        "  dedup cache: {} ({} IDs)",
        report.cache_file,
        thousands(report.cache_size as u64)
    );
    out
}

/// Punches still waiting for some sink after the cycle.
fn waiting(report: &CycleReport) -> u64 {
    let by_device: u64 = report
        .devices
        .iter()
        .map(|device| device.not_delivered)
        .sum();
    let by_sink = report
        .sinks
        .iter()
        .map(|sink| sink.pending)
        .max()
        .unwrap_or(0);
    by_device.max(by_sink)
}

/// The sink table; the Skipped and Unmapped columns only when some sink has them.
fn sink_table(out: &mut String, report: &CycleReport) {
    let skipped = report.sinks.iter().any(|sink| sink.skipped > 0);
    let unmapped = report.sinks.iter().any(|sink| sink.unmapped > 0);
    let mut headers = vec!["Sink", "Delivered", "Already"];
    if skipped {
        headers.push("Skipped");
    }
    headers.push("Rejected");
    if unmapped {
        headers.push("Unmapped");
    }
    headers.push("Failed");
    let pending = report.sinks.iter().any(|sink| sink.pending > 0);
    if pending {
        headers.push("Waiting");
    }
    let rows: Vec<Vec<String>> = report
        .sinks
        .iter()
        .map(|sink| {
            let mut row = vec![
                format!("{} ({})", sink.name, sink.target),
                thousands(sink.delivered),
                thousands(sink.already),
            ];
            if skipped {
                row.push(thousands(sink.skipped));
            }
            row.push(thousands(sink.rejected));
            if unmapped {
                row.push(thousands(sink.unmapped));
            }
            row.push(thousands(sink.failed));
            if pending {
                row.push(thousands(sink.pending));
            }
            row
        })
        .collect();
    out.push('\n');
    table(out, &headers, &rows);
}

/// How many unmapped PINs are named in the summary (`--json` has them all).
const UNMAPPED_SHOWN: usize = 20;

fn sink_notes(sink: &super::SinkReport) -> Vec<String> {
    let mut notes = Vec::new();
    if !sink.unmapped_users.is_empty() {
        let shown: Vec<&str> = sink
            .unmapped_users
            .iter()
            .take(UNMAPPED_SHOWN)
            .map(String::as_str)
            .collect();
        let more = sink.unmapped_users.len().saturating_sub(UNMAPPED_SHOWN);
        let more = if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        };
        notes.push(format!(
            "  {}: no employee for PIN(s) {}{more} — map them in {} (see the quarantine file)",
            sink.name,
            shown.join(", "),
            sink.target
        ));
    }
    notes.extend(
        sink.notes
            .iter()
            .map(|note| format!("  {}: {note}", sink.name)),
    );
    notes
}

fn verdict(report: &CycleReport, took: &str) -> String {
    let failed = report
        .devices
        .iter()
        .filter(|device| device.error.is_some())
        .count();
    let not_delivered = waiting(report);
    let refused: u64 = report.devices.iter().map(|d| d.rejected).sum();
    let mut line = if report.dry_run {
        format!(
            "Dry run in {took}: {} punch(es) would be uploaded; nothing was written.",
            thousands(report.would_upload)
        )
    } else {
        let mut line = if report.recorded || report.delivered() == 0 {
            format!(
                "Sync finished in {took}: {} new punch(es) delivered.",
                thousands(report.delivered())
            )
        } else {
            format!(
                "Sync finished in {took}: {} punch(es) written but not recorded in the ledger (see below); they are sent again next cycle.",
                thousands(report.delivered())
            )
        };
        if report.already_in_sinks() > 0 {
            let _ = write!(
                line,
                " {} were already in the sinks.",
                thousands(report.already_in_sinks())
            );
        }
        line
    };
    if not_delivered > 0 {
        let _ = write!(
            line,
            " {} wait for a sink (retried next run).",
            thousands(not_delivered)
        );
    }
    if refused > 0 {
        let _ = write!(
            line,
            " {} refused by a sink (reasons in the quarantine file).",
            thousands(refused)
        );
    }
    if failed > 0 {
        let _ = write!(line, " {failed} device(s) failed (see below).");
    }
    if report.interrupted {
        line.push_str(" Interrupted: the rest is read next run.");
    }
    line
}

fn table(out: &mut String, headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers
        .iter()
        .map(|header| header.chars().count())
        .collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        out.push(' ');
        for (index, cell) in cells.iter().enumerate() {
            let numeric = index > 0
                && !cell.is_empty()
                && cell.chars().all(|c| c.is_ascii_digit() || c == ',');
            let pad = " ".repeat(widths[index].saturating_sub(cell.chars().count()));
            out.push(' ');
            if numeric {
                out.push_str(&pad);
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&pad);
            }
            out.push(' ');
        }
        while out.ends_with(' ') {
            out.pop();
        }
        out.push('\n');
    };
    line(out, headers.to_vec());
    for row in rows {
        line(out, row.iter().map(String::as_str).collect());
    }
}

/// The summary with what failed in red (and what is incomplete in yellow), for a
/// terminal that shows colour.
pub fn paint(text: &str) -> String {
    const RED: &str = "\x1b[31m";
    const YELLOW: &str = "\x1b[33m";
    const RESET: &str = "\x1b[0m";
    text.lines()
        .map(|line| {
            if let Some(at) = line.find("FAILED (") {
                format!("{}{RED}{}{RESET}", &line[..at], &line[at..])
            } else if let Some(at) = line.find("not all delivered") {
                format!("{}{YELLOW}{}{RESET}", &line[..at], &line[at..])
            } else if let Some(rest) = line.strip_prefix("  error:") {
                format!("  {RED}error:{RESET}{rest}")
            } else {
                line.to_owned()
            }
        })
        .map(|line| line + "\n")
        .collect()
}

/// `1234567` → `1,234,567`.
pub fn thousands(number: u64) -> String {
    let digits = number.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DeviceReport, ReportedError, SinkReport};

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }

    #[test]
    fn the_summary_names_devices_sinks_and_errors() {
        let report = CycleReport {
            duration_ms: 1500,
            recorded: true,
            devices: vec![
                DeviceReport {
                    name: "Head office".into(),
                    kind: "biotime".into(),
                    fetched: 1234,
                    new: 1200,
                    already: 34,
                    delivered: 1200,
                    ..DeviceReport::default()
                },
                DeviceReport {
                    name: "Branch".into(),
                    kind: "biotime".into(),
                    error: Some(ReportedError {
                        kind: "unreachable",
                        message: "device 'Branch' (http://10.0.0.9): cannot connect".into(),
                    }),
                    ..DeviceReport::default()
                },
            ],
            sinks: vec![SinkReport {
                name: "sqlite".into(),
                target: "output/attendance.db".into(),
                delivered: 1200,
                ..SinkReport::default()
            }],
            cache_file: "cache/uploaded_ids_cache.json".into(),
            cache_size: 5000,
            ..CycleReport::default()
        };
        let text = render(&report, false);
        assert!(
            text.starts_with(
                "Sync finished in 1.5 s: 1,200 new punch(es) delivered. 1 device(s) failed"
            ),
            "{text}"
        );
        assert!(text.contains("Head office  biotime    1,234"), "{text}");
        assert!(text.contains("FAILED (unreachable)"), "{text}");
        assert!(
            text.contains("error: device 'Branch' (http://10.0.0.9): cannot connect"),
            "{text}"
        );
        assert!(text.contains("sqlite (output/attendance.db)"), "{text}");
        assert!(!text.contains("Unmapped"), "{text}");
        assert!(text.contains("(5,000 IDs)"), "{text}");
    }

    #[test]
    fn unmapped_pins_and_sink_notes_are_listed() {
        let report = CycleReport {
            sinks: vec![SinkReport {
                name: "frappe".into(),
                target: "https://hr.example.com".into(),
                delivered: 7,
                unmapped: 3,
                unmapped_users: vec!["9001".into(), "9002".into()],
                notes: vec!["Shift Type 'Day' synced up to 2026-03-02 18:00:00".into()],
                ..SinkReport::default()
            }],
            ..CycleReport::default()
        };
        let text = render(&report, false);
        assert!(text.contains("Unmapped"), "{text}");
        assert!(
            text.contains(
                "frappe: no employee for PIN(s) 9001, 9002 — map them in https://hr.example.com"
            ),
            "{text}"
        );
        assert!(text.contains("frappe: Shift Type 'Day' synced"), "{text}");
    }
}
