//! `/health` (the process answers), `/ready` (the ledger takes writes and every sink
//! could be opened at the last cycle) and `/metrics` (Prometheus text format).
//!
//! `/health` and `/ready` need no credential and say no more than which check failed;
//! `/metrics` needs a token (Prometheus' `authorization: credentials:`), as it names
//! devices and sinks.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

use super::WebState;
use super::problem::Problem;
use crate::report::CycleReport;

/// Upper bounds of the cycle duration histogram, in seconds.
const CYCLE_BUCKETS: [f64; 9] = [0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];

/// Counts since the process started, for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    read: BTreeMap<String, u64>,
    delivered: BTreeMap<String, u64>,
    failed: BTreeMap<String, u64>,
    /// Per device: up (1) or down (0) at the last cycle; a pushing terminal: in touch
    /// or quiet.
    up: BTreeMap<String, bool>,
    /// Per sink: could not be opened at the last cycle.
    down: BTreeMap<String, bool>,
    cycles: [u64; CYCLE_BUCKETS.len()],
    cycle_count: u64,
    cycle_seconds: f64,
    /// By (endpoint, status).
    adms: BTreeMap<(&'static str, u16), u64>,
}

impl Metrics {
    fn counts(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes in a finished cycle.
    pub fn cycle(&self, report: &CycleReport, seconds: f64) {
        let mut counts = self.counts();
        for device in &report.devices {
            *counts.read.entry(device.name.clone()).or_default() += device.new;
            if device.kind != "adms" && !device.interrupted {
                counts
                    .up
                    .insert(device.name.clone(), device.error.is_none());
            }
        }
        for sink in &report.sinks {
            *counts.delivered.entry(sink.name.clone()).or_default() += sink.delivered;
            *counts.failed.entry(sink.name.clone()).or_default() += sink.failed;
            counts.down.insert(sink.name.clone(), sink.down.is_some());
        }
        for (bucket, bound) in CYCLE_BUCKETS.iter().enumerate() {
            if seconds <= *bound {
                counts.cycles[bucket] += 1;
            }
        }
        counts.cycle_count += 1;
        counts.cycle_seconds += seconds;
    }

    /// A pushing terminal came back (in touch) or went quiet.
    pub fn device_up(&self, device: &str, up: bool) {
        self.counts().up.insert(device.to_owned(), up);
    }

    /// Punches a pushing terminal brought (new to the ledger).
    pub fn pushed(&self, device: &str, new: u64) {
        *self.counts().read.entry(device.to_owned()).or_default() += new;
    }

    /// An ADMS request answered.
    pub fn adms_request(&self, endpoint: &'static str, status: u16) {
        *self.counts().adms.entry((endpoint, status)).or_default() += 1;
    }

    /// The sinks that could not be opened at the last cycle.
    pub fn sinks_down(&self) -> Vec<String> {
        self.counts()
            .down
            .iter()
            .filter(|(_, down)| **down)
            .map(|(name, _)| name.clone())
            .collect()
    }
}

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// The answer of `/health` and `/ready`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ok`, `ready` or `not ready`.
    pub status: &'static str,
    /// What is not ready: `ledger`, `sink NAME`.
    pub failing: Vec<String>,
}

async fn health() -> impl IntoResponse {
    axum::Json(Readiness {
        status: "ok",
        failing: Vec::new(),
    })
}

async fn ready(State(state): State<WebState>) -> Response {
    let mut failing = Vec::new();
    if state
        .ledger
        .mark_milestone("ready-check", "")
        .await
        .is_err()
    {
        failing.push("ledger".to_owned());
    }
    failing.extend(
        state
            .metrics
            .sinks_down()
            .into_iter()
            .map(|sink| format!("sink {sink}")),
    );
    let status = if failing.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let readiness = Readiness {
        status: if failing.is_empty() {
            "ready"
        } else {
            "not ready"
        },
        failing,
    };
    (status, axum::Json(readiness)).into_response()
}

