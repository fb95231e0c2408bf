//! Who is asking: every request but `/health`, `/ready`, `/metrics`' scrape (token
//! only) and the sign-in page carries an API token (`Authorization: Bearer …`) or a
//! dashboard session cookie; without one the API answers 401 and the dashboard sends
//! the browser to sign in.
//!
//! - Tokens and the password are taken from the configuration file again when it
//!   changes (`token new`, `token revoke`, `password` work without a restart); a new
//!   password signs everyone out.
//! - Sessions live in memory (a restart signs everyone out), in an HttpOnly,
//!   SameSite=Strict cookie (Secure over HTTPS), and expire after 12 hours.
//! - Requests that change something need the admin scope and, from a browser session,
//!   the session's CSRF token in `X-CSRF-Token` (the dashboard's pages send it), so
//!   another site cannot act with the user's cookie.
//! - The one-time sign-in link: printed at start when no password or token is
//!   configured; its hash only is kept, and it works once.
//! - Password checks (argon2, deliberately slow) run two at a time off the async
//!   threads, and a wrong one waits a second, so guessing is slow and cannot starve
//!   the rest.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::WebState;
use super::problem::Problem;
use super::secrets;
use crate::config::serve::{Scope, ServeSettings};

pub const SESSION_COOKIE: &str = "iclock_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most (the oldest go first): sign-ins cannot fill the memory.
const SESSIONS_KEPT: usize = 1_000;

/// Who made a request, as the handlers see it.
#[derive(Debug, Clone)]
pub struct Caller {
    pub scope: Scope,
    /// The session's CSRF token (for the pages to send back); `None` for an API token.
    pub csrf: Option<String>,
    /// The token's name, or "dashboard", for the log of actions.
    pub who: String,
}

#[derive(Debug, Clone)]
struct Session {
    scope: Scope,
    csrf: String,
    expires: Instant,
}

/// The credentials `serve` accepts.
pub struct Auth {
    credentials: RwLock<Credentials>,
    /// The one-time link's token, hashed; taken when used.
    once: Mutex<Option<String>>,
    sessions: Mutex<HashMap<String, Session>>,
    checking: tokio::sync::Semaphore,
    pub secure_cookies: bool,
}

/// The configured ones, as hashes.
#[derive(Debug, PartialEq, Eq)]
struct Credentials {
    /// By stored hash: (name, scope).
    tokens: HashMap<String, (String, Scope)>,
    password_hash: Option<String>,
}

impl Credentials {
    fn of(settings: &ServeSettings) -> Credentials {
        Credentials {
            tokens: settings
                .tokens
                .iter()
                .map(|token| (token.hash.clone(), (token.name.clone(), token.scope)))
                .collect(),
            password_hash: settings.password_hash.clone(),
        }
    }
}

impl Auth {
    pub fn new(settings: &ServeSettings) -> Auth {
        Auth {
            credentials: RwLock::new(Credentials::of(settings)),
            once: Mutex::new(None),
            sessions: Mutex::new(HashMap::new()),
            checking: tokio::sync::Semaphore::new(2),
            secure_cookies: settings.tls.is_some(),
        }
    }

    /// Makes the one-time sign-in link's token (kept only as a hash); the caller
    /// prints it.
    pub fn issue_once(&self) -> Result<String, String> {
        let token = secrets::random_text()?;
        *self.once.lock().unwrap_or_else(PoisonError::into_inner) =
            Some(secrets::token_hash(&token));
        Ok(token)
    }

    /// Uses the one-time token: an admin session if it is the one.
    pub fn redeem_once(&self, token: &str) -> Option<(String, Caller)> {
        let mut once = self.once.lock().unwrap_or_else(PoisonError::into_inner);
        let matches = once.as_deref().is_some_and(|hash| {
            secrets::same(hash.as_bytes(), secrets::token_hash(token).as_bytes())
        });
        if !matches {
            return None;
        }
        *once = None;
        drop(once);
        self.open_session(Scope::Admin)
    }

