//! HTTP to one BioTime server: login on either route, token expiry, one re-login on a
//! 401, and the classification of every answer into something a user can act on.
//!
//! Login failures are never retried in a loop — BioTime can lock an account after
//! repeated bad logins — and after one, further attempts wait out a growing back-off.
//!
//! Credentials never leave for another address: the login (its body holds the
//! password) follows no redirect at all, and API calls (their header holds the token)
//! only redirects to the same origin; any other redirect is reported with its target.
//! Bodies are read with a ceiling (see [`crate::http_client`]).

use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, DATE, HeaderValue};
use reqwest::{Response, StatusCode};
use serde_json::Value;

use super::config::{AuthScheme, BiotimeConfig};
use crate::config::secret::Secret;
use crate::http_client::{self, BodyError, ClientOptions, Redirects};
use crate::source::{SourceError, SourceErrorKind};

/// Transient failures (timeouts, 5xx) are retried this many times per request.
const RETRIES: u32 = 2;
const FIRST_LOGIN_BACKOFF: Duration = Duration::from_secs(60);
const MAX_LOGIN_BACKOFF: Duration = Duration::from_secs(3600);

/// A successful answer whose body is JSON (parsed by the caller, which knows its shape).
#[derive(Debug)]
pub struct JsonAnswer {
    pub body: Bytes,
    /// The server's clock, from its `Date` header.
    pub server_time: Option<DateTime<Utc>>,
}

/// What a GET produced.
#[derive(Debug)]
pub enum Answer {
    Json(JsonAnswer),
    /// HTTP 404 (DRF's `{"detail":"Invalid page."}` past the last page).
    NotFound(String),
}

struct Session {
    header: HeaderValue,
    /// When to log in again before the JWT expires.
    refresh_at: Option<Instant>,
    lifetime: Option<Duration>,
}

pub struct BiotimeClient {
    /// API calls: same-origin redirects only.
    http: reqwest::Client,
    /// The login: no redirects.
    login_http: reqwest::Client,
    base: String,
    /// `device 'Main office' (http://...)`, the start of every message.
    who: String,
    device: String,
    username: String,
    password: Secret,
    scheme: AuthScheme,
    session: Option<Session>,
    login_blocked_until: Option<Instant>,
    login_backoff: Duration,
}

