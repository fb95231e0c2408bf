//! `iclock-sync`: parse the command line, set up logging, run the command.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::CommandFactory;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

use iclock_sync::cli::{Cli, Command};
use iclock_sync::commands;
use iclock_sync::config::{Environment, LoadOptions};
use iclock_sync::exit::Exit;
use iclock_sync::output::Output;

fn main() -> ExitCode {
    iclock_sync::memory::use_one_arena();
    iclock_sync::tls::install_crypto_provider();
    let cli = Cli::parse_checked();
    // Before logging starts, so that RUST_LOG may come from .env too.
    let folder = LoadOptions {
        path: cli.config.clone(),
        ..LoadOptions::default()
    }
    .folder();
    let environment = Environment::load(&folder);
    init_logging(
        &cli,
        environment
            .as_ref()
            .ok()
            .map(|(environment, _)| environment),
    );
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
    let environment = match environment {
        Ok((environment, warnings)) => {
            for warning in warnings {
                tracing::warn!("{warning}");
            }
            environment
        }
        Err(error) => return output.error(&error.to_string(), Exit::Configuration).into(),
    };
    let exit = runtime.block_on(async {
        match cli.command {
            None => commands::sync::run(cli.config, &environment, &cli.sync, &output).await,
            Some(Command::BuildCache) => {
                commands::build_cache::run(cli.config, &environment, &output)
            }
            Some(Command::Devices) => {
                commands::devices::run(cli.config, &environment, &output).await
            }
            Some(Command::Status) => commands::status::run(cli.config, &environment, &output).await,
            Some(Command::Retry(args)) => {
                commands::retry::run(&args, cli.config, &environment, &output).await
            }
            Some(Command::Punches(args)) => {
                commands::punches::run(&args, cli.config, &environment, &output).await
            }
            Some(Command::Backfill(args)) => {
                commands::backfill::run(&args, cli.config, &environment, &output).await
            }
            Some(Command::Db(action)) => {
                commands::db::run(&action, cli.config, &environment, &output).await
            }
            Some(Command::Adms(action)) => {
                commands::adms::run(&action, cli.config, &environment, &output).await
            }
            Some(Command::Token(action)) => {
                commands::credentials::token(&action, cli.config, &environment, &output)
            }
            Some(Command::Password) => {
                commands::credentials::password(cli.config, &environment, &output)
            }
            Some(Command::Serve(args)) => {
                commands::serve::run(cli.config, &environment, &args, &output).await
            }
            Some(Command::Demo(args)) => commands::demo::run(&args, &output).await,
            Some(Command::Init(args)) => commands::init::run(&args, &output),
            Some(Command::Simulate(simulator)) => commands::simulate::run(simulator).await,
            Some(Command::UserControl(action)) => {
                commands::user_control::run(&action, cli.config, &environment, &output).await
            }
            Some(Command::Completions { shell }) => {
                clap_complete::generate(
                    shell,
                    &mut Cli::command(),
                    "iclock-sync",
                    &mut std::io::stdout(),
                );
                Exit::Success
            }
            Some(Command::Man) => {
                match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
                    Ok(()) => Exit::Success,
                    Err(error) => output.error(
                        &format!("cannot write the man page: {error}"),
                        Exit::Incomplete,
                    ),
                }
            }
        }
    });
    exit.into()
}

fn init_logging(cli: &Cli, environment: Option<&Environment>) {
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "warn",
        (false, 0) => "warn,iclock_sync=info",
        (false, 1) => "info,iclock_sync=debug",
        (false, _) => "debug",
    };
    let filter = environment
        .and_then(|environment| environment.get("RUST_LOG"))
        .and_then(|directives| EnvFilter::try_new(directives).ok())
        .unwrap_or_else(|| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(cli.color.enabled(std::io::stderr().is_terminal()))
        .with_timer(LocalTime)
        .with_target(false)
        .init();
}

/// Log lines stamped in this computer's time, to the second, as people read them.
struct LocalTime;

impl FormatTime for LocalTime {
    fn format_time(&self, writer: &mut Writer<'_>) -> std::fmt::Result {
        write!(
            writer,
            "{}",
            chrono::Local::now().format("%Y-%m-%d %H:%M:%S")
        )
    }
}
