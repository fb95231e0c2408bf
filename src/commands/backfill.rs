//! `iclock-sync backfill SINK --since 365d`: offer a sink the punches read before it
//! was added (a new sink gets `[ledger] backfill`, 30 days by default, on its own).
//! Only punches still in the ledger can be offered; the sink's insert-if-absent keeps
//! what it has from arriving twice.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use clap::Args;

use crate::config::Environment;
use crate::exit::Exit;
use crate::ledger::Ledger;
use crate::output::Output;

#[derive(Debug, Clone, Args)]
pub struct BackfillArgs {
    /// The sink to fill: sqlite, firestore or frappe.
    pub sink: String,
    /// How far back: DAYS days (fractions allowed, or `12h`, `365d`).
    #[arg(long, value_name = "DAYS", value_parser = crate::cli::parse_days)]
    pub since: Duration,
}

pub async fn run(
    args: &BackfillArgs,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    super::ledger::with(config_path, environment, output, false, async |ledger| {
        backfill(ledger, args, output).await
    })
    .await
    .unwrap_or_else(|exit| exit)
}

async fn backfill(ledger: &dyn Ledger, args: &BackfillArgs, output: &Output) -> Exit {
    if let Err(exit) = known_sink(ledger, &args.sink, output).await {
        return exit;
    }
    let since = chrono::Duration::from_std(args.since)
        .map(|since| Utc::now() - since)
        .unwrap_or(chrono::DateTime::<Utc>::MIN_UTC);
    match ledger.backfill(&args.sink, since).await {
        Ok(queued) => {
            if output.json {
                output.json_line(&serde_json::json!({ "queued": queued }));
            } else {
                output.say(&format!(
                    "Queued {queued} punch(es) read since {} for sink {} (those it had settled already are left as they are); the next sync sends them.",
                    since.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M"),
                    args.sink
                ));
            }
            Exit::Success
        }
        Err(error) => output.error(&error.to_string(), Exit::Incomplete),
    }
}

/// Checks that `sink` is one the ledger drains; the error lists those it knows.
pub(super) async fn known_sink(
    ledger: &dyn Ledger,
    sink: &str,
    output: &Output,
) -> Result<(), Exit> {
    let standings = ledger
        .sink_standings()
        .await
        .map_err(|error| output.error(&error.to_string(), Exit::Incomplete))?;
    if standings.iter().any(|standing| standing.name == sink) {
        return Ok(());
    }
    let known: Vec<&str> = standings
        .iter()
        .map(|standing| standing.name.as_str())
        .collect();
    Err(output.error(
        &format!(
            "no sink '{sink}' is configured — the ledger drains {}; use one of those names (the NAME of [sink.NAME])",
            if known.is_empty() { "none yet".to_owned() } else { known.join(", ") }
        ),
        Exit::Configuration,
    ))
}
