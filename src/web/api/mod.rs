//! The HTTP API, `/api/v1`: JSON over the ledger, for integrations. Every route is
//! declared with `utoipa`, which writes the OpenAPI 3.1 document served at
//! `/api/openapi.json` from the same declarations — it cannot drift from the code.
//!
//! Reading needs a token of either scope; acting (POST) needs the admin scope. Errors
//! are problem documents ([`Problem`]).

pub mod actions;
pub mod devices;
pub mod events;
pub mod punches;
pub mod sinks;

use axum::Json;
use utoipa::openapi::OpenApi as Document;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::WebState;
use super::auth;
use super::problem::Problem;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "iclock-sync API",
        description = "Attendance punches from ZKTeco terminals, where each went, and the actions `iclock-sync` offers on the command line. Send `Authorization: Bearer <token>` (make one with `iclock-sync token new --scope read|admin`); POST needs the admin scope. Errors are RFC 9457 problem documents.",
    ),
    modifiers(&Security),
    security(("token" = [])),
    components(schemas(Problem, punches::Order, punches::DeliveryStateName)),
    tags(
        (name = "devices", description = "Terminals and servers punches come from"),
        (name = "punches", description = "Every punch read, and where it went"),
        (name = "sinks", description = "Where punches go, and what they refused"),
        (name = "events", description = "What happens, as it happens"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, document: &mut Document) {
        let components = document.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `iclock-sync token new`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))),
        );
    }
}

/// The API's routes and their document.
pub fn router(state: WebState) -> OpenApiRouter {
    let api = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(devices::list))
        .routes(routes!(devices::one))
        .routes(routes!(devices::commands))
        .routes(routes!(punches::list))
        .routes(routes!(punches::export))
        .routes(routes!(sinks::list))
        .routes(routes!(sinks::refusals))
        .routes(routes!(sinks::quarantine))
        .routes(routes!(sinks::cycles))
        .routes(routes!(actions::sync_device))
        .routes(routes!(actions::retry))
        .routes(routes!(actions::backfill))
        .routes(routes!(actions::queue_command))
        .routes(routes!(actions::approve))
        .routes(routes!(actions::reject))
        .routes(routes!(events::stream))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::api_caller,
        ))
        .with_state(state);
    let document = api.get_openapi().clone();
    api.route(
        "/api/openapi.json",
        axum::routing::get(move || async move { Json(document) }),
    )
}

/// A `limit` parameter: `default` when absent, else 1 to `most`, or what is wrong.
pub fn page_size(limit: Option<u64>, default: usize, most: usize) -> Result<usize, Problem> {
    match limit {
        None => Ok(default),
        Some(limit) if (1..=most as u64).contains(&limit) => Ok(limit as usize),
        Some(limit) => Err(Problem::bad_request(format!(
            "limit {limit} is out of range: use 1 to {most}"
        ))),
    }
}
