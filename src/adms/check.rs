//! `iclock-sync devices` for a terminal that pushes: it cannot be called, so what is
//! known of it is what `serve` recorded in the ledger — when it last polled, from where,
//! its firmware and push version, the stamps it was acknowledged, the commands waiting
//! for it — and whether that contact is recent enough to call it in touch.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::config::adms::AdmsSettings;
use crate::ledger::{DeviceStanding, Ledger};
use crate::source::{DeviceCheck, SourceError, SourceErrorKind};

/// A terminal is in touch if it polled within this, or within two of its polls and a
/// minute (`serve` writes contacts to the ledger every minute).
const IN_TOUCH: Duration = Duration::from_secs(180);

/// What is known of the terminal `serial` (the `[[device]]` named `name`).
pub async fn check(
    ledger: Option<&dyn Ledger>,
    settings: Option<&AdmsSettings>,
    name: &str,
    serial: &str,
) -> DeviceCheck {
    let mut check = DeviceCheck::default();
    let Some(settings) = settings else {
        check.error = Some(SourceError::new(
            SourceErrorKind::Configuration,
            format!(
                "{name} pushes its punches (kind = \"adms\"), but there is no [adms] section to receive them: add [adms] listen = \"0.0.0.0:8081\" and run `iclock-sync serve`"
            ),
        ));
        return check;
    };
    let never = || {
        SourceError::new(
            SourceErrorKind::Unreachable,
            format!(
                "{name} (serial {serial}) has not contacted `iclock-sync serve` yet: is serve running? On the terminal, Comm → Cloud Server Setting: server address = this computer's address, port = {}{}",
                settings.listen.port(),
                if settings.allow.is_empty() {
                    String::new()
                } else {
                    " (and its address must be in [adms] allow)".to_owned()
                }
            ),
        )
    };
    let standing = match ledger {
        Some(ledger) => match ledger.device_standings().await {
            Ok(standings) => standings.into_iter().find(|device| device.name == name),
            Err(error) => {
                check.error = Some(SourceError::new(
                    SourceErrorKind::Unreachable,
                    error.to_string(),
                ));
                return check;
            }
        },
        None => None,
    };
    let facts = standing
        .as_ref()
        .and_then(|standing| standing.facts.clone())
        .unwrap_or(Value::Null);
    let Some(contact) = facts
        .get("last_contact")
        .and_then(Value::as_str)
        .and_then(|text| DateTime::parse_from_rfc3339(text).ok())
    else {
        check.error = Some(never());
        return check;
    };
    let ago = (Utc::now() - contact.with_timezone(&Utc))
        .to_std()
        .unwrap_or_default();
    check.reachable = ago <= in_touch(settings.delay);
    check.facts.push((
        "last contact".into(),
        format!(
            "{} ({} ago)",
            contact.to_rfc3339(),
            crate::duration::display(Duration::from_secs(ago.as_secs()))
        ),
    ));
    for (key, label) in [
        ("ip", "address"),
        ("push_version", "push version"),
        ("firmware", "firmware"),
        ("users", "users on it"),
        ("punches_on_terminal", "punches on it"),
    ] {
        if let Some(value) = facts.get(key).and_then(Value::as_str) {
            check.facts.push((label.into(), value.to_owned()));
        }
    }
    if let Some(stamps) = standing.as_ref().and_then(stamps) {
        check.facts.push(("stamps".into(), stamps));
    }
    if let Some(ledger) = ledger
        && let Ok(commands) = ledger.commands(Some(serial), 100).await
    {
        let waiting = commands
            .iter()
            .filter(|command| command.result_at.is_none())
            .count();
        check.facts.push((
            "commands".into(),
            format!("{waiting} waiting (`iclock-sync adms commands {serial}`)"),
        ));
    }
    if !check.reachable {
        check.error = Some(SourceError::new(
            SourceErrorKind::Unreachable,
            format!(
                "{name} (serial {serial}) last polled {} ago: is it switched on and on the network? It keeps its punches and sends them when it is back",
                crate::duration::display(Duration::from_secs(ago.as_secs()))
            ),
        ));
    }
    check
}

/// How recent a terminal's last poll must be to call it in touch, when it polls every
/// `delay` seconds.
pub fn in_touch(delay: u32) -> Duration {
    IN_TOUCH.max(Duration::from_secs(2 * u64::from(delay) + 60))
}

/// The stamps the terminal was acknowledged, as `TABLE=stamp` pairs.
fn stamps(standing: &DeviceStanding) -> Option<String> {
    let cursor = standing.cursor.as_ref()?.as_object()?;
    let pairs: Vec<String> = cursor
        .iter()
        .map(|(table, stamp)| match stamp {
            Value::String(text) => format!("{table}={text}"),
            other => format!("{table}={other}"),
        })
        .collect();
    (!pairs.is_empty()).then(|| pairs.join(", "))
}
