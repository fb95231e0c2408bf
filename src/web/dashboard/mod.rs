//! The dashboard: pages rendered on the server (maud templates, escaped by
//! construction), made live by htmx, which reloads the parts of a page when the API's
//! event stream says something happened. Its three files (htmx, a small script, a
//! stylesheet) are compiled into the binary, so it works on a school LAN with no
//! internet. Pages need a session (the sign-in page makes one); their actions go
//! through the API with the session's CSRF token.

mod layout;
mod pages;

use axum::Router;
use axum::extract::{Form, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::html;
use serde::Deserialize;

use super::WebState;
use super::auth;

const HTMX: &str = include_str!("assets/htmx.min.js");
const SCRIPT: &str = include_str!("assets/dashboard.js");
const STYLE: &str = include_str!("assets/dashboard.css");

pub fn router(state: WebState) -> Router {
    let pages = Router::new()
        .route("/", get(pages::overview))
        .route("/parts/overview", get(pages::overview_part))
        .route("/punches", get(pages::punches))
        .route("/parts/punches", get(pages::punches_part))
        .route("/problems", get(pages::problems))
        .route("/parts/problems", get(pages::problems_part))
        .route("/devices/{name}", get(pages::device))
        .route("/parts/devices/{name}", get(pages::device_part))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            signed_in,
        ));
    Router::new()
        .merge(pages)
        .route("/login", get(login_page).post(login))
        // Signing out needs no CSRF token: another site can at worst sign the user out.
        .route("/logout", post(logout))
        .route(
            "/assets/htmx.min.js",
            get(|| asset(HTMX, "text/javascript")),
        )
        .route(
            "/assets/dashboard.js",
            get(|| asset(SCRIPT, "text/javascript")),
        )
        .route("/assets/dashboard.css", get(|| asset(STYLE, "text/css")))
        .fallback(not_found)
        .with_state(state)
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            // The assets change only with the binary; the pages are never cached.
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Pages need a session: without one, the browser goes to sign in.
async fn signed_in(State(state): State<WebState>, mut request: Request, next: Next) -> Response {
    match state.auth.caller(request.headers()) {
        Some(caller) => {
            if let Err(problem) = auth::allowed(&caller, request.method(), request.headers()) {
                return problem.into_response();
            }
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        None => Redirect::to("/login").into_response(),
    }
}

/// Unknown paths: a problem document under `/api/`, a page elsewhere.
async fn not_found(uri: axum::http::Uri) -> Response {
    if uri.path().starts_with("/api/") {
        return super::problem::Problem::not_found(format!(
            "{} is not part of the API; see /api/openapi.json",
            uri.path()
        ))
        .into_response();
    }
    let page = layout::bare(
        "Not found",
        html! { p { "There is no page here. " a href="/" { "Back to the overview" } } },
    );
    (StatusCode::NOT_FOUND, page).into_response()
}

#[derive(Debug, Deserialize)]
struct Once {
    once: Option<String>,
}

async fn login_page(State(state): State<WebState>, Query(query): Query<Once>) -> Response {
    if let Some(token) = query.once.as_deref() {
        return match state.auth.redeem_once(token) {
            Some((session, _)) => signed(&state, &session),
            None => login_form(
                &state,
                Some(
                    "That sign-in link was used already or is not the latest: restart `iclock-sync serve` for a new one, or set a password with `iclock-sync password`.",
                ),
                StatusCode::UNAUTHORIZED,
            ),
        };
    }
    login_form(&state, None, StatusCode::OK)
}

fn login_form(state: &WebState, problem: Option<&str>, status: StatusCode) -> Response {
    let page = layout::bare(
        "Sign in",
        html! {
            section.login {
                h1 { "iclock-sync" }
                @if let Some(problem) = problem { p.error role="alert" { (problem) } }
                @if state.auth.has_password() {
                    form method="post" action="/login" {
                        label { "Password" input type="password" name="password" autocomplete="current-password" required autofocus; }
                        button type="submit" { "Sign in" }
                    }
                } @else {
                    p { "No dashboard password is set. Use the one-time sign-in link `iclock-sync serve` printed when it started, or set a password on the server:" }
                    p { code { "iclock-sync password" } }
                    p.muted { "then restart the service." }
                }
            }
        },
    );
    (status, page).into_response()
}

#[derive(Debug, Deserialize)]
struct Password {
    password: String,
}

async fn login(
    State(state): State<WebState>,
    headers: HeaderMap,
    Form(form): Form<Password>,
) -> Response {
    if cross_site(&headers) {
        return login_form(
            &state,
            Some("Sign in from this dashboard's own page."),
            StatusCode::FORBIDDEN,
        );
    }
    match state.auth.sign_in(form.password).await {
        Some((session, _)) => signed(&state, &session),
        None => login_form(
            &state,
            Some("That password is not right."),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

/// A form posted from another site (login CSRF).
fn cross_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    match (
        headers
            .get(header::ORIGIN)
            .and_then(|value| value.to_str().ok()),
        host,
    ) {
        (Some(origin), Some(host)) => origin.split_once("://").map(|(_, rest)| rest) != Some(host),
        _ => false,
    }
}

fn signed(state: &WebState, session: &str) -> Response {
    (
        [(header::SET_COOKIE, state.auth.session_cookie(session))],
        Redirect::to("/"),
    )
        .into_response()
}

async fn logout(State(state): State<WebState>, headers: HeaderMap) -> Response {
    if let Some(session) = auth::session_cookie(&headers) {
        state.auth.close_session(session);
    }
    (
        [(header::SET_COOKIE, state.auth.cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response()
}
