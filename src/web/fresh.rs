//! A value computed at most once per `max_age`, however many ask at once. The first
//! asker computes it; while a newer one is being computed, the others are answered
//! with the last one at once (no one waits behind the refresh unless there is no value
//! yet). The overview (every device, every sink, the day's counts) is read this way,
//! so fifty people watching the dashboard cost what one does; what it shows is about a
//! second old at most, and the live events bring the next one.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

pub struct Fresh<T> {
    last: Mutex<Option<(Instant, Arc<T>)>>,
    /// Held by whoever computes a new value.
    refreshing: tokio::sync::Mutex<()>,
    max_age: Duration,
}

impl<T> Fresh<T> {
    pub fn new(max_age: Duration) -> Fresh<T> {
        Fresh {
            last: Mutex::new(None),
            refreshing: tokio::sync::Mutex::new(()),
            max_age,
        }
    }

    /// The last value, and whether it is still fresh.
    fn last(&self) -> Option<(Arc<T>, bool)> {
        let last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.as_ref()
            .map(|(made, value)| (Arc::clone(value), made.elapsed() < self.max_age))
    }

    /// The value, made by `make` when the last one is older than `max_age` (a failure is
    /// not kept: the next asker tries again).
    pub async fn get<E>(&self, make: impl AsyncFnOnce() -> Result<T, E>) -> Result<Arc<T>, E> {
        let last = self.last();
        if let Some((value, true)) = &last {
            return Ok(Arc::clone(value));
        }
        let _refreshing = match (self.refreshing.try_lock(), last) {
            (Ok(guard), _) => guard,
            // Someone is computing a newer one: the last one will do meanwhile.
            (Err(_), Some((value, _))) => return Ok(value),
            // Nothing yet: wait for whoever computes it, then look again.
            (Err(_), None) => {
                let guard = self.refreshing.lock().await;
                if let Some((value, true)) = self.last() {
                    return Ok(value);
                }
                guard
            }
        };
        let value = Arc::new(make().await?);
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::clone(&value)));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn many_askers_at_once_share_one_computation() {
        let fresh = Arc::new(Fresh::new(Duration::from_secs(60)));
        let made = Arc::new(AtomicU32::new(0));
        let askers: Vec<_> = (0..20)
            .map(|_| {
                let (fresh, made) = (Arc::clone(&fresh), Arc::clone(&made));
                tokio::spawn(async move {
                    fresh
                        .get(async || {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ()>(made.fetch_add(1, Ordering::SeqCst))
                        })
                        .await
                })
            })
            .collect();
        for asker in askers {
            assert_eq!(*asker.await.unwrap().unwrap(), 0);
        }
        assert_eq!(made.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_stale_value_is_given_while_a_newer_one_is_made() {
        let fresh = Arc::new(Fresh::new(Duration::ZERO));
        assert_eq!(*fresh.get(async || Ok::<_, ()>(1)).await.unwrap(), 1);
        let slow = {
            let fresh = Arc::clone(&fresh);
            tokio::spawn(async move {
                fresh
                    .get(async || {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        Ok::<_, ()>(2)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let started = Instant::now();
        assert_eq!(
            *fresh.get(async || Ok::<_, ()>(3)).await.unwrap(),
            1,
            "the last one, at once"
        );
        assert!(started.elapsed() < Duration::from_millis(100));
        assert_eq!(*slow.await.unwrap().unwrap(), 2);
    }

    #[tokio::test]
    async fn a_failure_is_not_kept() {
        let fresh = Fresh::new(Duration::from_secs(60));
        assert!(fresh.get(async || Err::<u32, _>("down")).await.is_err());
        assert_eq!(*fresh.get(async || Ok::<_, ()>(7)).await.unwrap(), 7);
    }
}
