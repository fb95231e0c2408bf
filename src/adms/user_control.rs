//! User control on a pushing terminal: the push protocol has no enable/disable verb, so
//! a person is switched off by sending their user record back (`DATA UPDATE USERINFO`,
//! which replaces the whole record) with a validity window that ended long ago
//! (`Expires=1`), and on by sending it with `Expires=0`. The terminal must have the
//! validity function (option `UserValidTimeFun=1`; `iclock-sync adms command SN info`
//! shows it); without it the command is refused and the result says so.
//!
//! The record sent is the one the terminal uploaded (its name, privilege, card and
//! keypad password unchanged), so a person the terminal has not described yet cannot be
//! switched: the terminal is asked for its records (`DATA QUERY USERINFO`) and they
//! are switched from their next punch on. The commands go through the terminal's queue
//! and are carried out at its next poll; the record kept is updated at once, so only
//! real changes are queued.

use crate::ledger::Ledger;
use crate::user_control::{SwitchLog, SwitchRecord, SwitchTally, Target, UserSwitch};

/// The fields user control sets; everything else in the record is left as uploaded.
const VALIDITY_FIELDS: [&str; 3] = ["StartDatetime", "EndDatetime", "Expires"];
/// The window that makes a record invalid: over before any terminal was made.
const EXPIRED_WINDOW: &str = "StartDatetime=2000-01-01T00:00:00\tEndDatetime=2000-01-01T00:00:01";

/// Whether the person a record describes can punch: not if it expires (`Expires`
/// other than 0). A validity window an administrator set counts as expiring too.
pub fn enabled(record: &str) -> bool {
    !record.split('\t').any(|field| {
        field
            .strip_prefix("Expires=")
            .is_some_and(|value| !matches!(value.trim(), "" | "0"))
    })
}

/// `record` with its validity fields replaced to switch the person on or off.
pub fn with_enabled(record: &str, enable: bool) -> String {
    let mut fields: Vec<&str> = record
        .split('\t')
        .filter(|field| {
            let key = field.split('=').next().unwrap_or_default();
            !field.is_empty() && !VALIDITY_FIELDS.contains(&key)
        })
        .collect();
    if enable {
        fields.push("Expires=0");
    } else {
        fields.push(EXPIRED_WINDOW);
        fields.push("Expires=1");
    }
    fields.join("\t")
}

/// Asks a terminal to upload every user record.
const QUERY_USERS: &str = "DATA QUERY USERINFO";

/// Queues `switches` for the terminal `serial` (the `[[device]]` named `device`),
/// logging each change (as an undo when `undo`). Errors are the ledger's.
pub async fn queue_switches(
    ledger: &dyn Ledger,
    device: &str,
    serial: &str,
    switches: &[UserSwitch],
    log: &SwitchLog,
    undo: bool,
) -> Result<SwitchTally, String> {
    let mut users = ledger
        .terminal_users(serial)
        .await
        .map_err(|error| error.to_string())?;
    let mut tally = SwitchTally::default();
    for switch in switches {
        let Some(user) = users
            .iter_mut()
            .find(|user| user.pin == switch.user_id && !user.record.is_empty())
        else {
            tally.unknown.push(switch.user_id.clone());
            continue;
        };
        let was_enabled = enabled(&user.record);
        if was_enabled == switch.enable {
            continue;
        }
        user.record = with_enabled(&user.record, switch.enable);
        ledger
            .queue_command(serial, &format!("DATA UPDATE USERINFO {}", user.record))
            .await
            .map_err(|error| error.to_string())?;
        ledger
            .record_terminal_users(serial, std::slice::from_ref(user))
            .await
            .map_err(|error| error.to_string())?;
        let mut entry = SwitchRecord::new(
            Target::Device,
            device,
            &switch.user_id,
            switch.enable,
            was_enabled,
            &switch.because,
        );
        entry.undo = undo;
        if let Err(error) = log.append(&entry) {
            tracing::error!(
                "user {} on {device} was switched, but {} cannot be written: {error}",
                switch.user_id,
                log.path().display()
            );
        }
        if switch.enable {
            tally.switched_on += 1;
        } else {
            tally.switched_off += 1;
        }
    }
    if !tally.unknown.is_empty() {
        let asked = ledger
            .commands(Some(serial), 100)
            .await
            .map_err(|error| error.to_string())?
            .iter()
            .any(|command| command.command == QUERY_USERS && command.result_at.is_none());
        if !asked {
            ledger
                .queue_command(serial, QUERY_USERS)
                .await
                .map_err(|error| error.to_string())?;
        }
    }
    Ok(tally)
}

/// What a round of switches on a pushing terminal did, for the summary.
pub fn describe(tally: &SwitchTally) -> String {
    let mut text = format!(
        "user control: {} user(s) switched on, {} off, at the terminal's next poll",
        tally.switched_on, tally.switched_off
    );
    if !tally.unknown.is_empty() {
        text.push_str(&format!(
            "; the terminal has not described PIN(s) {} yet: it is asked to (DATA QUERY USERINFO), and they are switched from their next punch on",
            tally.unknown.join(", ")
        ));
    }
    text
}

/// Hides the keypad password in a command shown to a person (`Passwd=…`).
pub fn redacted(command: &str) -> String {
    command
        .split('\t')
        .map(|field| match field.split_once("Passwd=") {
            Some((before, secret)) if !secret.is_empty() => format!("{before}Passwd=•••"),
            _ => field.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\t")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = "PIN=1001\tName=Aishath Shifa\tPri=0\tPasswd=1234\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=-1";

    #[test]
    fn switching_off_and_on_changes_only_the_validity_fields() {
        assert!(enabled(RECORD));
        let off = with_enabled(RECORD, false);
        assert_eq!(
            off,
            format!(
                "{RECORD}\tStartDatetime=2000-01-01T00:00:00\tEndDatetime=2000-01-01T00:00:01\tExpires=1"
            )
        );
        assert!(!enabled(&off));
        let on = with_enabled(&off, true);
        assert_eq!(on, format!("{RECORD}\tExpires=0"));
        assert!(enabled(&on));
        assert!(!enabled("PIN=7\tExpires=2"));
    }

    #[test]
    fn the_keypad_password_is_hidden_when_shown() {
        assert_eq!(
            redacted(&format!("DATA UPDATE USERINFO {RECORD}")),
            "DATA UPDATE USERINFO PIN=1001\tName=Aishath Shifa\tPri=0\tPasswd=•••\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=-1"
        );
        assert_eq!(redacted("INFO"), "INFO");
    }
}
