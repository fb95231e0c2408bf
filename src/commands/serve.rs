//! `iclock-sync serve`: the long-running service. One process runs the cycles that
//! `--loop` runs (each device read on its interval, each sink drained from the ledger),
//! with `[adms]` configured the receiver pushing terminals send their punches to, and
//! the dashboard and API (`[serve]`, `crate::web`), which can ask the loop to read a
//! device or deliver at once.
//! Punches that arrive are delivered by a cycle that reads nothing, a few seconds
//! later. SIGTERM or Ctrl-C: the receiver stops accepting and finishes the requests in
//! flight, the cycle under way delivers what it read, punches pushed since the last
//! cycle are delivered (for at most 20 s; the rest wait in the ledger for the next
//! start), and the process exits 0.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::adms::receiver::{self, Receiver, Terminal};
use crate::commands::signals;
use crate::config::adms::AdmsSettings;
use crate::config::{Config, Environment};
use crate::exit::Exit;
use crate::normalize::Normalizer;
use crate::output::Output;
use crate::punch::DeviceLabel;
use crate::report::CycleReport;
use crate::shutdown::Shutdown;
use crate::sync::control::Control;
use crate::sync::{CycleObserver, Engine, Schedule};
use crate::tls::ServerTls;
use crate::web::live::{Both, Live};
use crate::web::{Hub, Metrics};

/// How often devices are read when neither `--every` nor a device's `interval` says.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// After punches arrive, how long to wait for more before delivering them together.
const GATHER: Duration = Duration::from_secs(2);
/// How often what the terminals' polls told is written to the ledger between cycles
/// (their last contact, for `status` and `devices`).
const CONTACTS_EVERY: Duration = Duration::from_secs(60);
/// How long the stop may spend delivering what terminals pushed since the last cycle.
const FINAL_DRAIN: Duration = Duration::from_secs(20);
/// How soon a sink that could not be opened at all (server down) is tried again.
const SINK_DOWN_RETRY: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// How often the devices are read: `30s`, `5m`, `2h` (minutes if no unit). A
    /// [[device]] with its own `interval` is read on that one.
    #[arg(long, value_name = "INTERVAL", value_parser = crate::cli::parse_interval)]
    pub every: Option<Duration>,
}

pub async fn run(
    config_path: Option<PathBuf>,
    environment: &Environment,
    args: &ServeArgs,
    output: &Output,
) -> Exit {
    let config = match super::load_config(config_path, environment, false, output) {
        Ok(config) => config,
        Err(exit) => return exit,
    };
    let mut engine = match Engine::open(&config, false).await {
        Ok(engine) => engine,
        Err(error) => return output.error(&error.to_string(), error.exit()),
    };
    let shutdown = signals::stop_on_signals();
    let hub = Hub::default();
    let receiver = match &config.adms {
        Some(settings) => {
            match start_receiver(&config, settings, &engine, &shutdown, Some(&hub)).await {
                Ok(receiver) => Some(receiver),
                Err(message) => {
                    engine.close().await;
                    return output.error(&message, Exit::Configuration);
                }
            }
        }
        None => {
            for device in config
                .devices
                .iter()
                .filter(|device| device.source.pushes().is_some())
            {
                tracing::warn!(
                    "[[device]] '{}' pushes (kind = \"adms\") but {} has no [adms] section, so nothing receives its punches; add [adms] listen = \"0.0.0.0:8081\"",
                    device.name,
                    config.origin()
                );
            }
            None
        }
    };
    let web = match (engine.ledger(), engine.ledger_path()) {
        (Some(ledger), Some(path)) => {
            let started = crate::web::start(
                &config,
                ledger,
                path,
                &hub,
                receiver
                    .as_ref()
                    .map(|running| Arc::clone(&running.receiver)),
                &shutdown,
            )
            .await;
            match started {
                Ok(web) => web,
                Err(message) => {
                    engine.close().await;
                    return output.error(&message, Exit::Configuration);
                }
            }
        }
        _ => None,
    };
    let interval = args.every.unwrap_or(DEFAULT_INTERVAL);
    let observer: Arc<dyn CycleObserver> = Arc::new(Both(
        output.observer(),
        Arc::new(Live::new(Arc::clone(&hub.metrics), hub.events.clone())),
    ));
    let running = receiver.as_ref().map(|running| running.receiver.as_ref());
    run_loop(
        &mut engine,
        interval,
        None,
        shutdown,
        &observer,
        running,
        Some(&hub.control),
    )
    .await;
    if let Some(web) = web {
        let _ = web.server.await;
    }
    if let Some(RunningReceiver {
        receiver, server, ..
    }) = receiver
    {
        // The signal stopped it accepting; requests in flight finish first.
        let _ = server.await;
        receiver.record_contacts().await;
        if receiver.undelivered.load(Ordering::SeqCst) {
            final_drain(&mut engine, interval, &observer).await;
        }
    }
    engine.close().await;
    Exit::Success
}

