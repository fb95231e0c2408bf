//! The simulated server's HTTP side, answering as djangorestframework (and its JWT
//! plug-in) does on a real BioTime: same routes, same status codes, same bodies.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::dataset::{SimTerminal, SimTransaction};
use super::{Shared, SimStats, wire};

const NOT_FOUND_PAGE: &str = "<!DOCTYPE html><html><head><title>Page not found</title></head>\
    <body><h1>Page not found</h1><p>The requested page does not exist.</p></body></html>";

struct IssuedToken {
    jwt: bool,
    expires_at: Option<i64>,
    revoked: bool,
}

pub(crate) struct SimState {
    pub transactions: Vec<SimTransaction>,
    terminals: Vec<SimTerminal>,
    tokens: HashMap<String, IssuedToken>,
    pub stats: SimStats,
    next_id: i64,
    issued: u64,
}

impl SimState {
    pub fn new(transactions: Vec<SimTransaction>, terminals: Vec<SimTerminal>) -> SimState {
        let next_id = transactions.iter().map(|row| row.id).max().unwrap_or(0) + 1;
        SimState {
            transactions,
            terminals,
            tokens: HashMap::new(),
            stats: SimStats::default(),
            next_id,
            issued: 0,
        }
    }

    pub fn upload(&mut self, rows: Vec<SimTransaction>) {
        for mut row in rows {
            row.id = self.next_id;
            self.next_id += 1;
            self.transactions.push(row);
        }
    }

    pub fn expire_tokens(&mut self) {
        for token in self.tokens.values_mut() {
            token.revoked = true;
        }
    }

    fn authenticate(&mut self, headers: &HeaderMap) -> Result<(), Box<Response>> {
        let header = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let now = chrono::Utc::now().timestamp();
        let verdict = match header.split_once(' ') {
            Some(("JWT", token)) => match self.tokens.get(token) {
                Some(issued) if issued.jwt => {
                    let expired = issued.revoked || issued.expires_at.is_some_and(|exp| now >= exp);
                    if expired {
                        Err("Signature has expired.")
                    } else {
                        Ok(())
                    }
                }
                _ => Err("Error decoding signature."),
            },
            Some(("Token", token)) => match self.tokens.get(token) {
                Some(issued) if !issued.jwt && !issued.revoked => Ok(()),
                _ => Err("Invalid token."),
            },
            _ => Err("Authentication credentials were not provided."),
        };
        verdict.map_err(|detail| {
            self.stats.unauthorized += 1;
            Box::new(
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "JWT realm=\"api\"")],
                    axum::Json(json!({ "detail": detail })),
                )
                    .into_response(),
            )
        })
    }
}

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/jwt-api-token-auth/",
            post(|state, headers, body| login(state, headers, body, true)),
        )
        .route(
            "/api-token-auth/",
            post(|state, headers, body| login(state, headers, body, false)),
        )
        .route("/iclock/api/transactions/", get(transactions))
        .route("/iclock/api/terminals/", get(terminals))
        // BioTime 9.5 answers unknown paths with 200 and an HTML page.
        .fallback(|| async { html(StatusCode::OK) })
        .with_state(shared)
}

fn html(status: StatusCode) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        NOT_FOUND_PAGE,
    )
        .into_response()
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

async fn login(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
    jwt: bool,
) -> Response {
    let options = shared.options();
    if (jwt && !options.jwt_route) || (!jwt && !options.token_route) {
        return html(StatusCode::NOT_FOUND);
    }
    let fields = credentials(&headers, &body);
    let mut missing = serde_json::Map::new();
    for field in ["username", "password"] {
        if fields.get(field).is_none_or(|value| value.is_empty()) {
            missing.insert(field.into(), json!(["This field is required."]));
        }
    }
    let mut state = shared.state();
    if !missing.is_empty() {
        state.stats.failed_logins += 1;
        return json_response(StatusCode::BAD_REQUEST, Value::Object(missing));
    }
    if fields.get("username") != Some(&options.username)
        || fields.get("password") != Some(&options.password)
    {
        state.stats.failed_logins += 1;
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"non_field_errors": ["Unable to log in with provided credentials."]}),
        );
    }
    state.issued += 1;
    let (token, expires_at) = if jwt {
        let now = chrono::Utc::now().timestamp();
        let expires_at = now + options.jwt_ttl.as_secs_f64().ceil() as i64;
        (
            jwt_token(&options.username, now, expires_at, state.issued),
            Some(expires_at),
        )
    } else {
        // DRF keeps one token per user: logging in again returns the same token.
        let digest = Sha256::digest(format!("token:{}", options.username).as_bytes());
        (
            digest[..20].iter().map(|b| format!("{b:02x}")).collect(),
            None,
        )
    };
    state.tokens.insert(
        token.clone(),
        IssuedToken {
            jwt,
            expires_at,
            revoked: false,
        },
    );
    state.stats.logins += 1;
    json_response(StatusCode::OK, json!({ "token": token }))
}

