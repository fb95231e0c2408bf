//! A graceful stop, passed in by whoever hosts the work (the command line's signal
//! handling, a service, a test): once requested, the current cycle stops reading
//! devices and still delivers and records what it read, so nothing is lost.

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
