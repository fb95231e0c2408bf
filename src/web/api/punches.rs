//! `/api/v1/punches`: every punch read, with where it went, filtered by device, PIN,
//! wall-time range and delivery state, newest first, a page at a time (the answer's
//! `next` is the cursor of the page after); `/api/v1/punches.csv` the same as a CSV
//! file, streamed page by page so that a large export costs no memory.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::ledger::{DeliveryState, PunchDelivery, PunchQuery, PunchRecord, Seq};
use crate::web::WebState;
use crate::web::problem::{ApiQuery, ApiResult, Problem};

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;
/// Punches per ledger read while exporting.
const EXPORT_PAGE: usize = 2_000;

/// The filters of a punch search.
#[derive(Debug, Default, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PunchFilter {
    /// A device's name.
    pub device: Option<String>,
    /// A person's PIN (user ID on the terminal).
    pub pin: Option<String>,
    /// From this wall time on: `2026-03-01` or `2026-03-01 08:00:00`.
    pub from: Option<String>,
    /// Up to this wall time (a date alone: to the end of that day).
    pub to: Option<String>,
    /// Only punches in this delivery state (at `sink`, or at any sink).
    #[param(value_type = Option<DeliveryStateName>)]
    pub state: Option<String>,
    /// The sink `state` applies to.
    pub sink: Option<String>,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
    /// Punches per page (default 100, at most 1,000).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// `newest` (default) or `oldest` first.
    #[param(value_type = Option<Order>)]
    pub order: Option<String>,
}

/// A delivery state.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the values `state` takes
pub enum DeliveryStateName {
    Pending,
    Failed,
    Delivered,
    Already,
    Skipped,
    Withheld,
    Rejected,
    Unmapped,
}

/// The order of a page.
#[derive(Debug, ToSchema)]
#[schema(rename_all = "lowercase")]
#[allow(dead_code)] // documents the values `order` takes
pub enum Order {
    Newest,
    Oldest,
}

/// A page of punches.
#[derive(Debug, Serialize, ToSchema)]
pub struct PunchPage {
    pub punches: Vec<PunchView>,
    /// The cursor of the next page; absent on the last.
    pub next: Option<String>,
}

/// A punch and where it went.
#[derive(Debug, Serialize, ToSchema)]
pub struct PunchView {
    /// Its ID under the configured scheme (the sinks' document/row key).
    pub id: String,
    pub device: String,
    pub serial: String,
    /// The person's PIN.
    pub user_id: String,
    /// The device's wall time, `YYYY-MM-DD HH:MM:SS`.
    pub local_time: String,
    /// The device's time zone (IANA).
    pub timezone: String,
    /// in, out, break-out, break-in, OT-in, OT-out.
    pub punch: String,
    pub verify_mode: i32,
    pub work_code: String,
    /// zk, biotime or adms.
    pub source: String,
    /// When it was first read (UTC).
    pub read_at: String,
    pub deliveries: Vec<PunchDelivery>,
}

impl From<PunchRecord> for PunchView {
    fn from(record: PunchRecord) -> PunchView {
        PunchView {
            punch: crate::commands::punches::state_name(record.state),
            id: record.id,
            device: record.device,
            serial: record.serial,
            user_id: record.user_id,
            local_time: record.local_time,
            timezone: record.timezone,
            verify_mode: record.verify_mode,
            work_code: record.work_code,
            source: record.source,
            read_at: record.read_at,
            deliveries: record.sinks,
        }
    }
}

impl PunchFilter {
    /// The ledger query, or what is wrong with the filter.
    pub fn query(&self, limit: usize) -> Result<PunchQuery, Problem> {
        // A form sends empty fields: they are no filter.
        let from = given(&self.from)
            .map(|text| wall_time(text, "from", false))
            .transpose()?;
        let to = given(&self.to)
            .map(|text| wall_time(text, "to", true))
            .transpose()?;
        let state = match self.state.as_deref().filter(|text| !text.is_empty()) {
            None => None,
            Some(text) => Some(DeliveryState::parse(text).ok_or_else(|| {
                Problem::bad_request(format!(
                    "state '{text}' is not a delivery state: use pending, failed, delivered, already, skipped, withheld, rejected or unmapped"
                ))
            })?),
        };
        let newest_first = match self.order.as_deref() {
            None | Some("" | "newest") => true,
            Some("oldest") => false,
            Some(other) => {
                return Err(Problem::bad_request(format!(
                    "order '{other}' is not newest or oldest"
                )));
            }
        };
        let after = self
            .cursor
            .as_deref()
            .filter(|text| !text.is_empty())
            .map(cursor)
            .transpose()?;
        Ok(PunchQuery {
            device: given(&self.device).map(str::to_owned),
            pin: given(&self.pin).map(str::to_owned),
            since: from,
            until: to,
            state,
            sink: given(&self.sink).map(str::to_owned),
            limit,
            newest_first,
            after,
        })
    }

