//! `iclock-sync user-control status|undo`: what post-checkin user control has changed,
//! and putting it back. Every account iclock-sync switched is restored to the state it
//! had before iclock-sync first switched it (see [`crate::user_control::plan_undo`]),
//! on Frappe and on the terminals, and each restore is logged like any switch.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;

use crate::adms::user_control::queue_switches;
use crate::cli::UserControlAction;
use crate::config::{Config, Environment};
use crate::exit::Exit;
use crate::instance_lock::InstanceLock;
use crate::ledger::{LEDGER_FILE_NAME, SqliteLedger};
use crate::output::Output;
use crate::punch::DeviceLabel;
use crate::sink::frappe::{FrappeConfig, FrappeSink, FrappeUsers};
use crate::source::zk::{ZkConfig, ZkSource};
use crate::user_control::{Restore, SwitchLog, Target, UserSwitch, plan_undo};

#[derive(Debug, Serialize)]
struct Line {
    target: Target,
    place: String,
    account: String,
    /// The state it is (or would be) put back to.
    enabled: bool,
    /// `pending` (status), `restored`, `queued` (a pushing terminal: restored at its
    /// next poll), `already`, or the reason it failed.
    result: String,
}

pub async fn run(
    action: &UserControlAction,
    config_path: Option<PathBuf>,
    environment: &Environment,
    output: &Output,
) -> Exit {
    let config = match super::load_config(
        config_path,
        environment,
        matches!(action, UserControlAction::Status),
        output,
    ) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let _lock = match InstanceLock::acquire(&config.sync.cache_dir) {
        Ok(lock) => lock,
        Err(error) => return output.error(&error.to_string(), error.exit()),
    };
    let log = SwitchLog::in_dir(&config.sync.output_dir);
    let records = match log.read() {
        Ok(records) => records,
        Err(error) => {
            return output.error(
                &format!("cannot read {}: {error}", log.path().display()),
                Exit::Incomplete,
            );
        }
    };
    let plan = plan_undo(&records);
    if plan.is_empty() {
        output.say(&format!(
            "Nothing to undo: every account iclock-sync switched ({} switch(es) in {}) is as it was before.",
            records.len(),
            log.path().display()
        ));
        return Exit::Success;
    }
    let lines = match action {
        UserControlAction::Status => plan
            .iter()
            .map(|restore| line(restore, "pending".into()))
            .collect(),
        UserControlAction::Undo => undo(&config, &log, &plan).await,
    };
    let failed = lines
        .iter()
        .filter(|line| {
            !matches!(
                line.result.as_str(),
                "pending" | "restored" | "queued" | "already"
            )
        })
        .count();
    output.json_line(&lines);
    for line in &lines {
        output.say(&format!(
            "  {:<11} {:<28} {:<24} {:<8} {}",
            match line.target {
                Target::FrappeUser => "Frappe user",
                Target::Device => "terminal",
            },
            line.place,
            line.account,
            if line.enabled { "enable" } else { "disable" },
            line.result
        ));
    }
    match action {
        UserControlAction::Status => output.say(&format!(
            "{} account(s) differ from before iclock-sync switched them; `iclock-sync user-control undo` restores them.",
            lines.len()
        )),
        UserControlAction::Undo => output.say(&format!(
            "{} account(s) restored, {failed} could not be (see above).",
            lines.len() - failed
        )),
    }
    if failed > 0 {
        Exit::Incomplete
    } else {
        Exit::Success
    }
}

fn line(restore: &Restore, result: String) -> Line {
    Line {
        target: restore.target,
        place: restore.place.clone(),
        account: restore.account.clone(),
        enabled: restore.enabled,
        result,
    }
}

async fn undo(config: &Config, log: &SwitchLog, plan: &[Restore]) -> Vec<Line> {
    let mut lines = Vec::new();
    let frappe = match config.sink::<FrappeConfig>() {
        Some(frappe) => Some(
            FrappeSink::open(frappe, &config.devices, &config.sync.output_dir)
                .await
                .map(|sink| {
                    (
                        sink,
                        FrappeUsers::new(&frappe.url, log.clone()),
                        frappe.url.clone(),
                    )
                })
                .map_err(|error| error.to_string()),
        ),
        None => None,
    };
    for restore in plan {
        let result = match restore.target {
            Target::FrappeUser => match &frappe {
                None => "no [sink.frappe] is configured".to_owned(),
                Some(Err(error)) => error.clone(),
                Some(Ok((_, _, url))) if *url != restore.place => {
                    format!("recorded for {}, but [sink.frappe] is {url}", restore.place)
                }
                Some(Ok((sink, users, _))) => {
                    match users
                        .restore(sink.client(), &restore.account, restore.enabled)
                        .await
                    {
                        Ok(true) => "restored".to_owned(),
                        Ok(false) => "already".to_owned(),
                        Err(problem) => problem,
                    }
                }
            },
            Target::Device => restore_on_terminal(config, log, restore).await,
        };
        lines.push(line(restore, result));
    }
    lines
}

async fn restore_on_terminal(config: &Config, log: &SwitchLog, restore: &Restore) -> String {
    let Some(device) = config
        .devices
        .iter()
        .find(|device| device.name == restore.place)
    else {
        return format!("no [[device]] named '{}' is configured", restore.place);
    };
    let switch = UserSwitch {
        device: device.name.as_str().into(),
        user_id: restore.account.clone(),
        enable: restore.enabled,
        because: "user-control undo".into(),
    };
    if let Some(serial) = device.source.pushes() {
        return restore_on_pushing_terminal(config, log, &device.name, serial, switch).await;
    }
    let Some(zk) = device.source.as_any().downcast_ref::<ZkConfig>() else {
        return format!(
            "'{}' is not a terminal (kind = \"zk\" or \"adms\")",
            restore.place
        );
    };
    let label = Arc::new(DeviceLabel {
        name: device.name.as_str().into(),
        timezone: device.timezone,
    });
    let source = ZkSource::new(label, zk, None);
    match source.switch(&[switch], log, true).await {
        Ok(tally) if !tally.unknown.is_empty() => {
            "the terminal has no user with this PIN".to_owned()
        }
        Ok(tally) if tally.switched_on + tally.switched_off == 0 => "already".to_owned(),
        Ok(_) => "restored".to_owned(),
        Err(problem) => problem,
    }
}

/// A pushing terminal's switch goes through its command queue in the ledger.
async fn restore_on_pushing_terminal(
    config: &Config,
    log: &SwitchLog,
    device: &str,
    serial: &str,
    switch: UserSwitch,
) -> String {
    let path = config.sync.cache_dir.join(LEDGER_FILE_NAME);
    let ledger = match SqliteLedger::open(&path, false).await {
        Ok(ledger) => ledger,
        Err(error) => return error.to_string(),
    };
    let queued = queue_switches(&ledger, device, serial, &[switch], log, true).await;
    ledger.close().await;
    match queued {
        Ok(tally) if !tally.unknown.is_empty() => {
            "the terminal has not described this PIN (asked it to: DATA QUERY USERINFO)".to_owned()
        }
        Ok(tally) if tally.switched_on + tally.switched_off == 0 => "already".to_owned(),
        Ok(_) => "queued".to_owned(),
        Err(problem) => problem,
    }
}
