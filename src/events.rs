//! What happened, for whoever watches live (the dashboard and the API's event stream):
//! punches arriving, devices going up or down, sinks changing state, cycles ending.
//! A broadcast: a watcher that falls behind misses events (it is told so and reloads);
//! nobody watching costs nothing.

use serde::Serialize;
use serde_json::Value;
use tokio::sync::broadcast;

/// How many events a slow watcher may fall behind before it misses some.
const BACKLOG: usize = 256;

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// `punches`, `device`, `sink` or `cycle`.
    pub kind: &'static str,
    pub data: Value,
}

#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<Event>,
}

impl Default for Events {
    fn default() -> Events {
        Events {
            sender: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Events {
    pub fn send(&self, kind: &'static str, data: Value) {
        // No watcher: nothing to do.
        let _ = self.sender.send(Event { kind, data });
    }

    /// A device started or stopped answering (or, pushing, came back or went quiet).
    pub fn device_state(&self, device: &str, up: bool, error: Option<&str>) {
        self.send(
            "device",
            serde_json::json!({ "device": device, "up": up, "error": error }),
        );
    }

    pub fn watch(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}
