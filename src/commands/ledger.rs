//! Opening the ledger for the commands that read it (`status`, `punches`) or change
//! it (`retry`, `backfill`), from the configuration's `[sync] cache_dir`. They run
//! beside a sync in progress: SQLite's WAL lets them read while it writes, and their
//! few writes wait for its transactions.

use std::path::PathBuf;

use crate::config::{self, Environment, LoadOptions};
use crate::exit::Exit;
use crate::ledger::{LEDGER_FILE_NAME, SqliteLedger};
use crate::output::Output;

/// Opens the ledger (for looking only when `read_only`); on failure, the error has
/// been printed and the exit code is returned.
pub async fn open(
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
