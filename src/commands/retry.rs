//! `iclock-sync retry`: queue punches again for a sink now — the fix for "I mapped PIN
//! 1009 in Frappe, send its punches" (`retry --unmapped --pin 1009`), or for a sink
//! back from an outage that should not wait for its pause (`retry --failed`). The next
//! sync sends them; the sink's insert-if-absent keeps anything from arriving twice.

use std::path::PathBuf;
use std::time::Duration;

use chrono::Utc;
use clap::Args;

use crate::config::Environment;
use crate::exit::Exit;
use crate::ledger::{Ledger, RetryFilter};
use crate::output::Output;

#[derive(Debug, Clone, Args)]
pub struct RetryArgs {
    /// Only this sink's punches (sqlite, firestore, frappe); all sinks by default.
    #[arg(long, value_name = "NAME")]
    pub sink: Option<String>,
    /// Punches the sink found nobody for (their PIN was not mapped).
    #[arg(long)]
    pub unmapped: bool,
    /// Punches the sink refused (e.g. an inactive employee).
    #[arg(long)]
    pub rejected: bool,
    /// Punches that failed and wait for their next attempt: now instead.
    #[arg(long)]
    pub failed: bool,
    /// Only this PIN's punches.
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,
    /// Only punches read in the last DAYS days (fractions allowed, or `12h`).
    #[arg(long, value_name = "DAYS", value_parser = crate::cli::parse_days)]
    pub since: Option<Duration>,
}

pub async fn run(
    args: &RetryArgs,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    super::ledger::with(config_path, environment, output, false, async |ledger| {
        retry(ledger, args, output).await
    })
    .await
    .unwrap_or_else(|exit| exit)
}

async fn retry(ledger: &dyn Ledger, args: &RetryArgs, output: &Output) -> Exit {
    if let Some(sink) = &args.sink
        && let Err(exit) = super::backfill::known_sink(ledger, sink, output).await
    {
        return exit;
    }
    let filter = RetryFilter {
        sink: args.sink.clone(),
        rejected: args.rejected,
        unmapped: args.unmapped,
        failed: args.failed,
        pin: args.pin.clone(),
        since: args
            .since
            .and_then(|since| chrono::Duration::from_std(since).ok())
            .map(|since| Utc::now() - since),
        reason: None,
    };
    match ledger.retry(&filter).await {
        Ok(queued) => {
            if output.json {
                output.json_line(&serde_json::json!({ "queued": queued }));
            } else {
                let which = match (&args.sink, &args.pin) {
                    (Some(sink), Some(pin)) => format!(" for sink {sink}, PIN {pin}"),
                    (Some(sink), None) => format!(" for sink {sink}"),
                    (None, Some(pin)) => format!(" for PIN {pin}"),
                    (None, None) => String::new(),
                };
                output.say(&if queued == 0 {
                    format!("Nothing to retry{which}: no punch is refused, unmapped or failed there.")
                } else {
                    format!(
                        "Queued {queued} punch(es){which}; the next sync sends them (run `iclock-sync` now, or wait for the loop)."
                    )
                });
            }
            Exit::Success
        }
        Err(error) => output.error(&error.to_string(), Exit::Incomplete),
    }
}
