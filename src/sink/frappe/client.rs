//! HTTP to one Frappe site: `Authorization: token key:secret` (marked sensitive, so it
//! never appears in logs), an optional `Host` for benches serving several sites,
//! retries with back-off for what passes (429, 502, 503, 504, a dropped connection, a
//! database that went away) for at most `retry_for`, and the checkin method found at
//! `hrms.…` (Frappe HR) or, on ERPNext ≤ 13, `erpnext.…`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use reqwest::Method;
use reqwest::header::{AUTHORIZATION, HOST, HeaderValue, RETRY_AFTER};
use serde_json::Value;
use tokio::time::Instant;

use super::answer::ErrorAnswer;
use super::config::FrappeConfig;
use crate::http_client::{self, BodyError, ClientOptions, Redirects};

const ADD_LOG: &str =
    "hr.doctype.employee_checkin.employee_checkin.add_log_based_on_employee_field";

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// Frappe answered with an error that retrying will not change.
    Answer(ErrorAnswer),
    /// Frappe could not be reached, or kept answering "try later", for `retry_for`.
    Unreachable(String),
}

impl CallError {
    pub fn describe(&self) -> String {
        match self {
            CallError::Answer(answer) => format!(
                "Frappe answered HTTP {}{}: {}",
                answer.status,
                if answer.exc_type.is_empty() {
                    String::new()
                } else {
                    format!(" {}", answer.exc_type)
                },
                answer.message
            ),
            CallError::Unreachable(problem) => problem.clone(),
        }
    }
}

pub struct FrappeClient {
    http: reqwest::Client,
    base: String,
    authorization: HeaderValue,
    host: Option<HeaderValue>,
    retry_for: Duration,
    /// The site is ERPNext ≤ 13: the checkin method lives under `erpnext.`.
    legacy_method: AtomicBool,
    /// Why the site is out of reach, for the rest of the cycle.
    unreachable: Mutex<Option<String>>,
}

impl FrappeClient {
    pub fn new(config: &FrappeConfig) -> Result<FrappeClient, String> {
        let mut authorization = HeaderValue::from_str(&format!(
            "token {}:{}",
            config.api_key,
            config.api_secret.expose()
        ))
        .map_err(|_| "api_key or api_secret holds characters that cannot be sent".to_owned())?;
        authorization.set_sensitive(true);
        let host = match &config.host {
            Some(host) => Some(
                HeaderValue::from_str(host)
                    .map_err(|_| format!("host '{host}' cannot be sent as a Host header"))?,
            ),
            None => None,
        };
        // Every request carries the key: same-origin redirects only.
        let http = http_client::build(&ClientOptions {
            timeout: config.timeout,
            accept_invalid_certs: config.accept_invalid_certs,
            ca_file: config.ca_file.as_deref(),
            redirects: Redirects::SameOrigin,
        })?;
        Ok(FrappeClient {
            http,
            base: config.url.clone(),
            authorization,
            host,
            retry_for: config.retry_for,
            legacy_method: AtomicBool::new(false),
            unreachable: Mutex::new(None),
        })
    }