async fn metrics(State(state): State<WebState>, request: Request) -> Response {
    if state.auth.caller(request.headers()).is_none() {
        return Problem::unauthorized().into_response();
    }
    let pending = state.reader.sink_standings().await.ok();
    let quarantined = state.reader.quarantine_count().await.ok();
    let mut out = String::new();
    {
        let counts = state.metrics.counts();
        family(
            &mut out,
            "iclock_sync_punches_read_total",
            "counter",
            "Punches new to the ledger, per device, since start.",
        );
        for (device, count) in &counts.read {
            let _ = writeln!(
                out,
                "iclock_sync_punches_read_total{{device=\"{}\"}} {count}",
                label(device)
            );
        }
        family(
            &mut out,
            "iclock_sync_punches_delivered_total",
            "counter",
            "Punches a sink took, since start.",
        );
        for (sink, count) in &counts.delivered {
            let _ = writeln!(
                out,
                "iclock_sync_punches_delivered_total{{sink=\"{}\"}} {count}",
                label(sink)
            );
        }
        family(
            &mut out,
            "iclock_sync_punches_failed_total",
            "counter",
            "Deliveries that failed and wait to be tried again, since start.",
        );
        for (sink, count) in &counts.failed {
            let _ = writeln!(
                out,
                "iclock_sync_punches_failed_total{{sink=\"{}\"}} {count}",
                label(sink)
            );
        }
        family(
            &mut out,
            "iclock_sync_device_up",
            "gauge",
            "Whether the device's last read worked (1) or failed (0); for a pushing terminal, whether it is in touch.",
        );
        for (device, up) in &counts.up {
            let _ = writeln!(
                out,
                "iclock_sync_device_up{{device=\"{}\"}} {}",
                label(device),
                u8::from(*up)
            );
        }
        family(
            &mut out,
            "iclock_sync_cycle_duration_seconds",
            "histogram",
            "How long cycles took.",
        );
        for (bound, count) in CYCLE_BUCKETS.iter().zip(counts.cycles) {
            let _ = writeln!(
                out,
                "iclock_sync_cycle_duration_seconds_bucket{{le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "iclock_sync_cycle_duration_seconds_bucket{{le=\"+Inf\"}} {}",
            counts.cycle_count
        );
        let _ = writeln!(
            out,
            "iclock_sync_cycle_duration_seconds_sum {}",
            counts.cycle_seconds
        );
        let _ = writeln!(
            out,
            "iclock_sync_cycle_duration_seconds_count {}",
            counts.cycle_count
        );
        family(
            &mut out,
            "iclock_sync_adms_requests_total",
            "counter",
            "Requests from pushing terminals, per endpoint and status.",
        );
        for ((endpoint, status), count) in &counts.adms {
            let _ = writeln!(
                out,
                "iclock_sync_adms_requests_total{{endpoint=\"{endpoint}\",status=\"{status}\"}} {count}"
            );
        }
    }
    if let Some(standings) = pending {
        family(
            &mut out,
            "iclock_sync_punches_pending",
            "gauge",
            "Punches waiting for a sink in the ledger.",
        );
        for sink in &standings {
            let _ = writeln!(
                out,
                "iclock_sync_punches_pending{{sink=\"{}\"}} {}",
                label(&sink.name),
                sink.pending
            );
        }
        family(
            &mut out,
            "iclock_sync_punches_refused",
            "gauge",
            "Punches a sink rejected or could not map, until retried.",
        );
        for sink in &standings {
            let _ = writeln!(
                out,
                "iclock_sync_punches_refused{{sink=\"{}\",reason=\"rejected\"}} {}",
                label(&sink.name),
                sink.rejected
            );
            let _ = writeln!(
                out,
                "iclock_sync_punches_refused{{sink=\"{}\",reason=\"unmapped\"}} {}",
                label(&sink.name),
                sink.unmapped
            );
        }
    }
    if let Some(count) = quarantined {
        family(
            &mut out,
            "iclock_sync_quarantined",
            "gauge",
            "Records refused before any sink saw them.",
        );
        let _ = writeln!(out, "iclock_sync_quarantined {count}");
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value with `\`, `"` and newlines escaped.
fn label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
