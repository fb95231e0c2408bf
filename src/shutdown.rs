//! Graceful stop on Ctrl-C. The first Ctrl-C asks the current cycle to stop reading
//! devices; what was already read is still delivered and recorded, so nothing is lost
//! and the process exits 0. A second Ctrl-C exits at once (still safe: every write is
//! idempotent and the next run redoes anything unacknowledged).

use tokio::sync::watch;

/// Cloneable view of whether a stop was requested.
#[derive(Debug, Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

/// The side that requests the stop.
#[derive(Debug)]
pub struct ShutdownTrigger {
    sender: watch::Sender<bool>,
}

pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (sender, receiver) = watch::channel(false);
    (ShutdownTrigger { sender }, Shutdown { receiver })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl Shutdown {
    pub fn is_requested(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Resolves when a stop is requested (never, if the trigger is gone unused).
    pub async fn requested(&mut self) {
        if self.receiver.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Listens for Ctrl-C for the life of the process.
pub fn on_ctrl_c() -> Shutdown {
    let (trigger, shutdown) = channel();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("\nStopping: finishing what was already read (Ctrl-C again to quit at once)…");
        trigger.trigger();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Quit. Anything unacknowledged is redone by the next run.");
            std::process::exit(130);
        }
    });
    shutdown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_trigger_wakes_waiters_and_is_visible_to_clones() {
        let (trigger, shutdown) = channel();
        let mut waiter = shutdown.clone();
        assert!(!shutdown.is_requested());
        let wait = tokio::spawn(async move { waiter.requested().await });
        trigger.trigger();
        wait.await.unwrap();
        assert!(shutdown.is_requested());
    }
}
