//! The API's actions (admin scope): read a device now, retry refused or failed
//! punches, backfill a sink, queue a command for a pushing terminal — what the command
//! line's `sync`, `retry`, `backfill` and `adms command` do, on the running service.
//! Each is logged with who asked.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::devices::find;
use crate::ledger::{RetryFilter, TerminalDecision};
use crate::web::WebState;
use crate::web::auth::Caller;
use crate::web::problem::{ApiJson, ApiResult, Problem};

/// What an action did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Done {
    /// In a sentence.
    pub message: String,
    /// How many punches it opened or queued, when it did.
    pub punches: Option<u64>,
    /// The queued command's number, when it queued one.
    pub command: Option<i64>,
}

/// Reads the device at once (a cycle starts for it), rather than at its next interval.
#[utoipa::path(post, path = "/api/v1/devices/{name}/sync", tag = "devices",
    params(("name" = String, Path, description = "The device's name")),
    responses(
        (status = 202, body = Done),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sync_device(
    State(state): State<WebState>,
    caller: axum::Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<(StatusCode, Json<Done>)> {
    let device = find(&state, &name).await?;
    if !device.configured {
        return Err(Problem::bad_request(format!(
            "'{name}' is not in {}; add it as a [[device]] first",
            state.origin
        )));
    }
    if device.kind == "adms" {
        return Err(Problem::bad_request(format!(
            "'{name}' pushes its punches, it cannot be read: queue a `log` command (POST /api/v1/devices/{{name}}/commands) to make it send them now"
        )));
    }
    tracing::info!("{} asked to read {name} now", caller.who);
    state.control.read_now(&name);
    Ok((
        StatusCode::ACCEPTED,
        Json(Done {
            message: format!("{name} is read at once"),
            punches: None,
            command: None,
        }),
    ))
}

/// Which punches to open again (all refused and failed ones when nothing is chosen).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRequest {
    /// Only this sink's.
    pub sink: Option<String>,
    /// Those the sink rejected.
    #[serde(default)]
    pub rejected: bool,
    /// Those whose PIN the sink did not know.
    #[serde(default)]
    pub unmapped: bool,
    /// Those that failed and wait for their next try (tried at once).
    #[serde(default)]
    pub failed: bool,
    /// Only this person's.
    pub pin: Option<String>,
    /// Only refusals for exactly this reason (a group of GET /api/v1/refusals).
    pub reason: Option<String>,
    /// Only punches read in the last this many hours (at most ten years).
    #[schema(minimum = 1, maximum = 87600)]
    pub since_hours: Option<u32>,
}

/// Opens refused or failed punches again; they are delivered at once.
#[utoipa::path(post, path = "/api/v1/retry", tag = "sinks",
    request_body = RetryRequest,
    responses(
        (status = 200, body = Done),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn retry(
    State(state): State<WebState>,
    caller: axum::Extension<Caller>,
    ApiJson(request): ApiJson<RetryRequest>,
) -> ApiResult<Json<Done>> {
    if let Some(sink) = &request.sink {
        known_sink(&state, sink).await?;
    }
    if let Some(hours) = request.since_hours
        && !(1..=87_600).contains(&hours)
    {
        return Err(Problem::bad_request(format!(
            "since_hours {hours} is out of range: use 1 to 87600 (ten years)"
        )));
    }
    let filter = RetryFilter {
        sink: request.sink.clone(),
        rejected: request.rejected,
        unmapped: request.unmapped,
        failed: request.failed,
        pin: request.pin.clone(),
        since: request
            .since_hours
            .map(|hours| Utc::now() - Duration::hours(i64::from(hours))),
        reason: request.reason.clone(),
    };
    let opened = state.ledger.retry(&filter).await.map_err(Problem::ledger)?;
    tracing::info!("{} opened {opened} punch(es) again", caller.who);
    if opened > 0 {
        state.control.deliver_now();
    }
    Ok(Json(Done {
        message: format!("{opened} punch(es) opened again; they are being delivered"),
        punches: Some(opened),
        command: None,
    }))
}

async fn known_sink(state: &WebState, name: &str) -> ApiResult<()> {
    let sinks = state
        .reader
        .sink_standings()
        .await
        .map_err(Problem::ledger)?;
    if sinks.iter().any(|sink| sink.name == name) {
        Ok(())
    } else {
        let names: Vec<String> = sinks.into_iter().map(|sink| sink.name).collect();
        Err(Problem::not_found(format!(
            "no sink is called '{name}'; the sinks are: {}",
            names.join(", ")
        )))
    }
}

/// From when a backfill starts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    /// Punches read since this day (`YYYY-MM-DD`, UTC).
    pub since: String,
}

/// Offers a sink every punch read since a day that it has not settled (a store that
/// was restored, a sink added later).
#[utoipa::path(post, path = "/api/v1/sinks/{name}/backfill", tag = "sinks",
    params(("name" = String, Path, description = "The sink's name")),
    request_body = BackfillRequest,
    responses(
        (status = 200, body = Done),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn backfill(
    State(state): State<WebState>,
    caller: axum::Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<BackfillRequest>,
) -> ApiResult<Json<Done>> {
    known_sink(&state, &name).await?;
    let since = NaiveDate::parse_from_str(request.since.trim(), "%Y-%m-%d")
        .ok()
        .and_then(|day| day.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
        .ok_or_else(|| {
            Problem::bad_request(format!(
                "since '{}' is not a date: write 2026-03-01",
                request.since
            ))
        })?;
    let queued = state
        .ledger
        .backfill(&name, since)
        .await
        .map_err(Problem::ledger)?;
    tracing::info!(
        "{} backfilled {name} since {}: {queued} punch(es)",
        caller.who,
        request.since
    );
    if queued > 0 {
        state.control.deliver_now();
    }
    Ok(Json(Done {
        message: format!("{queued} punch(es) queued for {name}"),
        punches: Some(queued),
        command: None,
    }))
}

/// A command for a pushing terminal.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// check, info, reboot, log (send new data now), set-time, `reupload 2026-09-01
    /// 2026-09-30`, or a protocol command.
    pub command: String,
}

/// Queues a command; the terminal gets it at its next poll.
#[utoipa::path(post, path = "/api/v1/devices/{name}/commands", tag = "devices",
    params(("name" = String, Path, description = "The device's name")),
    request_body = CommandRequest,
    responses(
        (status = 202, body = Done),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn queue_command(
    State(state): State<WebState>,
    caller: axum::Extension<Caller>,
    Path(name): Path<String>,
    ApiJson(request): ApiJson<CommandRequest>,
) -> ApiResult<(StatusCode, Json<Done>)> {
    let device = find(&state, &name).await?;
    let Some(serial) = device.serial.filter(|_| device.kind == "adms") else {
        return Err(Problem::bad_request(format!(
            "'{name}' does not push (it is read), so it takes no commands"
        )));
    };
    let words: Vec<String> = request
        .command
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let command = crate::commands::adms::protocol_command(&words).map_err(Problem::bad_request)?;
    let id = state
        .ledger
        .queue_command(&serial, &command)
        .await
        .map_err(Problem::ledger)?;
    tracing::info!("{} queued command {id} for {name}", caller.who);
    Ok((
        StatusCode::ACCEPTED,
        Json(Done {
            message: format!(
                "command {id} queued for {name}; it is handed over at the terminal's next poll"
            ),
            punches: None,
            command: Some(id),
        }),
    ))
}

/// How an approved terminal is known.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveRequest {
    /// The device name its punches carry (default `ADMS <serial>`).
    pub name: Option<String>,
    /// Its IANA time zone, e.g. `Asia/Kolkata` (default this computer's).
    pub timezone: Option<String>,
}

/// Takes a held terminal (one that pushes but is not configured): it is told OK at its
/// next upload, and sends the punches it kept. The decision is kept in the ledger; a
/// `[[device]]` in the configuration says the same for good.
#[utoipa::path(post, path = "/api/v1/terminals/{serial}/approve", tag = "devices",
    params(("serial" = String, Path, description = "The terminal's serial number")),
    request_body = ApproveRequest,
    responses(
        (status = 200, body = Done),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn approve(
    State(state): State<WebState>,
    caller: axum::Extension<Caller>,
    Path(serial): Path<String>,
    ApiJson(request): ApiJson<ApproveRequest>,
) -> ApiResult<Json<Done>> {
    let serial = held_serial(&state, &serial)?;
    let name = request
        .name
        .as_deref()
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map_or_else(|| format!("ADMS {serial}"), str::to_owned);
    if name.chars().count() > 100 || name.contains(['\n', '\r']) {
        return Err(Problem::bad_request(
            "name: at most 100 characters on one line",
        ));
    }
    if state.devices.iter().any(|device| device.name == name) {
        return Err(Problem::bad_request(format!(
            "a configured device is called '{name}' already: choose another name"
        )));
    }
    let timezone = match request.timezone.as_deref().map(str::trim).filter(|zone| !zone.is_empty()) {
        None => crate::config::host_timezone(),
        Some(zone) => zone.parse::<chrono_tz::Tz>().map_err(|_| {
            Problem::bad_request(format!("timezone '{zone}' is not an IANA time zone: write e.g. Asia/Kolkata or Europe/London"))
        })?,
    };
    decide(
        &state,
        &caller,
        TerminalDecision {
            serial: serial.clone(),
            approved: true,
            name: name.clone(),
            timezone: timezone.name().to_owned(),
            by: caller.who.clone(),
        },
    )
    .await?;
    Ok(Json(Done {
        message: format!(
            "terminal {serial} approved as '{name}' ({}); it sends its punches at its next upload",
            timezone.name()
        ),
        punches: None,
        command: None,
    }))
}

/// Refuses a held terminal for good: it is no longer shown as waiting.
#[utoipa::path(post, path = "/api/v1/terminals/{serial}/reject", tag = "devices",
    params(("serial" = String, Path, description = "The terminal's serial number")),
    responses(
        (status = 200, body = Done),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn reject(
    State(state): State<WebState>,
    caller: axum::Extension<Caller>,
    Path(serial): Path<String>,
) -> ApiResult<Json<Done>> {
    let serial = held_serial(&state, &serial)?;
    decide(
        &state,
        &caller,
        TerminalDecision {
            serial: serial.clone(),
            approved: false,
            name: String::new(),
            timezone: String::new(),
            by: caller.who.clone(),
        },
    )
    .await?;
    Ok(Json(Done {
        message: format!("terminal {serial} is refused from now on"),
        punches: None,
        command: None,
    }))
}

/// `serial`, if it can be decided about: not configured, and a receiver running.
fn held_serial(state: &WebState, serial: &str) -> ApiResult<String> {
    let serial = serial.trim();
    if state.receiver.is_none() {
        return Err(Problem::bad_request(format!(
            "no terminal pushes to this server: there is no [adms] section in {}",
            state.origin
        )));
    }
    if serial.is_empty() || serial.len() > 64 || serial.contains(|c: char| c.is_control()) {
        return Err(Problem::bad_request(
            "a serial number is 1 to 64 printable characters",
        ));
    }
    if state
        .devices
        .iter()
        .any(|device| device.serial.as_deref() == Some(serial))
    {
        return Err(Problem::bad_request(format!(
            "terminal {serial} is configured in {}: change its [[device]] there",
            state.origin
        )));
    }
    Ok(serial.to_owned())
}

async fn decide(state: &WebState, caller: &Caller, decision: TerminalDecision) -> ApiResult<()> {
    state
        .ledger
        .decide_terminal(&decision)
        .await
        .map_err(Problem::ledger)?;
    if let Some(receiver) = &state.receiver {
        receiver.decide(&decision);
    }
    tracing::info!(
        "{} {} terminal {}",
        caller.who,
        if decision.approved {
            "approved"
        } else {
            "rejected"
        },
        decision.serial
    );
    state.events.send(
        "device",
        serde_json::json!({ "device": decision.name, "serial": decision.serial }),
    );
    Ok(())
}