    /// Punches per page, or what is wrong with `limit`.
    pub fn limit(&self) -> Result<usize, Problem> {
        let limit = given(&self.limit)
            .map(|text| {
                text.parse::<u64>().map_err(|_| {
                    Problem::bad_request(format!(
                        "limit '{text}' is not a number of punches (1 to {MAX_LIMIT})"
                    ))
                })
            })
            .transpose()?;
        super::page_size(limit, DEFAULT_LIMIT, MAX_LIMIT)
    }
}

/// A filter's value, unless empty (a form sends empty fields: they are no filter).
fn given(value: &Option<String>) -> Option<&str> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// `2026-03-01` or `2026-03-01 08:00:00` (also with `T`) as the ledger's wall time.
fn wall_time(text: &str, name: &str, end_of_day: bool) -> Result<String, Problem> {
    let text = text.trim().replace('T', " ");
    if let Ok(time) = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M:%S") {
        return Ok(time.format("%Y-%m-%d %H:%M:%S").to_string());
    }
    if let Ok(time) = chrono::NaiveDateTime::parse_from_str(&text, "%Y-%m-%d %H:%M") {
        return Ok(time.format("%Y-%m-%d %H:%M:00").to_string());
    }
    if let Ok(day) = chrono::NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        let clock = if end_of_day { "23:59:59" } else { "00:00:00" };
        return Ok(format!("{} {clock}", day.format("%Y-%m-%d")));
    }
    Err(Problem::bad_request(format!(
        "{name} '{text}' is not a date or time: write 2026-03-01 or 2026-03-01 08:00:00 (the device's wall time)"
    )))
}

fn next_cursor(punch: &PunchRecord) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!("{}|{}", punch.local_time, punch.seq))
}

fn cursor(text: &str) -> Result<(String, Seq), Problem> {
    let bad = || {
        Problem::bad_request(
            "cursor is not one this API gave: pass the `next` of the previous page as it was",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(text.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (time, seq) = text.split_once('|').ok_or_else(bad)?;
    let seq = seq.parse::<Seq>().map_err(|_| bad())?;
    let time = wall_time(time, "cursor", false).map_err(|_| bad())?;
    Ok((time, seq))
}

/// Punches, newest first, a page at a time.
#[utoipa::path(get, path = "/api/v1/punches", tag = "punches",
    params(PunchFilter),
    responses(
        (status = 200, body = PunchPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 503, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    State(state): State<WebState>,
    ApiQuery(filter): ApiQuery<PunchFilter>,
) -> ApiResult<Json<PunchPage>> {
    search(&state, &filter).await.map(Json)
}

/// One page of a search (the dashboard's too).
pub async fn search(state: &WebState, filter: &PunchFilter) -> ApiResult<PunchPage> {
    let limit = filter.limit()?;
    // One more than asked tells whether there is a next page.
    let query = filter.query(limit + 1)?;
    let mut found = state
        .reader
        .punches(&query)
        .await
        .map_err(Problem::ledger)?;
    let next = (found.len() > limit).then(|| {
        found.truncate(limit);
        found.last().map(next_cursor)
    });
    Ok(PunchPage {
        punches: found.into_iter().map(PunchView::from).collect(),
        next: next.flatten(),
    })
}

/// The punches a search finds, every page, as a CSV file.
#[utoipa::path(get, path = "/api/v1/punches.csv", tag = "punches",
    params(PunchFilter),
    responses(
        (status = 200, content_type = "text/csv", body = String, description = "One line per punch, with its deliveries as sink=state;…"),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(
    State(state): State<WebState>,
    ApiQuery(filter): ApiQuery<PunchFilter>,
) -> ApiResult<Response> {
    // Every page is exported; a limit is only checked, like the search's.
    filter.limit()?;
    let first = filter.query(EXPORT_PAGE)?;
    let pages = futures::stream::unfold(Some(first), move |query| {
        let state = state.clone();
        async move {
            let mut query = query?;
            let found = match state.reader.punches(&query).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!("CSV export stopped: {error}");
                    return None;
                }
            };
            let mut text = String::new();
            crate::commands::punches::csv_rows(&found, &mut text);
            let next = (found.len() >= EXPORT_PAGE)
                .then(|| found.last().map(|last| (last.local_time.clone(), last.seq)))
                .flatten()
                .map(|after| {
                    query.after = Some(after);
                    query
                });
            Some((Ok::<_, std::convert::Infallible>(text), next))
        }
    });
    let body = futures::stream::once(async { Ok(crate::commands::punches::CSV_HEADER.to_owned()) })
        .chain(pages);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"punches.csv\"",
            ),
        ],
        Body::from_stream(body),
    )
        .into_response())
}

use futures::StreamExt as _;
