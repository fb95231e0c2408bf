//! Opening the ledger for the commands that read it (`status`, `punches`) or change
//! it (`retry`, `backfill`), from the configuration's `[sync] cache_dir`. They run
//! beside a sync in progress: SQLite's WAL lets them read while it writes, and their
//! few writes wait for its transactions.

use std::path::PathBuf;

use crate::config::{self, Environment, LoadOptions};
use crate::exit::Exit;
use crate::ledger::{LEDGER_FILE_NAME, SqliteLedger};
use crate::output::Output;

/// Opens the ledger (for looking only when `read_only`), does `work` with it and
/// closes it again; when it cannot be opened, the error has been printed and the exit
/// code is returned.
pub async fn with<T>(
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
    read_only: bool,
    work: impl AsyncFnOnce(&SqliteLedger) -> T,
) -> Result<T, Exit> {
    let ledger = open(config_path, environment, output, read_only).await?;
    let done = work(&ledger).await;
    ledger.close().await;
    Ok(done)
}

async fn open(
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
    read_only: bool,
) -> Result<SqliteLedger, Exit> {
    let options = LoadOptions {
        path: config_path,
        dry_run: true,
    };
    let settings = config::load_settings(&options, environment)
        .map_err(|error| output.error(&error.to_string(), Exit::Configuration))?;
    let path = settings.cache_dir.join(LEDGER_FILE_NAME);
    if !path.exists() {
        return Err(output.error(
            &format!(
                "there is no ledger at {} yet — run a sync first (`iclock-sync`), or check cache_dir in [sync]",
                path.display()
            ),
            Exit::Incomplete,
        ));
    }
    SqliteLedger::open(&path, read_only)
        .await
        .map_err(|error| output.error(&error.to_string(), Exit::Configuration))
}
