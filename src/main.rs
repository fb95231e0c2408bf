//! `iclock-sync`: parse the command line, set up logging, run the command.

use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

use iclock_sync::cli::{Cli, Command};
use iclock_sync::exit::Exit;
use iclock_sync::output::Output;
use iclock_sync::{commands, config};

fn main() -> ExitCode {
    let cli = Cli::parse_checked();
    // Before logging starts, so that RUST_LOG may come from .env too.
    let dotenv = config::load_dotenv();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let output = Output::from_cli(&cli);
    if let Err(error) = dotenv {
        return output.error(&error.to_string(), Exit::Configuration).into();
    }
    let exit = runtime.block_on(async {
        match cli.command {
            None => commands::sync::run(cli.config, &cli.sync, &output).await,
            Some(Command::BuildCache) => commands::build_cache::run(cli.config, &output),
            Some(Command::Devices) => commands::devices::run(cli.config, &output).await,
            Some(Command::Demo(args)) => commands::demo::run(&args, &output).await,
            Some(Command::Simulate(simulator)) => commands::simulate::run(simulator).await,
        }
    });
    exit.into()
}

fn init_logging(cli: &Cli) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "warn,iclock_sync=info",
        (false, 1) => "info,iclock_sync=debug",
        (false, _) => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
