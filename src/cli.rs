//! The command line. Without a subcommand, `iclock-sync` runs one sync cycle (or a loop
//! of them with `--loop`), which is what a scheduler or a service calls.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::duration;

#[derive(Debug, Parser)]
#[command(
    name = "iclock-sync",
    version,
    about = "Delivers ZKTeco attendance punches to your systems, each exactly once.",
    long_about = "Delivers ZKTeco attendance punches to your systems, each exactly once.\n\n\
        Reads punches from the devices in iclock-sync.toml (ZKTeco terminals over the ZK \
        protocol, BioTime servers over their API), drops the ones already delivered, writes \
        the rest to every configured sink (by default a SQLite database, \
        output/attendance.db) and records what every sink acknowledged.\n\n\
        Exit codes: 0 everything delivered; 1 some punches not delivered or a device could not \
        be read (retried next run); 2 configuration error (file, key, credentials); \
        3 another iclock-sync is running on the same cache.",
    after_help = "Try `iclock-sync demo` to see it work without any configuration, and \
        `iclock-sync init --zk ADDRESS` to write a configuration for your terminals."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub sync: SyncArgs,

    /// Configuration file [default: ./iclock-sync.toml]; `.env` beside it is read too, and
    /// relative paths in it start from its folder.
    #[arg(
        long,
        global = true,
        value_name = "PATH",
        env = "ICLOCK_SYNC_CONFIG",
        help_heading = GLOBAL
    )]
    pub config: Option<PathBuf>,

    /// More detail on stderr (-vv for HTTP-level detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet", help_heading = GLOBAL)]
    pub verbose: u8,

    /// Only warnings and errors; the summary is printed only when something failed.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,

    /// Print the summary as JSON on stdout (for scripts and monitoring).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub json: bool,

    /// Colour on a terminal: FAILED rows and errors in red. `auto` colours only a
    /// terminal, and never when NO_COLOR is set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto, help_heading = GLOBAL)]
    pub color: ColorChoice,
}

/// The heading of the options every command takes.
const GLOBAL: &str = "Global options";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour a stream that `is_terminal` or not.
    pub fn enabled(self, is_terminal: bool) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
            }
        }
    }
}

#[derive(Debug, Clone, Default, Args)]
pub struct SyncArgs {
    /// Read and compare with the cache, list what would be uploaded; write nothing, anywhere.
    #[arg(long)]
    pub dry_run: bool,

    /// Ignore the stored cursors and read punches from the last N days (fractions allowed: 0.5).
    #[arg(long, value_name = "DAYS", value_parser = parse_days)]
    pub since: Option<Duration>,

    /// Run again every INTERVAL until Ctrl-C: minutes by default (`5`), or `30s`, `5m`, `2h`;
    /// alone, every 5 minutes. A [[device]] with its own `interval` is read on that one.
    #[arg(
        long = "loop",
        value_name = "INTERVAL",
        value_parser = parse_interval,
        num_args = 0..=1,
        default_missing_value = "5"
    )]
    pub every: Option<Duration>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write an iclock-sync.toml for your devices: `init --zk 192.168.1.201`, `--biotime URL`.
    Init(crate::commands::init::InitArgs),
    /// Rebuild or extend the dedup cache from the audit files output/logs_*.json.
    BuildCache,
    /// Check each configured device: reachable, credentials, punch count, clock.
    Devices,
    /// How things stand: each device's last contact and error, what waits for each sink and why, the last cycles.
    Status,
    /// Send punches a sink refused or failed again: `retry --sink frappe --unmapped` once the PINs are mapped.
    Retry(crate::commands::retry::RetryArgs),
    /// Search the punches read and where each went: `punches --pin 1009 --since 7d`.
    Punches(crate::commands::punches::PunchesArgs),
    /// Offer a sink the punches read before it was added: `backfill frappe --since 365d`.
    Backfill(crate::commands::backfill::BackfillArgs),
    /// Database sinks: `db migrate postgres` creates or upgrades our table (for migrate = false).
    #[command(subcommand)]
    Db(crate::commands::db::DbAction),
    /// Run as a service: read the devices on their intervals, deliver, and take punches terminals push ([adms]).
    Serve(crate::commands::serve::ServeArgs),
    /// API tokens for `serve`: `token new --scope read|admin`, `token list`, `token revoke NAME`.
    #[command(subcommand)]
    Token(crate::commands::credentials::TokenAction),
    /// Set the dashboard's password (stored as an argon2 hash in [serve]).
    Password,
    /// Commands for terminals that push: `adms command SERIAL check|info|reboot|log|set-time|reupload FROM TO`, `adms commands`.
    #[command(subcommand)]
    Adms(crate::commands::adms::AdmsAction),
    /// Start a simulated terminal and BioTime server and sync them into output/demo/attendance.db.
    Demo(DemoArgs),
    /// Run a device simulator (used by the demo, the tests and the benchmarks).
    #[command(subcommand)]
    Simulate(Simulator),
    /// What post-checkin user control switched ([sink.frappe] user_control), and undoing it.
    #[command(subcommand)]
    UserControl(UserControlAction),
    /// Print shell completions to stdout: `iclock-sync completions bash > /etc/bash_completion.d/iclock-sync`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `iclock-sync man > iclock-sync.1`.
    Man,
}

