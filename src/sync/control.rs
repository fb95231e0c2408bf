//! Requests to the cycling loop from beside it (the API, the dashboard): read these
//! devices now, deliver now (after a retry or a backfill opened punches again).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
pub struct Control {
    /// Devices to read at the next cycle, due or not.
    read_now: Mutex<HashSet<String>>,
    pub wake: tokio::sync::Notify,
}

impl Control {
    /// Reads `device` at once.
    pub fn read_now(&self, device: &str) {
        self.read_now
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(device.to_owned());
        self.wake.notify_one();
    }

    /// A cycle at once (it delivers what is open).
    pub fn deliver_now(&self) {
        self.wake.notify_one();
    }

    /// The devices asked for since the last call.
    pub fn take_read_now(&self) -> HashSet<String> {
        std::mem::take(&mut *self.read_now.lock().unwrap_or_else(PoisonError::into_inner))
    }
}