    /// A new cycle: try the site again even if it was out of reach.
    pub fn reset(&self) {
        *self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    fn still_unreachable(&self) -> Option<String> {
        self.unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// `GET /api/resource/<doctype>` with these query parameters; the `data` list.
    pub async fn list(
        &self,
        doctype: &str,
        parameters: &[(&str, String)],
    ) -> Result<Vec<Value>, CallError> {
        let path = list_path(doctype, parameters);
        let body = self.send(Method::GET, &path, None, true).await?;
        Ok(body["data"].as_array().cloned().unwrap_or_default())
    }

    /// `GET /api/resource/<doctype>/<name>`; the document.
    pub async fn document(&self, doctype: &str, name: &str) -> Result<Value, CallError> {
        let path = format!("/api/resource/{}/{}", encode(doctype), encode(name));
        Ok(self.send(Method::GET, &path, None, true).await?["data"].take())
    }

    /// `PUT /api/resource/<doctype>/<name>` with `changes`.
    pub async fn update(
        &self,
        doctype: &str,
        name: &str,
        changes: &Value,
    ) -> Result<(), CallError> {
        let path = format!("/api/resource/{}/{}", encode(doctype), encode(name));
        self.send(Method::PUT, &path, Some(changes), true)
            .await
            .map(drop)
    }

    /// `GET /api/method/<method>` once, without retries; the `message`.
    pub async fn probe(&self, method: &str) -> Result<Value, CallError> {
        let path = format!("/api/method/{method}");
        Ok(self.send(Method::GET, &path, None, false).await?["message"].take())
    }

    /// `GET /api/resource/<doctype>` once, without retries (see [`Self::list`]).
    pub async fn probe_list(
        &self,
        doctype: &str,
        parameters: &[(&str, String)],
    ) -> Result<Vec<Value>, CallError> {
        let path = list_path(doctype, parameters);
        let body = self.send(Method::GET, &path, None, false).await?;
        Ok(body["data"].as_array().cloned().unwrap_or_default())
    }

    /// `add_log_based_on_employee_field` with `arguments`; the created checkin. Tries
    /// the other method path once when the site has no method at the current one.
    pub async fn add_log(&self, arguments: &Value) -> Result<Value, CallError> {
        let mut switched = false;
        loop {
            let legacy = self.legacy_method.load(Ordering::Relaxed);
            let app = if legacy { "erpnext" } else { "hrms" };
            let path = format!("/api/method/{app}.{ADD_LOG}");
            match self.send(Method::POST, &path, Some(arguments), true).await {
                Ok(mut body) => return Ok(body["message"].take()),
                Err(CallError::Answer(answer)) if answer.is_missing_method() && !switched => {
                    tracing::info!(
                        "{} has no {app}.{ADD_LOG}; trying the {} path",
                        self.base,
                        if legacy { "Frappe HR" } else { "ERPNext 13" }
                    );
                    // Another request may have switched already; flip from what we used.
                    self.legacy_method.store(!legacy, Ordering::Relaxed);
                    switched = true;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `frappe.client.insert_many` with `docs` (at most 200); the created names, in
    /// order. All or nothing: any failing document fails the request.
    pub async fn insert_many(&self, docs: &[Value]) -> Result<Vec<String>, CallError> {
        let path = "/api/method/frappe.client.insert_many";
        let body = serde_json::json!({ "docs": docs });
        let mut answer = self.send(Method::POST, path, Some(&body), true).await?;
        Ok(answer["message"]
            .take()
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .map(|name| name.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    /// One request, retried while the failure is one that passes (when `patient`;
    /// otherwise such a failure is reported at once and the site not marked out of
    /// reach).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        patient: bool,
    ) -> Result<Value, CallError> {
        let deadline = Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(500);
        loop {
            if let Some(problem) = self.still_unreachable() {
                return Err(CallError::Unreachable(problem));
            }
            let mut request = self
                .http
                .request(method.clone(), format!("{}{path}", self.base))
                .header(AUTHORIZATION, self.authorization.clone());
            if let Some(host) = &self.host {
                request = request.header(HOST, host.clone());
            }
            if let Some(body) = body {
                request = request.json(body);
            }
            let (problem, wait) = match request.send().await {
                Ok(response) if let Some(target) = http_client::redirect_target(&response) => {
                    return Err(CallError::Answer(ErrorAnswer::redirect(
                        response.status().as_u16(),
                        &self.base,
                        &target,
                    )));
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map(|seconds| Duration::from_secs(seconds.min(60)));
                    let text = match http_client::read_body(response, http_client::BODY_LIMIT).await
                    {
                        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                        Err(BodyError::TooLarge(limit)) => {
                            return Err(CallError::Answer(ErrorAnswer::oversized(status, limit)));
                        }
                        Err(BodyError::Transport(_)) => String::new(),
                    };
                    if (200..300).contains(&status) {
                        return serde_json::from_str(&text).map_err(|_| {
                            CallError::Answer(ErrorAnswer {
                                status,
                                exc_type: String::new(),
                                message: format!(
                                    "the answer to {path} is not JSON — is {} a Frappe site?",
                                    self.base
                                ),
                                exception: String::new(),
                            })
                        });
                    }
                    let answer = ErrorAnswer::parse(status, &text);
                    if !(matches!(status, 429 | 502 | 503 | 504)
                        || answer.is_transient_server_error())
                    {
                        return Err(CallError::Answer(answer));
                    }
                    (
                        format!(
                            "Frappe at {} answered HTTP {status} ({})",
                            self.base, answer.message
                        ),
                        retry_after,
                    )
                }
                Err(error) => (
                    format!("cannot reach Frappe at {}: {}", self.base, describe(&error)),
                    None,
                ),
            };
            if !patient {
                return Err(CallError::Unreachable(problem));
            }
            let wait = wait.unwrap_or(pause);
            if Instant::now() + wait > deadline {
                tracing::warn!("{problem}; giving up until the next cycle");
                *self
                    .unreachable
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner) = Some(problem.clone());
                return Err(CallError::Unreachable(problem));
            }
            tracing::debug!(?wait, "{problem}; retrying");
            tokio::time::sleep(wait).await;
            pause = (pause * 2).min(Duration::from_secs(8));
        }
    }
}

/// A transport error in a few words, without the URL (which the caller names).
fn describe(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer in time".to_owned();
    }
    let mut cause: &dyn std::error::Error = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    if error.is_connect() {
        format!("cannot connect ({cause})")
    } else {
        cause.to_string()
    }
}

fn list_path(doctype: &str, parameters: &[(&str, String)]) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (key, value) in parameters {
        query.append_pair(key, value);
    }
    format!("/api/resource/{}?{}", encode(doctype), query.finish())
}

/// Percent-encodes a path segment (doctype and document names hold spaces).
fn encode(segment: &str) -> String {
    form_urlencoded::byte_serialize(segment.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}
