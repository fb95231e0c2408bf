//! `iclock-sync adms command SERIAL …` queues a command for a terminal that pushes; it
//! is handed over at the terminal's next poll, by `serve`. `iclock-sync adms commands
//! [SERIAL]` lists the latest and their results.

use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};

use crate::adms::user_control::redacted;
use crate::config::Environment;
use crate::exit::Exit;
use crate::ledger::Ledger;
use crate::output::Output;

#[derive(Debug, Clone, Subcommand)]
pub enum AdmsAction {
    /// Queue a command: `check`, `info`, `reboot`, `reupload 2026-09-01 2026-09-30`, or a
    /// protocol command in quotes ("DATA QUERY USERINFO PIN=1001").
    Command(CommandArgs),
    /// The latest commands (of one terminal) and what each terminal answered.
    Commands(CommandsArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CommandArgs {
    /// The terminal's serial number.
    pub serial: String,
    /// The command: check, info, reboot, log (upload new data now), set-time (the
    /// terminal's clock to the time in its zone), reupload FROM TO (dates
    /// YYYY-MM-DD), or a protocol command in quotes (fields separated by \t).
    #[arg(required = true, num_args = 1..)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct CommandsArgs {
    /// Only this terminal's.
    pub serial: Option<String>,
    /// How many, newest first.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}

/// Commands that change or expose more than attendance: never sent from here.
const REFUSED: &[&str] = &["SHELL", "GETFILE", "PUTFILE", "UPGRADE", "CLEAR", "ENROLL"];

pub async fn run(
    action: &AdmsAction,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    super::ledger::with(
        config_path,
        environment,
        output,
        false,
        async |ledger| match action {
            AdmsAction::Command(args) => queue(ledger, args, output).await,
            AdmsAction::Commands(args) => list(ledger, args, output).await,
        },
    )
    .await
    .unwrap_or_else(|exit| exit)
}

async fn queue(ledger: &dyn Ledger, args: &CommandArgs, output: &Output) -> Exit {
    let command = match protocol_command(&args.command) {
        Ok(command) => command,
        Err(problem) => return output.error(&problem, Exit::Configuration),
    };
    match ledger.queue_command(args.serial.trim(), &command).await {
        Ok(id) => {
            if output.json {
                output.json_line(&serde_json::json!({ "id": id, "command": command }));
            } else {
                output.say(&format!(
                    "Queued command {id} for terminal {}: {}. `iclock-sync serve` hands it over at the terminal's next poll; `iclock-sync adms commands {}` shows its result.",
                    args.serial,
                    redacted(&command).replace('\t', " "),
                    args.serial
                ));
            }
            Exit::Success
        }
        Err(error) => output.error(&error.to_string(), Exit::Incomplete),
    }
}

/// The command text a terminal takes, from the words given.
pub fn protocol_command(words: &[String]) -> Result<String, String> {
    let first = words.first().map(String::as_str).unwrap_or("");
    let day = |text: Option<&String>, what: &str| {
        text.and_then(|text| NaiveDate::parse_from_str(text, "%Y-%m-%d").ok())
            .ok_or_else(|| format!("reupload needs the {what} date as YYYY-MM-DD, e.g. `reupload 2026-09-01 2026-09-30`"))
    };
    let command = match first.to_ascii_lowercase().as_str() {
        "check" => "CHECK".to_owned(),
        "info" => "INFO".to_owned(),
        "reboot" => "REBOOT".to_owned(),
        "log" => "LOG".to_owned(),
        "set-time" => crate::adms::SET_CLOCK.to_owned(),
        "reupload" => {
            let from = day(words.get(1), "first")?;
            let to = day(words.get(2), "last")?;
            if to < from {
                return Err(format!("reupload: {to} is before {from}"));
            }
            format!("DATA QUERY ATTLOG StartTime={from} 00:00:00\tEndTime={to} 23:59:59")
        }
        _ => {
            let text = words.join(" ");
            let verb = text
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_ascii_uppercase();
            if text.trim().is_empty() || text.contains(['\n', '\r']) {
                return Err("give a command: check, info, reboot, log, set-time, reupload FROM TO, or a protocol command in quotes".into());
            }
            if REFUSED.iter().any(|refused| verb.starts_with(refused)) {
                return Err(format!(
                    "`{verb}` is not sent from iclock-sync: it can erase the terminal's data or run programs on it; use the terminal's own menu or vendor software"
                ));
            }
            // Fields inside a protocol command are TAB-separated; `\t` may be typed.
            text.replace("\\t", "\t")
        }
    };
    Ok(command)
}

async fn list(ledger: &dyn Ledger, args: &CommandsArgs, output: &Output) -> Exit {
    let commands = match ledger.commands(args.serial.as_deref(), args.limit).await {
        Ok(commands) => commands,
        Err(error) => return output.error(&error.to_string(), Exit::Incomplete),
    };
    if output.json {
        output.json_line(&serde_json::json!({ "commands": commands }));
        return Exit::Success;
    }
    if commands.is_empty() {
        output.say("No commands queued.");
    }
    for command in &commands {
        let state = match (&command.result_at, command.return_code, &command.sent_at) {
            (Some(at), Some(0), _) => format!("done {at}"),
            (Some(at), Some(code), _) => format!("failed {at} (Return={code})"),
            (Some(at), None, _) => format!("answered {at}"),
            (None, _, Some(at)) => format!(
                "handed over {at} ({} time(s)), no result yet",
                command.sends
            ),
            (None, _, None) => "waiting for the terminal's next poll".to_owned(),
        };
        output.say(&format!(
            "{:>5}  {}  {}  — {state}",
            command.id,
            command.serial,
            redacted(&command.command).replace('\t', " ")
        ));
        if let Some(result) = &command.result {
            for line in result.lines().skip(1).take(20) {
                output.say(&format!("         {line}"));
            }
        }
    }
    Exit::Success
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn words_become_protocol_commands() {
        assert_eq!(protocol_command(&words("check")).unwrap(), "CHECK");
        assert_eq!(
            protocol_command(&words("reupload 2026-09-01 2026-09-30")).unwrap(),
            "DATA QUERY ATTLOG StartTime=2026-09-01 00:00:00\tEndTime=2026-09-30 23:59:59"
        );
        assert_eq!(
            protocol_command(&["DATA QUERY USERINFO PIN=1001".to_owned()]).unwrap(),
            "DATA QUERY USERINFO PIN=1001"
        );
        assert!(protocol_command(&words("reupload 2026-09-30 2026-09-01")).is_err());
        assert!(protocol_command(&words("reupload yesterday")).is_err());
        for dangerous in ["Shell rm -rf /", "CLEAR LOG", "PutFile x y", "UPGRADE"] {
            let error = protocol_command(&words(dangerous)).unwrap_err();
            assert!(
                error.contains("not sent from iclock-sync"),
                "{dangerous}: {error}"
            );
        }
    }
}
