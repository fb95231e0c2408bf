//! What `serve`'s cycles tell the web side: each finished cycle feeds the metrics and
//! the live events (punches read per device, a device going up or down, each sink's
//! state, the cycle itself).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::json;

use super::Metrics;
use crate::events::Events;
use crate::report::CycleReport;
use crate::sync::CycleObserver;

pub struct Live {
    pub metrics: Arc<Metrics>,
    pub events: Events,
    /// Each device's last state (up or not), to send only changes.
    up: Mutex<HashMap<String, bool>>,
}

impl Live {
    pub fn new(metrics: Arc<Metrics>, events: Events) -> Live {
        Live {
            metrics,
            events,
            up: Mutex::new(HashMap::new()),
        }
    }
}

impl CycleObserver for Live {
    fn finished(&self, report: &CycleReport) {
        self.metrics
            .cycle(report, report.duration_ms as f64 / 1000.0);
        let mut up = self.up.lock().unwrap_or_else(PoisonError::into_inner);
        for device in &report.devices {
            if device.new > 0 {
                self.events.send(
                    "punches",
                    json!({ "device": device.name, "new": device.new }),
                );
            }
            if device.kind == "adms" || device.interrupted {
                continue;
            }
            let now_up = device.error.is_none();
            if up.insert(device.name.clone(), now_up) != Some(now_up) {
                self.events.send(
                    "device",
                    json!({
                        "device": device.name,
                        "up": now_up,
                        "error": device.error.as_ref().map(|error| &error.message),
                    }),
                );
            }
        }
        for sink in &report.sinks {
            self.events.send(
                "sink",
                json!({
                    "sink": sink.name,
                    "delivered": sink.delivered,
                    "pending": sink.pending,
                    "down": sink.down.is_some(),
                }),
            );
        }
        self.events.send(
            "cycle",
            json!({ "started_at": report.started_at, "duration_ms": report.duration_ms, "exit_code": report.exit_code }),
        );
    }
}

/// Two observers as one: the terminal's and the web side's.
pub struct Both(pub Arc<dyn CycleObserver>, pub Arc<dyn CycleObserver>);

impl CycleObserver for Both {
    fn reading(&self, device: &str, done: u64, total: Option<u64>, unit: &'static str) {
        self.0.reading(device, done, total, unit);
        self.1.reading(device, done, total, unit);
    }

    fn delivered(&self, count: u64) {
        self.0.delivered(count);
        self.1.delivered(count);
    }

    fn finished(&self, report: &CycleReport) {
        self.0.finished(report);
        self.1.finished(report);
    }
}
