//! The service's web side, served by `serve` beside the ADMS receiver: the dashboard
//! (`/`), the HTTP API (`/api/v1`, described at `/api/openapi.json`), `/health`,
//! `/ready` and Prometheus `/metrics`. It reads the ledger through connections of its
//! own (many readers never wait behind the writer) and acts through the same ledger
//! handle and [`Control`] the cycling loop uses.
//!
//! | module | what |
//! |---|---|
//! | `auth`, `secrets` | tokens, the dashboard password and sessions, CSRF |
//! | `api` | the JSON API and its OpenAPI document |
//! | `dashboard` | the pages, server-rendered, their assets embedded |
//! | `health` | liveness, readiness, metrics |
//! | `problem` | errors as RFC 9457 problem documents |

pub mod api;
pub mod auth;
mod dashboard;
mod fresh;
mod headers;
pub mod health;
pub mod live;
pub mod problem;
mod reload;
pub mod secrets;
mod view;

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;

use crate::adms::receiver::Receiver;
use crate::config::Config;
use crate::config::serve::ServeSettings;
use crate::events::Events;
use crate::ledger::{SharedLedger, SqliteLedger};
use crate::shutdown::Shutdown;
use crate::sync::control::Control;
use crate::tls::ServerTls;

pub use health::Metrics;

/// How old what the overview shows may be.
const FRESH: Duration = Duration::from_secs(1);

/// A configured device, as the web side shows it before the ledger knows it.
#[derive(Debug, Clone)]
pub struct ConfiguredDevice {
    pub name: String,
    pub kind: String,
    pub location: String,
    /// The serial number a pushing terminal is known by.
    pub serial: Option<String>,
    pub timezone: chrono_tz::Tz,
}

/// What every handler shares.
pub struct Web {
    /// For actions: the handle the loop and the receiver write through.
    pub ledger: SharedLedger,
    /// For looking: connections of its own.
    pub reader: SharedLedger,
    pub auth: Arc<auth::Auth>,
    pub control: Arc<Control>,
    pub events: Events,
    pub metrics: Arc<Metrics>,
    pub receiver: Option<Arc<Receiver>>,
    pub devices: Vec<ConfiguredDevice>,
    /// Seconds between a pushing terminal's polls (to judge whether it is in touch).
    pub adms_delay: Option<u32>,
    /// The configuration file, for messages that say what to change.
    pub origin: String,
    /// Every device as shown, at most a second old (the overview and the API read it).
    pub devices_now: fresh::Fresh<Vec<view::DeviceView>>,
    /// The overview's content, rendered, at most a second old.
    pub overview_now: fresh::Fresh<String>,
}

/// The handlers' state: a cheap handle on [`Web`].
#[derive(Clone)]
pub struct WebState(pub Arc<Web>);

impl Deref for WebState {
    type Target = Web;
    fn deref(&self) -> &Web {
        &self.0
    }
}

/// Everything served: API, dashboard, health and metrics, under the security headers.
pub fn router(state: WebState) -> Router {
    let (api, _) = api::router(state.clone()).split_for_parts();
    Router::new()
        .merge(api)
        .merge(health::router(state.clone()))
        .merge(dashboard::router(state.clone()))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.secure_cookies,
            headers::secure,
        ))
}

/// What `serve`'s parts share: requests to the loop, the live events, the metrics.
#[derive(Clone, Default)]
pub struct Hub {
    pub control: Arc<Control>,
    pub events: Events,
    pub metrics: Arc<Metrics>,
}

/// The web side running: the server's task and where it listens.
pub struct RunningWeb {
    pub server: tokio::task::JoinHandle<()>,
    pub address: SocketAddr,
}

/// Binds `[serve] listen` and serves until `shutdown`; prints the one-time sign-in
/// link when no credential is configured. `None` when `listen = "off"`.
pub async fn start(
    config: &Config,
    ledger: SharedLedger,
    ledger_path: &std::path::Path,
    hub: &Hub,
    receiver: Option<Arc<Receiver>>,
    shutdown: &Shutdown,
) -> Result<Option<RunningWeb>, String> {
    let settings: &ServeSettings = &config.serve;
    let Some(listen) = settings.listen else {
        return Ok(None);
    };
    let tls = ServerTls::configured(settings.tls.as_ref(), config.origin(), "[serve]")?;
    let reader = SqliteLedger::open_reader(ledger_path, 4)
        .await
        .map_err(|error| error.to_string())?;
    let devices = config
        .devices
        .iter()
        .filter(|device| device.enabled)
        .map(|device| ConfiguredDevice {
            name: device.name.clone(),
            kind: device.source.kind().to_owned(),
            location: device.location(),
            serial: device.source.pushes().map(str::to_owned),
            timezone: device.timezone,
        })
        .collect();
    let web = Web {
        ledger,
        reader: Arc::new(reader),
        auth: Arc::new(auth::Auth::new(settings)),
        control: Arc::clone(&hub.control),
        events: hub.events.clone(),
        metrics: Arc::clone(&hub.metrics),
        receiver,
        devices,
        adms_delay: config.adms.as_ref().map(|adms| adms.delay),
        origin: config.origin().to_owned(),
        devices_now: fresh::Fresh::new(FRESH),
        overview_now: fresh::Fresh::new(FRESH),
    };
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|error| {
        format!(
            "{}: [serve] listen: cannot listen on {listen}: {error} — choose a free port (another program, or another iclock-sync, uses this one), e.g. listen = \"127.0.0.1:8090\", or listen = \"off\"",
            config.origin()
        )
    })?;
    let address = listener.local_addr().unwrap_or(listen);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let host = if address.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], address.port()))
    } else {
        address
    };
    tracing::info!("dashboard and API on {scheme}://{address}/");
    if !settings.has_credentials() {
        let token = web.auth.issue_once()?;
        // Straight to the terminal, not the log: it is a credential (for one use).
        eprintln!(
            "\nNo dashboard password or API token is set. Sign in once with this link (it works one time):\n\n    {scheme}://{host}/login?once={token}\n\nthen set a password with `iclock-sync password` so that you can sign in again after a restart.\n"
        );
    }
    let origin = std::path::PathBuf::from(config.origin());
    if origin
        .extension()
        .is_some_and(|extension| extension == "toml")
    {
        reload::watch(
            origin,
            config.environment.clone(),
            Arc::clone(&web.auth),
            shutdown.clone(),
        );
    }
    let server = tokio::spawn(crate::http_server::serve(
        listener,
        router(WebState(Arc::new(web))),
        tls,
        crate::http_server::Limits::default(),
        shutdown.clone(),
    ));
    Ok(Some(RunningWeb { server, address }))
}