#[derive(Debug, Clone, Subcommand)]
pub enum UserControlAction {
    /// List the accounts (Frappe logins, terminal users) that differ from before iclock-sync switched them.
    Status,
    /// Put every account iclock-sync switched back as it was before (logged in output/user_control.jsonl).
    Undo,
}

#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Employees in the simulated company.
    #[arg(long, default_value_t = 300)]
    pub employees: u32,
    /// Days of punches to simulate.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
}

#[derive(Debug, Subcommand)]
pub enum Simulator {
    /// A BioTime server's REST API (login, transactions, terminals) on a local port.
    Biotime(Box<crate::simulate::biotime::SimulatorArgs>),
    /// A ZKTeco terminal speaking the ZK binary protocol (TCP, or UDP with --udp).
    Zk(crate::simulate::zk::ZkSimulatorArgs),
    /// A Frappe HR site (Employees, Employee Checkins, Users) on a local port.
    Frappe(crate::simulate::frappe::FrappeSimulatorArgs),
    /// Terminals pushing their punches to an ADMS server: `--server URL --terminals K --punches N`.
    Adms(crate::simulate::adms::AdmsSimulatorArgs),
}

impl Cli {
    /// Parses the command line, refusing sync-only flags given with a subcommand.
    pub fn parse_checked() -> Cli {
        Cli::parse().checked().unwrap_or_else(|error| error.exit())
    }

    fn checked(self) -> Result<Cli, clap::Error> {
        let sync_flags =
            self.sync.dry_run || self.sync.since.is_some() || self.sync.every.is_some();
        if self.command.is_some() && sync_flags {
            return Err(Cli::command().error(
                clap::error::ErrorKind::ArgumentConflict,
                "--dry-run, --since and --loop apply to the sync itself, not to a subcommand",
            ));
        }
        Ok(self)
    }
}

pub fn parse_days(text: &str) -> Result<Duration, String> {
    duration::parse_with_default_unit(text, "d")
}

pub fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = duration::parse_with_default_unit(text, "m")?;
    if interval < Duration::from_secs(1) {
        return Err("the interval must be at least 1s".into());
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn loop_defaults_to_minutes_and_since_to_days() {
        let cli = Cli::parse_from(["iclock-sync", "--loop", "5", "--since", "1.5"]);
        assert_eq!(cli.sync.every, Some(Duration::from_secs(300)));
        assert_eq!(cli.sync.since, Some(Duration::from_secs(129_600)));
        let cli = Cli::parse_from(["iclock-sync", "--loop", "30s"]);
        assert_eq!(cli.sync.every, Some(Duration::from_secs(30)));
        assert!(Cli::try_parse_from(["iclock-sync", "--loop", "0"]).is_err());
        let with_subcommand = Cli::try_parse_from(["iclock-sync", "--dry-run", "devices"]).unwrap();
        assert!(with_subcommand.checked().is_err());
        let global = Cli::try_parse_from(["iclock-sync", "--json", "build-cache"]).unwrap();
        assert!(global.checked().is_ok());
    }
}
