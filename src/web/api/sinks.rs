//! `/api/v1/sinks`, `/api/v1/refusals`, `/api/v1/quarantine`, `/api/v1/cycles`: how
//! each destination stands, what was refused and why, and the history of cycles.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::ledger::{QuarantineRecord, Refusal};
use crate::web::WebState;
use crate::web::problem::{ApiQuery, ApiResult, Problem};

/// How a sink stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct SinkView {
    /// `sqlite`, `firestore`, `frappe`, `postgres`…, or the name given to it.
    pub name: String,
    /// Where it writes (credentials never shown).
    pub target: String,
    /// Punches it took in the cycles that started today.
    pub delivered_today: u64,
    /// Punches waiting for it (new, or failed and due again).
    pub pending: u64,
    /// Of those, how many failed at least once.
    pub failing: u64,
    /// When the next failed punch is tried again (UTC).
    pub next_retry: Option<String>,
    /// Refused for good until retried.
    pub rejected: u64,
    /// Nobody with the PIN at the sink, until retried.
    pub unmapped: u64,
    /// Whether it could not be opened at the last cycle.
    pub down: bool,
    /// The most frequent reasons of its refusals.
    pub top_reasons: Vec<ReasonCount>,
    /// The PINs it could not map, most frequent first.
    pub unmapped_pins: Vec<ReasonCount>,
}

/// A reason (or PIN) and how many punches it applies to.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReasonCount {
    pub reason: String,
    pub punches: u64,
}

fn counts(pairs: Vec<(String, u64)>) -> Vec<ReasonCount> {
    pairs
        .into_iter()
        .map(|(reason, punches)| ReasonCount { reason, punches })
        .collect()
}

/// Every configured sink.
#[utoipa::path(get, path = "/api/v1/sinks", tag = "sinks",
    responses(
        (status = 200, body = Vec<SinkView>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(State(state): State<WebState>) -> ApiResult<Json<Vec<SinkView>>> {
    sinks(&state).await.map(Json)
}

pub async fn sinks(state: &WebState) -> ApiResult<Vec<SinkView>> {
    let down = state.metrics.sinks_down();
    let standings = state
        .reader
        .sink_standings()
        .await
        .map_err(Problem::ledger)?;
    Ok(standings
        .into_iter()
        .map(|sink| SinkView {
            down: down.contains(&sink.name),
            name: sink.name,
            target: sink.target,
            delivered_today: sink.delivered_today,
            pending: sink.pending,
            failing: sink.failing,
            next_retry: sink.next_retry,
            rejected: sink.rejected,
            unmapped: sink.unmapped,
            top_reasons: counts(sink.top_reasons),
            unmapped_pins: counts(sink.unmapped_pins),
        })
        .collect())
}

/// Punches the sinks refused (rejected, or no such PIN there), grouped by sink and
/// reason: each group can be retried with POST /api/v1/retry.
#[utoipa::path(get, path = "/api/v1/refusals", tag = "sinks",
    responses(
        (status = 200, body = Vec<Refusal>),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refusals(State(state): State<WebState>) -> ApiResult<Json<Vec<Refusal>>> {
    state
        .reader
        .refusals()
        .await
        .map(Json)
        .map_err(Problem::ledger)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// How many, newest first (default 100 for the quarantine, 20 for cycles; at most 1,000).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<u32>,
}

/// Records refused before any sink saw them (they cannot be punches), newest first.
#[utoipa::path(get, path = "/api/v1/quarantine", tag = "sinks",
    params(PageQuery),
    responses(
        (status = 200, body = Vec<QuarantineRecord>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn quarantine(
    State(state): State<WebState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<QuarantineRecord>>> {
    let limit = super::page_size(query.limit.map(u64::from), 100, 1_000)?;
    state
        .reader
        .quarantined(limit, None)
        .await
        .map(Json)
        .map_err(Problem::ledger)
}

/// The reports of the last cycles, newest first (what `iclock-sync sync --json` prints).
#[utoipa::path(get, path = "/api/v1/cycles", tag = "sinks",
    params(PageQuery),
    responses(
        (status = 200, body = Vec<Object>),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn cycles(
    State(state): State<WebState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> ApiResult<Json<Vec<Value>>> {
    let limit = super::page_size(query.limit.map(u64::from), 20, 1_000)?;
    state
        .reader
        .cycles(limit)
        .await
        .map(Json)
        .map_err(Problem::ledger)
}
