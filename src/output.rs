//! Where results go: a human summary or JSON on stdout, errors on stderr, and how much
//! of it `-q`/`-v`/`--json` let through.

use serde::Serialize;

use crate::cli::Cli;
use crate::exit::Exit;
use std::io::IsTerminal;
use std::sync::Arc;

use crate::progress::TerminalObserver;
use crate::report::{CycleReport, text};
use crate::sync::CycleObserver;

#[derive(Debug, Clone, Default)]
pub struct Output {
    pub json: bool,
    pub quiet: bool,
    pub verbose: bool,
    /// Colour the summary (stdout is a terminal and colour is wanted).
    pub color: bool,
}

impl Output {
    pub fn from_cli(cli: &Cli) -> Output {
        Output {
            json: cli.json,
            quiet: cli.quiet,
            verbose: cli.verbose > 0,
            color: cli.color.enabled(std::io::stdout().is_terminal()),
        }
    }

    /// What watches a cycle for the user: a progress line, then the summary.
    pub fn observer(&self) -> Arc<dyn CycleObserver> {
        Arc::new(TerminalObserver::new(self.clone()))
    }

    /// Prints a cycle's summary (with `-q`, only when something went wrong).
    pub fn report(&self, report: &CycleReport) {
        if self.json {
            self.json_line(report);
        } else if !self.quiet || report.exit() != Exit::Success {
            let summary = text::render(report, self.verbose);
            if self.color {
                print!("{}", text::paint(&summary));
            } else {
                print!("{summary}");
            }
        }
    }

    /// Prints a fatal error; with `--json` also as a JSON line on stdout.
    pub fn error(&self, message: &str, exit: Exit) -> Exit {
        eprintln!("error: {message}");
        if self.json {
            self.json_line(&serde_json::json!({
                "error": message,
                "exit_code": exit.code(),
            }));
        }
        exit
    }

    /// Prints a line for people (suppressed by `-q` and `--json`).
    pub fn say(&self, line: &str) {
        if !self.quiet && !self.json {
            println!("{line}");
        }
    }

    pub fn json_line(&self, value: &impl Serialize) {
        match serde_json::to_string(value) {
            Ok(text) => println!("{text}"),
            Err(error) => eprintln!("error: cannot write JSON: {error}"),
        }
    }
}
