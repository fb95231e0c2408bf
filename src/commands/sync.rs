//! `iclock-sync [--dry-run] [--since N] [--loop INTERVAL]`: the main job.

use std::path::PathBuf;

use crate::cli::SyncArgs;
use crate::commands::signals;
use crate::config::{Config, Environment};
use crate::exit::Exit;
use crate::output::Output;
use crate::sync::Engine;

pub async fn run(
    config_path: Option<PathBuf>,
    environment: &Environment,
    args: &SyncArgs,
    output: &Output,
) -> Exit {
    match super::load_config(config_path, environment, args.dry_run, output) {
        Ok(config) => run_with(&config, args, output).await,
        Err(exit) => exit,
    }
}

/// Runs the sync with an already loaded configuration (also used by `demo`).
pub async fn run_with(config: &Config, args: &SyncArgs, output: &Output) -> Exit {
    let mut engine = match Engine::open(config, args.dry_run).await {
        Ok(engine) => engine,
        Err(error) => return output.error(&error.to_string(), error.exit()),
    };
    let shutdown = signals::stop_on_signals();
    let observer = output.observer();
    let exit = match args.every {
        None => {
            let report = engine
                .run_cycle(args.since, None, &shutdown, &observer)
                .await;
            report.exit()
        }
        Some(interval) => {
            super::serve::run_loop(
                &mut engine,
                interval,
                args.since,
                shutdown,
                &observer,
                None,
                None,
            )
            .await;
            Exit::Success
        }
    };
    engine.close().await;
    exit
}