/// JSON or form-encoded credentials, as both are accepted by BioTime.
fn credentials(headers: &HeaderMap, body: &[u8]) -> HashMap<String, String> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.contains("json"));
    if is_json {
        let parsed: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        ["username", "password"]
            .iter()
            .filter_map(|key| {
                parsed
                    .get(*key)
                    .and_then(Value::as_str)
                    .map(|value| ((*key).to_owned(), value.to_owned()))
            })
            .collect()
    } else {
        form_urlencoded::parse(body).into_owned().collect()
    }
}

fn jwt_token(username: &str, issued_at: i64, expires_at: i64, serial: u64) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(r#"{"typ":"JWT","alg":"HS256"}"#);
    let payload = engine.encode(
        json!({
            "user_id": 1,
            "username": username,
            "exp": expires_at,
            "email": "",
            "orig_iat": issued_at,
            "jti": serial,
        })
        .to_string(),
    );
    let signature = engine.encode(Sha256::digest(format!("sim-secret.{header}.{payload}")));
    format!("{header}.{payload}.{signature}")
}

fn licence_denied() -> Response {
    json_response(
        StatusCode::FORBIDDEN,
        json!({"detail": "API module is not licensed. Please contact your supplier to activate the API licence."}),
    )
}

fn invalid_page() -> Response {
    json_response(StatusCode::NOT_FOUND, json!({"detail": "Invalid page."}))
}

async fn transactions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let options = shared.options();
    if !options.page_delay.is_zero() {
        tokio::time::sleep(options.page_delay).await;
    }
    let params: Vec<(String, String)> =
        form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let param = |name: &str| {
        params
            .iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    let mut state = shared.state();
    state.stats.transaction_pages += 1;
    if let Err(response) = state.authenticate(&headers) {
        return *response;
    }
    if options.no_licence {
        return licence_denied();
    }
    let page_size = param("page_size")
        .or_else(|| param("limit"))
        .and_then(|size| size.parse::<usize>().ok())
        .filter(|size| *size > 0)
        .unwrap_or(10);
    let Some(page) = param("page").map_or(Some(1), |page| page.parse::<usize>().ok()) else {
        return invalid_page();
    };
    let mut rows: Vec<&SimTransaction> = state
        .transactions
        .iter()
        .filter(|row| param("start_time").is_none_or(|start| row.punch_time.as_str() >= start))
        .filter(|row| param("end_time").is_none_or(|end| row.punch_time.as_str() <= end))
        .filter(|row| param("emp_code").is_none_or(|code| row.emp_code == code))
        .filter(|row| param("terminal_sn").is_none_or(|sn| row.terminal_sn == sn))
        .collect();
    if !options.ignore_ordering {
        match param("ordering") {
            Some("punch_time") => {
                rows.sort_by(|a, b| a.punch_time.cmp(&b.punch_time).then(a.id.cmp(&b.id)))
            }
            Some("-punch_time") => {
                rows.sort_by(|a, b| b.punch_time.cmp(&a.punch_time).then(b.id.cmp(&a.id)))
            }
            Some("upload_time") => {
                rows.sort_by(|a, b| a.upload_time.cmp(&b.upload_time).then(a.id.cmp(&b.id)))
            }
            Some("-upload_time") => {
                rows.sort_by(|a, b| b.upload_time.cmp(&a.upload_time).then(b.id.cmp(&a.id)))
            }
            // DRF ignores orderings it does not know; the default is ascending id.
            _ => {}
        }
    }
    let count = rows.len();
    let pages = count.div_ceil(page_size).max(1);
    if page == 0 || page > pages {
        return invalid_page();
    }
    let data: Vec<Value> = rows
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|row| wire::transaction(row))
        .collect();
    let link = |target: usize| {
        let mut serializer = form_urlencoded::Serializer::new(String::new());
        for (key, value) in params.iter().filter(|(key, _)| key != "page") {
            serializer.append_pair(key, value);
        }
        serializer.append_pair("page", &target.to_string());
        Value::String(format!(
            "{}/iclock/api/transactions/?{}",
            options.public_url,
            serializer.finish()
        ))
    };
    let next = if page < pages {
        link(page + 1)
    } else {
        Value::Null
    };
    let previous = if page > 1 {
        link(page - 1)
    } else {
        Value::Null
    };
    json_response(
        StatusCode::OK,
        json!({"count": count, "next": next, "previous": previous, "msg": "", "code": 0, "data": data}),
    )
}

async fn terminals(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let options = shared.options();
    let mut state = shared.state();
    if let Err(response) = state.authenticate(&headers) {
        return *response;
    }
    if options.no_licence {
        return licence_denied();
    }
    let data: Vec<Value> = state
        .terminals
        .iter()
        .map(|terminal| {
            let punches = state
                .transactions
                .iter()
                .filter(|row| row.terminal_sn == terminal.sn)
                .count();
            wire::terminal(terminal, punches)
        })
        .collect();
    json_response(
        StatusCode::OK,
        json!({"count": data.len(), "next": null, "previous": null, "msg": "", "code": 0, "data": data}),
    )
}
