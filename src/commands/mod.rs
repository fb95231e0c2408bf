//! One module per subcommand; each returns the process's [`crate::exit::Exit`].

pub mod adms;
pub mod backfill;
pub mod build_cache;
pub mod credentials;
pub mod db;
pub mod demo;
pub mod devices;
pub mod init;
mod ledger;
pub mod punches;
pub mod retry;
pub mod serve;
pub mod signals;
pub mod simulate;
pub mod status;
pub mod sync;
pub mod user_control;

use std::path::PathBuf;

use crate::config::{self, Config, Environment, LoadOptions};
use crate::exit::Exit;
use crate::output::Output;

/// The configuration, or the exit (code 2) after saying what is wrong with it.
fn load_config(
    path: Option<PathBuf>,
    environment: &Environment,
    dry_run: bool,
    output: &Output,
) -> Result<Config, Exit> {
    config::load(&LoadOptions { path, dry_run }, environment)
        .map_err(|error| output.error(&error.to_string(), Exit::Configuration))
}
