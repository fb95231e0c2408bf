//! What the API and the dashboard both show, gathered once from the ledger and the
//! configuration: each device with its state, last contact and punches today; the
//! overview's counts.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::Web;
use crate::ledger::{DeviceStanding, LedgerError};

/// Whether a device answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeviceStatus {
    /// Its last read worked (a pushing terminal: it polled recently).
    Up,
    /// Its last read failed (a pushing terminal: it has not polled for a while).
    Down,
    /// Not read yet.
    Unknown,
    /// A pushing terminal nobody configured: it keeps its punches until approved.
    AwaitingApproval,
    /// A pushing terminal nobody configured, refused for good.
    Rejected,
}

/// A device as the API and the dashboard show it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    pub name: String,
    /// `zk`, `biotime`, `adms`.
    pub kind: String,
    pub location: String,
    pub status: DeviceStatus,
    /// The serial number, when known.
    pub serial: Option<String>,
    /// When it was last read without an error, or (pushing) last polled; UTC.
    pub last_contact: Option<String>,
    pub last_error: Option<String>,
    pub last_error_at: Option<String>,
    pub firmware: Option<String>,
    /// Its clock minus ours, when the last read could tell.
    pub clock_drift_seconds: Option<f64>,
    /// Punches with today's date on its own clock.
    pub punches_today: u64,
    /// Its punches some sink has not taken yet.
    pub undelivered: u64,
    /// Whether it is in the configuration (a held terminal is not).
    pub configured: bool,
    /// Everything else the last read or poll told (push version, users, stamps…).
    #[schema(value_type = Object)]
    pub facts: Value,
}

/// Every device: the configured ones in the configuration's order, then those the
/// ledger knows that are not configured (terminals waiting for approval, devices
/// removed from the file).
pub async fn devices(web: &Web) -> Result<std::sync::Arc<Vec<DeviceView>>, LedgerError> {
    web.devices_now.get(async || gather(web).await).await
}

async fn gather(web: &Web) -> Result<Vec<DeviceView>, LedgerError> {
    let standings = web.reader.device_standings().await?;
    let undelivered: HashMap<String, u64> =
        web.reader.open_by_device().await?.into_iter().collect();
    let today = punches_today(web).await?;
    let mut by_name: HashMap<String, DeviceStanding> = standings
        .into_iter()
        .map(|standing| (standing.name.clone(), standing))
        .collect();
    let mut views = Vec::new();
    for device in &web.devices {
        let standing = by_name
            .remove(&device.name)
            .unwrap_or_else(|| DeviceStanding {
                name: device.name.clone(),
                kind: device.kind.clone(),
                location: device.location.clone(),
                ..DeviceStanding::default()
            });
        views.push(view(web, standing, true, &today, &undelivered));
    }
    let mut rest: Vec<DeviceStanding> = by_name.into_values().collect();
    rest.sort_by(|a, b| a.name.cmp(&b.name));
    for standing in rest {
        views.push(view(web, standing, false, &today, &undelivered));
    }
    Ok(views)
}

fn view(
    web: &Web,
    standing: DeviceStanding,
    configured: bool,
    today: &HashMap<String, u64>,
    undelivered: &HashMap<String, u64>,
) -> DeviceView {
    let facts = standing.facts.clone().unwrap_or(Value::Null);
    let text = |key: &str| facts.get(key).and_then(Value::as_str).map(str::to_owned);
    let serial = text("serial").or_else(|| {
        web.devices
            .iter()
            .find(|device| device.name == standing.name)
            .and_then(|device| device.serial.clone())
    });
    let pushes = standing.kind == "adms";
    let last_contact = if pushes {
        text("last_contact")
    } else {
        standing.last_read_at.clone()
    };
    let decision = web
        .receiver
        .as_ref()
        .zip(serial.as_deref())
        .and_then(|(receiver, serial)| receiver.decision(serial));
    let status = if !configured && pushes && decision.is_none() {
        DeviceStatus::AwaitingApproval
    } else if matches!(decision, Some(None)) {
        DeviceStatus::Rejected
    } else if pushes {
        match last_contact.as_deref().and_then(age) {
            None => DeviceStatus::Unknown,
            Some(ago) if ago <= crate::adms::check::in_touch(web.adms_delay.unwrap_or(10)) => {
                DeviceStatus::Up
            }
            Some(_) => DeviceStatus::Down,
        }
    } else {
        match (&standing.last_read_at, &standing.last_error_at) {
            (None, None) => DeviceStatus::Unknown,
            (Some(read), Some(failed)) if failed > read => DeviceStatus::Down,
            (None, Some(_)) => DeviceStatus::Down,
            _ => DeviceStatus::Up,
        }
    };
    DeviceView {
        punches_today: today.get(&standing.name).copied().unwrap_or(0),
        undelivered: undelivered.get(&standing.name).copied().unwrap_or(0),
        firmware: text("firmware"),
        clock_drift_seconds: facts.get("clock_drift_seconds").and_then(Value::as_f64),
        serial,
        last_contact,
        status,
        configured,
        name: standing.name,
        kind: standing.kind,
        location: standing.location,
        last_error: standing.last_error,
        last_error_at: standing.last_error_at,
        facts,
    }
}

/// How long ago an RFC 3339 time was.
fn age(text: &str) -> Option<Duration> {
    let at = DateTime::parse_from_rfc3339(text).ok()?;
    Some(
        (Utc::now() - at.with_timezone(&Utc))
            .to_std()
            .unwrap_or_default(),
    )
}

/// Per device, its punches dated today on its own clock.
pub async fn punches_today(web: &Web) -> Result<HashMap<String, u64>, LedgerError> {
    let host = crate::config::host_timezone();
    let now = Utc::now();
    let today = |zone: chrono_tz::Tz| now.with_timezone(&zone).format("%Y-%m-%d").to_string();
    let zones: HashMap<&str, String> = web
        .devices
        .iter()
        .map(|device| (device.name.as_str(), today(device.timezone)))
        .collect();
    let host_today = today(host);
    let earliest = zones
        .values()
        .chain(std::iter::once(&host_today))
        .min()
        .cloned()
        .unwrap_or_default();
    let mut counts = HashMap::new();
    for (device, day, count) in web
        .reader
        .punches_per_day(&format!("{earliest} 00:00:00"))
        .await?
    {
        let wanted = zones.get(device.as_str()).unwrap_or(&host_today);
        if &day == wanted {
            counts.insert(device, count);
        }
    }
    Ok(counts)
}