/// Cycles until `shutdown`: each device on its interval, a delivery when a sink's
/// failed punches are due to be tried again and, when `receiver` is given, a delivery
/// shortly after pushed punches arrive. `--loop` runs it without one.
pub async fn run_loop(
    engine: &mut Engine,
    interval: Duration,
    since: Option<Duration>,
    mut shutdown: Shutdown,
    observer: &Arc<dyn CycleObserver>,
    receiver: Option<&Receiver>,
    control: Option<&Control>,
) {
    let mut schedule = Schedule::new(engine.intervals(interval), Instant::now());
    let names = engine.device_names();
    loop {
        let started = Instant::now();
        if let Some(receiver) = receiver {
            receiver.undelivered.store(false, Ordering::SeqCst);
        }
        // Woken early by pushed punches: the devices not yet due are not read, unless
        // someone asked for them.
        let mut due = schedule.due(started);
        if let Some(control) = control {
            let asked = control.take_read_now();
            for (due, name) in due.iter_mut().zip(&names) {
                *due |= asked.contains(name);
            }
        }
        let report = engine
            .run_cycle(since, Some(&due), &shutdown, observer)
            .await;
        if shutdown.is_requested() {
            return;
        }
        schedule.ran(&due, started);
        if let Some(receiver) = receiver {
            receiver.set_sinks(engine.sink_ids());
            receiver.record_contacts().await;
        }
        let mut next = schedule.next_wake().unwrap_or(started + interval);
        if let Some(retry) = sink_retry(&report) {
            next = next.min(retry);
        }
        tracing::info!(
            "next cycle in {}",
            crate::duration::display(next.saturating_duration_since(Instant::now()))
        );
        let arrived = async {
            match receiver {
                Some(receiver) => receiver.arrived.notified().await,
                None => std::future::pending().await,
            }
        };
        let asked = async {
            match control {
                Some(control) => control.wake.notified().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = tokio::time::sleep_until(next) => {}
            () = asked => {}
            () = arrived => {
                tokio::select! {
                    () = tokio::time::sleep(GATHER) => {}
                    // What arrived is delivered on the way out (`final_drain`).
                    () = shutdown.requested() => return,
                }
            }
            () = shutdown.requested() => return,
        }
    }
}

/// At the stop, the punches terminals pushed since the last cycle are delivered by one
/// that reads nothing, for at most `FINAL_DRAIN` (what it does not finish stays in the
/// ledger and goes at the next start).
async fn final_drain(engine: &mut Engine, interval: Duration, observer: &Arc<dyn CycleObserver>) {
    tracing::info!(
        "delivering the punches pushed since the last cycle (at most {}) before stopping",
        crate::duration::display(FINAL_DRAIN)
    );
    let read_nothing = vec![false; engine.intervals(interval).len()];
    let (trigger, stop) = crate::shutdown::channel();
    let deadline = tokio::spawn(async move {
        tokio::time::sleep(FINAL_DRAIN).await;
        trigger.trigger();
    });
    engine
        .run_cycle(None, Some(&read_nothing), &stop, observer)
        .await;
    deadline.abort();
}

/// When a sink left with punches waiting by a failure is to be tried again: the
/// earliest retry the ledger set (a second after it, its times are whole seconds), or
/// `SINK_DOWN_RETRY` from now for a sink that could not be opened.
fn sink_retry(report: &CycleReport) -> Option<Instant> {
    let now = Utc::now();
    report
        .sinks
        .iter()
        .filter(|sink| sink.pending > 0)
        .filter_map(|sink| {
            if sink.down.is_some() {
                return Some(Instant::now() + SINK_DOWN_RETRY);
            }
            let at = DateTime::parse_from_rfc3339(sink.next_retry.as_deref()?).ok()?;
            let wait = (at.with_timezone(&Utc) - now).to_std().unwrap_or_default();
            Some(Instant::now() + wait + Duration::from_secs(1))
        })
        .min()
}

/// Counts an ADMS request by endpoint and status, for `/metrics`.
async fn count_request(
    axum::extract::State(metrics): axum::extract::State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let endpoint =
        crate::adms::Endpoint::of(request.uri().path()).unwrap_or(crate::adms::Endpoint::Other);
    let response = next.run(request).await;
    metrics.adms_request(endpoint.name(), response.status().as_u16());
    response
}

/// The receiver running: shared with the loop, the server's task, where it listens.
pub struct RunningReceiver {
    pub receiver: Arc<Receiver>,
    pub server: tokio::task::JoinHandle<()>,
    pub address: std::net::SocketAddr,
}

/// Binds the receiver and serves it until `shutdown`.
pub async fn start_receiver(
    config: &Config,
    settings: &AdmsSettings,
    engine: &Engine,
    shutdown: &Shutdown,
    hub: Option<&Hub>,
) -> Result<RunningReceiver, String> {
    let Some(ledger) = engine.ledger() else {
        return Err("the ADMS receiver needs the ledger, which a dry run does not open".into());
    };
    let terminals = config
        .devices
        .iter()
        .filter(|device| device.enabled)
        .filter_map(|device| {
            let serial = device.source.pushes()?;
            Some(Terminal {
                serial: serial.to_owned(),
                label: Arc::new(DeviceLabel {
                    name: Arc::from(device.name.as_str()),
                    timezone: device.timezone,
                }),
                location: device.location(),
            })
        });
    let mut receiver = Receiver::new(
        ledger,
        Normalizer {
            scheme: config.sync.id_scheme,
            max_future_skew: config.sync.max_future_skew,
        },
        terminals,
    );
    receiver.delay = settings.delay;
    receiver.error_delay = settings.error_delay;
    receiver.body_limit = settings.max_body;
    receiver.unknown = settings.unknown_devices;
    receiver.set_sinks(engine.sink_ids());
    match receiver.ledger.terminal_decisions().await {
        Ok(decisions) => decisions
            .iter()
            .for_each(|decision| receiver.decide(decision)),
        Err(error) => return Err(error.to_string()),
    }
    if let Some(hub) = hub {
        receiver.events = hub.events.clone();
        receiver.metrics = Some(Arc::clone(&hub.metrics));
    }
    let receiver = Arc::new(receiver);
    let mut router = Arc::clone(&receiver).router();
    if let Some(hub) = hub {
        router = router.layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hub.metrics),
            count_request,
        ));
    }
    if !settings.prefix.is_empty() {
        router = Router::new().nest(&settings.prefix, router);
    }
    let router = router.layer(axum::middleware::from_fn_with_state(
        Arc::new(settings.allow.clone()),
        receiver::allow_only,
    ));
    let tls = ServerTls::configured(settings.tls.as_ref(), config.origin(), "[adms]")?;
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|error| {
            format!(
                "{}: [adms] listen: cannot listen on {}: {error} — choose a free port (another program, or another iclock-sync, uses this one) or an address of this computer",
                config.origin(),
                settings.listen
            )
        })?;
    let address = listener.local_addr().unwrap_or(settings.listen);
    tracing::info!(
        "ADMS receiver listening on {}://{}{}/iclock/ for {} terminal(s)",
        if tls.is_some() { "https" } else { "http" },
        address,
        settings.prefix,
        receiver.terminals.len()
    );
    let server = tokio::spawn(crate::http_server::serve(
        listener,
        router,
        tls,
        crate::http_server::Limits::default(),
        shutdown.clone(),
    ));
    let recorder = Arc::clone(&receiver);
    let mut stop = shutdown.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CONTACTS_EVERY);
        every.tick().await;
        loop {
            tokio::select! {
                _ = every.tick() => recorder.record_contacts().await,
                () = stop.requested() => return,
            }
        }
    });
    Ok(RunningReceiver {
        receiver,
        server,
        address,
    })
}
