//! `/api/v1/devices`: each device's state, last contact, last error, firmware, clock
//! drift and punches today; a pushing terminal's commands.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::ledger::AdmsCommand;
use crate::web::WebState;
use crate::web::problem::{ApiQuery, ApiResult, Problem};
use crate::web::view::{self, DeviceView};

/// Every device: the configured ones, then terminals waiting for approval.
#[utoipa::path(get, path = "/api/v1/devices", tag = "devices",
    responses(
        (status = 200, body = Vec<DeviceView>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<WebState>,
) -> ApiResult<Json<std::sync::Arc<Vec<DeviceView>>>> {
    view::devices(&state)
        .await
        .map(Json)
        .map_err(Problem::ledger)
}

/// One device, by name.
#[utoipa::path(get, path = "/api/v1/devices/{name}", tag = "devices",
    params(("name" = String, Path, description = "The device's name ([[device]] name, or `ADMS <serial>` for a held terminal)")),
    responses(
        (status = 200, body = DeviceView),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn one(
    State(state): State<WebState>,
    Path(name): Path<String>,
) -> ApiResult<Json<DeviceView>> {
    find(&state, &name).await.map(Json)
}

pub async fn find(state: &WebState, name: &str) -> ApiResult<DeviceView> {
    view::devices(state)
        .await
        .map_err(Problem::ledger)?
        .iter()
        .find(|device| device.name == name)
        .cloned()
        .ok_or_else(|| {
            Problem::not_found(format!(
                "no device is called '{name}'; GET /api/v1/devices lists them"
            ))
        })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CommandsQuery {
    /// How many, newest first (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u32>,
}

/// A pushing terminal's commands (queued, handed over, answered), newest first.
#[utoipa::path(get, path = "/api/v1/devices/{name}/commands", tag = "devices",
    params(("name" = String, Path, description = "The device's name"), CommandsQuery),
    responses(
        (status = 200, body = Vec<AdmsCommand>, description = "Passwords in user records shown as •••"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn commands(
    State(state): State<WebState>,
    Path(name): Path<String>,
    ApiQuery(query): ApiQuery<CommandsQuery>,
) -> ApiResult<Json<Vec<AdmsCommand>>> {
    let device = find(&state, &name).await?;
    let Some(serial) = device.serial.filter(|_| device.kind == "adms") else {
        return Err(Problem::bad_request(format!(
            "'{name}' does not push (it is read), so it takes no commands"
        )));
    };
    let limit = super::page_size(query.limit.map(u64::from), 50, 500)?;
    let mut commands = state
        .reader
        .commands(Some(&serial), limit)
        .await
        .map_err(Problem::ledger)?;
    for command in &mut commands {
        command.command = crate::adms::user_control::redacted(&command.command);
    }
    Ok(Json(commands))
}