impl BiotimeClient {
    pub fn new(device: &str, config: &BiotimeConfig) -> Result<BiotimeClient, SourceError> {
        let client = |redirects| {
            http_client::build(&ClientOptions {
                timeout: config.timeout,
                accept_invalid_certs: config.accept_invalid_certs,
                ca_file: config.ca_file.as_deref(),
                redirects,
            })
            .map_err(|problem| {
                SourceError::new(
                    SourceErrorKind::Configuration,
                    format!("device '{device}' ({}): {problem}", config.url),
                )
            })
        };
        let http = client(Redirects::SameOrigin)?;
        let login_http = client(Redirects::Never)?;
        Ok(BiotimeClient {
            http,
            login_http,
            base: config.url.clone(),
            who: format!("device '{device}' ({})", config.url),
            device: device.to_owned(),
            username: config.username.clone(),
            password: config.password.clone(),
            scheme: config.auth,
            session: None,
            login_blocked_until: None,
            login_backoff: FIRST_LOGIN_BACKOFF,
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// The scheme in use (it changes if the configured login route does not exist).
    pub fn scheme(&self) -> AuthScheme {
        self.scheme
    }

    /// The current token's lifetime as issued, when it expires.
    pub fn token_lifetime(&self) -> Option<Duration> {
        self.session.as_ref().and_then(|session| session.lifetime)
    }

    /// GET `path_and_query` (starting with `/`) with authentication.
    pub async fn get(&mut self, path_and_query: &str) -> Result<Answer, SourceError> {
        let url = format!("{}{}", self.base, path_and_query);
        let mut relogged = false;
        loop {
            let header = self.session_header().await?;
            let response = self
                .send_with_retries(&self.http, |http| {
                    http.get(&url).header(AUTHORIZATION, header.clone())
                })
                .await?;
            if let Some(target) = http_client::redirect_target(&response) {
                return Err(self.error(
                    SourceErrorKind::Configuration,
                    format!(
                        "BioTime redirected {path_and_query} to {target}; the token is not sent to another address — if BioTime moved (or only answers on https://), set url in [[device]] '{}' to where it answers",
                        self.device
                    ),
                ));
            }
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let detail = http_client::excerpt(response).await;
                if relogged {
                    return Err(self.error(
                        SourceErrorKind::Credentials,
                        format!(
                            "BioTime rejects a token it has just issued ({detail}) — check that user '{}' may use the API",
                            self.username
                        ),
                    ));
                }
                tracing::info!(device = %self.device, %detail, "BioTime answered 401; logging in again");
                self.session = None;
                relogged = true;
                continue;
            }
            return self.classify(response).await;
        }
    }

    /// Logs in now (used by `devices` to report on credentials separately).
    pub async fn login(&mut self) -> Result<(), SourceError> {
        if let Some(until) = self.login_blocked_until {
            let now = Instant::now();
            if now < until {
                return Err(self.error(
                    SourceErrorKind::Credentials,
                    format!(
                        "the last login was refused; not trying again for {} s so that BioTime does not lock the account — fix username/password in [[device]] '{}'",
                        (until - now).as_secs(),
                        self.device
                    ),
                ));
            }
        }
        let mut tried_other_route = false;
        loop {
            let url = format!("{}{}", self.base, self.scheme.login_path());
            let body = serde_json::json!({
                "username": self.username,
                "password": self.password.expose(),
            });
            let response = self
                .send_with_retries(&self.login_http, |http| http.post(&url).json(&body))
                .await?;
            if let Some(target) = http_client::redirect_target(&response) {
                return Err(self.error(
                    SourceErrorKind::Configuration,
                    format!(
                        "the login was redirected to {target}; the password is never sent after a redirect — set url in [[device]] '{}' to the address BioTime answers on (with https:// if it redirects to HTTPS)",
                        self.device
                    ),
                ));
            }
            let status = response.status();
            if matches!(
                status,
                StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
            ) && !tried_other_route
            {
                let other = self.scheme.other();
                tracing::info!(
                    device = %self.device,
                    "{} answered {status}; trying {}",
                    self.scheme.login_path(),
                    other.login_path()
                );
                self.scheme = other;
                tried_other_route = true;
                continue;
            }
            return self.accept_login(response).await;
        }
    }

    async fn accept_login(&mut self, response: Response) -> Result<(), SourceError> {
        let status = response.status();
        let server_time = header_time(&response);
        if status == StatusCode::BAD_REQUEST {
            let detail = http_client::excerpt(response).await;
            self.block_logins();
            let problem = if detail.contains("non_field_errors")
                || detail.contains("Unable to log in")
            {
                format!(
                    "wrong username/password (BioTime says: {detail}) — fix username and password in [[device]] '{}'",
                    self.device
                )
            } else {
                format!(
                    "BioTime refused the login request ({detail}) — check username and password in [[device]] '{}'",
                    self.device
                )
            };
            return Err(self.error(SourceErrorKind::Credentials, problem));
        }
        if matches!(
            status,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ) {
            return Err(self.error(
                SourceErrorKind::Configuration,
                "neither /jwt-api-token-auth/ nor /api-token-auth/ exists here — the URL is not a BioTime server (check host and port)",
            ));
        }
        if !status.is_success() {
            return Err(match self.classify(response).await {
                Err(error) => error,
                Ok(_) => self.error(
                    SourceErrorKind::Protocol,
                    format!("unexpected answer {status} to the login"),
                ),
            });
        }
        let answer = self.expect_json(response).await?;
        let body: Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        let Some(token) = body.get("token").and_then(Value::as_str) else {
            return Err(self.error(
                SourceErrorKind::Protocol,
                "the login answer has no token — is this a BioTime API?",
            ));
        };
        let mut header = HeaderValue::from_str(&format!("{} {token}", self.scheme.header_prefix()))
            .map_err(|_| {
                self.error(
                    SourceErrorKind::Protocol,
                    "the login answer holds a malformed token",
                )
            })?;
        header.set_sensitive(true);
        let lifetime = match self.scheme {
            AuthScheme::Jwt => jwt_lifetime(token, server_time.or(answer.server_time)),
            AuthScheme::Token => None,
        };
        let refresh_at = lifetime.map(|lifetime| {
            let margin = (lifetime / 4).min(Duration::from_secs(60));
            Instant::now() + lifetime.saturating_sub(margin)
        });
        self.session = Some(Session {
            header,
            refresh_at,
            lifetime,
        });
        self.login_blocked_until = None;
        self.login_backoff = FIRST_LOGIN_BACKOFF;
        tracing::debug!(device = %self.device, ?lifetime, "logged in to BioTime");
        Ok(())
    }

    fn block_logins(&mut self) {
        self.login_blocked_until = Some(Instant::now() + self.login_backoff);
        self.login_backoff = (self.login_backoff * 2).min(MAX_LOGIN_BACKOFF);
    }

    async fn session_header(&mut self) -> Result<HeaderValue, SourceError> {
        let expired = self
            .session
            .as_ref()
            .is_none_or(|session| session.refresh_at.is_some_and(|at| Instant::now() >= at));
        if expired {
            if self.session.is_some() {
                tracing::debug!(device = %self.device, "token about to expire; logging in again");
            }
            self.session = None;
            self.login().await?;
        }
        match &self.session {
            Some(session) => Ok(session.header.clone()),
            None => Err(self.error(SourceErrorKind::Protocol, "no session after login")),
        }
    }

    async fn send_with_retries(
        &self,
        http: &reqwest::Client,
        request: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response, SourceError> {
        let mut attempt = 0;
        loop {
            let outcome = request(http).send().await;
            let transient = match &outcome {
                Ok(response) => is_busy(response.status()),
                Err(error) => error.is_timeout() || error.is_connect() || error.is_request(),
            };
            if !transient || attempt >= RETRIES {
                return match outcome {
                    Ok(response) if is_busy(response.status()) => {
                        let status = response.status();
                        let detail = http_client::excerpt(response).await;
                        Err(self.error(
                            SourceErrorKind::Unreachable,
                            format!("BioTime answered {status} ({detail}) — check the BioTime server's health and logs"),
                        ))
                    }
                    Ok(response) => Ok(response),
                    Err(error) => Err(self.transport_error(&error)),
                };
            }
            attempt += 1;
            let pause = Duration::from_millis(500 * 2u64.pow(attempt));
            tracing::debug!(device = %self.device, attempt, ?pause, "transient failure; retrying");
            tokio::time::sleep(pause).await;
        }
    }

    async fn classify(&self, response: Response) -> Result<Answer, SourceError> {
        let status = response.status();
        if status == StatusCode::NOT_FOUND {
            return Ok(Answer::NotFound(http_client::excerpt(response).await));
        }
        if status == StatusCode::FORBIDDEN {
            let detail = http_client::excerpt(response).await;
            let problem = if detail.to_lowercase().contains("licen") {
                format!(
                    "the BioTime API licence is missing ({detail}) — activate the API module in BioTime's licence settings"
                )
            } else {
                format!(
                    "BioTime forbids this (403: {detail}) — give user '{}' permission to read transactions",
                    self.username
                )
            };
            return Err(self.error(SourceErrorKind::Configuration, problem));
        }
        if !status.is_success() {
            let detail = http_client::excerpt(response).await;
            return Err(self.error(
                SourceErrorKind::Protocol,
                format!("unexpected answer {status} ({detail})"),
            ));
        }
        self.expect_json(response).await.map(Answer::Json)
    }

    async fn expect_json(&self, response: Response) -> Result<JsonAnswer, SourceError> {
        let server_time = header_time(&response);
        let is_html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.contains("html"));
        let bytes = match http_client::read_body(response, http_client::BODY_LIMIT).await {
            Ok(bytes) => bytes,
            Err(BodyError::Transport(error)) => return Err(self.transport_error(&error)),
            Err(too_large) => {
                return Err(self.error(
                    SourceErrorKind::Protocol,
                    format!("{too_large} — lower page_size, or check that the URL is BioTime's"),
                ));
            }
        };
        let starts_like_json = bytes
            .iter()
            .find(|byte| !byte.is_ascii_whitespace())
            .is_some_and(|byte| matches!(byte, b'{' | b'['));
        match bytes {
            body if starts_like_json && !is_html => Ok(JsonAnswer { body, server_time }),
            _ => Err(self.error(
                SourceErrorKind::Configuration,
                "the server answered with a web page, not JSON — this URL is not the BioTime API (use the BioTime web address, e.g. http://HOST:8081, without a path)",
            )),
        }
    }

    fn transport_error(&self, error: &reqwest::Error) -> SourceError {
        let cause = root_cause(error);
        let hint = if error.is_timeout() {
            "no answer in time — check that the server is up, or raise `timeout`"
        } else if error.is_connect() {
            "cannot connect — check the URL's host and port and that BioTime is running"
        } else {
            "the connection failed — check the network path to the server"
        };
        self.error(SourceErrorKind::Unreachable, format!("{hint} ({cause})"))
    }

    fn error(&self, kind: SourceErrorKind, problem: impl AsRef<str>) -> SourceError {
        SourceError::new(kind, format!("{}: {}", self.who, problem.as_ref()))
    }
}

/// Server errors and rate limiting: worth retrying, and not the user's configuration.
fn is_busy(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// The innermost cause, which is where "connection refused" lives.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn header_time(response: &Response) -> Option<DateTime<Utc>> {
    let text = response.headers().get(DATE)?.to_str().ok()?;
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// How long a JWT has left, judged against the server's clock when known (so a host
/// clock that is off does not make us refresh too late). The `Date` header drops the
/// fraction of a second, so the server may already be up to a second further on: one
/// second is taken off to stay on the safe side. A token that claims to live longer
/// than `MAX_TOKEN_LIFETIME` (a broken or hostile server: `exp = 1e19`, a `Date` in
/// 1970) is taken to live that long.
pub fn jwt_lifetime(token: &str, server_now: Option<DateTime<Utc>>) -> Option<Duration> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let expires = claims.get("exp")?.as_f64()?;
    let now = server_now.unwrap_or_else(Utc::now).timestamp() as f64;
    let left = (expires - now - 1.0).clamp(0.0, MAX_TOKEN_LIFETIME.as_secs_f64());
    Some(Duration::from_secs(left as u64))
}

/// The longest a token is trusted to live before logging in again.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(claims: &str) -> String {
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.sig",
            engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            engine.encode(claims)
        )
    }

    #[test]
    fn jwt_lifetime_is_read_from_exp_against_the_server_clock() {
        let now = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let token = token_with(&format!(
            r#"{{"user_id":1,"exp":{}}}"#,
            now.timestamp() + 300
        ));
        assert_eq!(
            jwt_lifetime(&token, Some(now)),
            Some(Duration::from_secs(299))
        );
        let expired = token_with(&format!(r#"{{"exp":{}}}"#, now.timestamp() - 5));
        assert_eq!(jwt_lifetime(&expired, Some(now)), Some(Duration::ZERO));
        assert_eq!(
            jwt_lifetime("e902da6a63aa944550f6841dec5c76ddd4a92bfc", None),
            None
        );
        assert_eq!(jwt_lifetime(&token_with(r#"{"user_id":1}"#), None), None);
        let epoch = DateTime::parse_from_rfc3339("1970-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        for hostile in [r#"{"exp":1e19}"#, r#"{"exp":-1e300}"#, r#"{"exp":1.7e308}"#] {
            let lifetime = jwt_lifetime(&token_with(hostile), Some(epoch)).unwrap();
            assert!(lifetime <= MAX_TOKEN_LIFETIME, "{hostile}: {lifetime:?}");
            let _ = Instant::now() + lifetime;
        }
    }
}
