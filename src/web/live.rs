//! What `serve`'s cycles tell the web side: each finished cycle feeds the metrics and
//! the live events (punches read per device, a device going up or down, a sink that
//! took punches or changed state, the cycle itself).

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
    /// Each sink's last (pending, down), to send only changes.
    sinks: Mutex<HashMap<String, (u64, bool)>>,
}

impl Live {
    pub fn new(metrics: Arc<Metrics>, events: Events) -> Live {
        Live {
            metrics,
            events,
            up: Mutex::new(HashMap::new()),
            sinks: Mutex::new(HashMap::new()),
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
                self.events.device_state(
                    &device.name,
                    now_up,
                    device.error.as_ref().map(|error| error.message.as_str()),
                );
            }
        }
        drop(up);
        let mut sinks = self.sinks.lock().unwrap_or_else(PoisonError::into_inner);
        for sink in &report.sinks {
            let standing = (sink.pending, sink.down.is_some());
            let worked =
                sink.delivered + sink.already + sink.rejected + sink.unmapped + sink.failed;
            if sinks.insert(sink.name.clone(), standing) == Some(standing) && worked == 0 {
                continue;
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::SinkReport;

    #[test]
    fn a_sink_is_told_of_when_it_took_punches_or_its_state_changed() {
        let live = Live::new(Arc::default(), Events::default());
        let mut events = live.events.watch();
        let cycle = |delivered: u64, pending: u64| CycleReport {
            sinks: vec![SinkReport {
                name: "frappe".into(),
                delivered,
                pending,
                ..SinkReport::default()
            }],
            ..CycleReport::default()
        };
        let mut sink_events = || {
            std::iter::from_fn(|| events.try_recv().ok())
                .filter(|event| event.kind == "sink")
                .count()
        };
        live.finished(&cycle(0, 3));
        assert_eq!(sink_events(), 1, "the first cycle tells its state");
        live.finished(&cycle(0, 3));
        assert_eq!(sink_events(), 0, "nothing changed");
        live.finished(&cycle(3, 0));
        assert_eq!(sink_events(), 1);
        live.finished(&cycle(0, 0));
        assert_eq!(sink_events(), 0);
    }
}