    fn credentials(&self) -> std::sync::RwLockReadGuard<'_, Credentials> {
        self.credentials
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the credentials of a changed configuration; what changed, for the log
    /// (`None`: nothing). A new password ends every session.
    pub fn update(&self, settings: &ServeSettings) -> Option<String> {
        let new = Credentials::of(settings);
        let mut credentials = self
            .credentials
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if *credentials == new {
            return None;
        }
        let password = if credentials.password_hash == new.password_hash {
            ""
        } else {
            self.sessions
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
            if new.password_hash.is_some() {
                ", a new dashboard password (everyone signed out)"
            } else {
                ", no dashboard password"
            }
        };
        let summary = format!("{} API token(s){password}", new.tokens.len());
        *credentials = new;
        Some(summary)
    }

    pub fn has_password(&self) -> bool {
        self.credentials().password_hash.is_some()
    }

    /// Checks the dashboard password: a session if it is right.
    pub async fn sign_in(&self, password: String) -> Option<(String, Caller)> {
        let hash = self.credentials().password_hash.clone()?;
        let Ok(_permit) = self.checking.acquire().await else {
            return None;
        };
        let checked = hash.clone();
        let right =
            tokio::task::spawn_blocking(move || secrets::password_matches(&password, &checked))
                .await
                .unwrap_or(false);
        // Not if the password was changed while this one was being checked.
        if right && self.credentials().password_hash.as_ref() == Some(&hash) {
            self.open_session(Scope::Admin)
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            None
        }
    }

    fn open_session(&self, scope: Scope) -> Option<(String, Caller)> {
        let id = secrets::random_text().ok()?;
        let csrf = secrets::random_text().ok()?;
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        sessions.retain(|_, session| session.expires > now);
        if sessions.len() >= SESSIONS_KEPT
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, session)| session.expires)
                .map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(
            id.clone(),
            Session {
                scope,
                csrf: csrf.clone(),
                expires: now + SESSION_LIFETIME,
            },
        );
        Some((
            id,
            Caller {
                scope,
                csrf: Some(csrf),
                who: "dashboard".to_owned(),
            },
        ))
    }

    pub fn close_session(&self, id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// The caller behind the request's token or session cookie.
    pub fn caller(&self, headers: &HeaderMap) -> Option<Caller> {
        if let Some(token) = bearer(headers) {
            let credentials = self.credentials();
            let (name, scope) = credentials.tokens.get(&secrets::token_hash(token))?;
            return Some(Caller {
                scope: *scope,
                csrf: None,
                who: format!("token '{name}'"),
            });
        }
        let id = session_cookie(headers)?;
        let sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let session = sessions
            .get(id)
            .filter(|session| session.expires > Instant::now())?;
        Some(Caller {
            scope: session.scope,
            csrf: Some(session.csrf.clone()),
            who: "dashboard".to_owned(),
        })
    }

    /// The `Set-Cookie` value for a new session.
    pub fn session_cookie(&self, id: &str) -> String {
        format!(
            "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            SESSION_LIFETIME.as_secs(),
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn cleared_cookie(&self) -> String {
        format!(
            "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if self.secure_cookies { "; Secure" } else { "" }
        )
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (kind, token) = value.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
        .filter(|id| !id.is_empty())
}

/// Middleware for the API: a caller or 401; an admin (with the CSRF token, from a
/// browser) for anything but GET, or 403.
pub async fn api_caller(
    State(state): State<WebState>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(caller) = state.auth.caller(request.headers()) else {
        return Problem::unauthorized().into_response();
    };
    if let Err(problem) = allowed(&caller, request.method(), request.headers()) {
        return problem.into_response();
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// Whether `caller` may make a request with `method`.
pub fn allowed(caller: &Caller, method: &Method, headers: &HeaderMap) -> Result<(), Problem> {
    if method == Method::GET || method == Method::HEAD {
        return Ok(());
    }
    if caller.scope < Scope::Admin {
        return Err(Problem::forbidden(&caller.who));
    }
    if let Some(csrf) = &caller.csrf {
        let sent = headers
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        if !secrets::same(sent.as_bytes(), csrf.as_bytes()) {
            return Err(Problem::csrf());
        }
    }
    Ok(())
}
