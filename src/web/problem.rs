//! Errors of the HTTP API as problem documents (RFC 9457): a JSON body with the
//! status, a short title and a `detail` that says what to do, served as
//! `application/problem+json`. Secrets never go in one: the texts come from the
//! ledger's and the tool's own messages, which never hold them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// An error, as RFC 9457 describes it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem; `about:blank` when the status says it all.
    #[serde(rename = "type")]
    #[schema(example = "about:blank")]
    pub kind: String,
    /// The status's reason phrase or a short summary.
    #[schema(example = "Unauthorized")]
    pub title: String,
    /// The HTTP status code.
    #[schema(example = 401)]
    pub status: u16,
    /// What happened and what to do about it.
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Problem {
        Problem {
            kind: "about:blank".to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    pub fn unauthorized() -> Problem {
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "send an API token (Authorization: Bearer icsk_…); make one with `iclock-sync token new --scope read` on the server",
        )
    }

    pub fn forbidden(who: &str) -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            format!(
                "{who} may only look: this needs a token with the admin scope (`iclock-sync token new --scope admin`)"
            ),
        )
    }

    pub fn csrf() -> Problem {
        Problem::new(
            StatusCode::FORBIDDEN,
            "the page's security token is missing or stale: reload the page and try again",
        )
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, detail)
    }

    /// The ledger could not answer.
    pub fn ledger(error: impl std::fmt::Display) -> Problem {
        tracing::warn!("API: {error}");
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{error} — see `iclock-sync status` and the service's log"),
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

/// The API's answer: a value or a problem.
pub type ApiResult<T> = Result<T, Problem>;

/// `Query<T>` whose rejection is a problem document (400) saying what is wrong.
pub struct ApiQuery<T>(pub T);

impl<T, S> axum::extract::FromRequestParts<S> for ApiQuery<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|query| ApiQuery(query.0))
            .map_err(|rejection| Problem::bad_request(rejection.body_text()))
    }
}

/// `Json<T>` whose rejection is a problem document (400) saying what is wrong.
pub struct ApiJson<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for ApiJson<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = Problem;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Problem> {
        axum::Json::<T>::from_request(request, state)
            .await
            .map(|json| ApiJson(json.0))
            .map_err(|rejection| Problem::bad_request(rejection.body_text()))
    }
}
