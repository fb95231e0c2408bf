//! New credentials without a restart: `iclock-sync token new`, `token revoke` and
//! `password` edit the configuration file while `serve` runs, so `serve` looks at the
//! file every few seconds and, when it changed, takes its `[serve]` tokens and
//! password. Only those: the rest of a changed file (devices, sinks) waits for a
//! restart, and a file that no longer loads changes nothing (the log says why).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::auth::Auth;
use crate::config::{self, Environment, LoadOptions};
use crate::shutdown::Shutdown;

/// How often the file is looked at (one `stat`).
const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Watches `path` until `shutdown`, handing its credentials to `auth` when it changes.
pub fn watch(path: PathBuf, environment: Environment, auth: Arc<Auth>, mut shutdown: Shutdown) {
    tokio::spawn(async move {
        let mut seen = stamp(&path);
        let mut every = tokio::time::interval(LOOK_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {}
                () = shutdown.requested() => return,
            }
            let now = stamp(&path);
            if now == seen {
                continue;
            }
            seen = now;
            let options = LoadOptions {
                path: Some(path.clone()),
                // Only [serve] is taken: a sink's unset variable does not matter here.
                dry_run: true,
            };
            let environment = environment.clone();
            let loaded =
                tokio::task::spawn_blocking(move || config::load(&options, &environment)).await;
            match loaded {
                Ok(Ok(config)) => {
                    if let Some(change) = auth.update(&config.serve) {
                        tracing::info!(
                            "{} changed: the dashboard and API now take {change} (other changes wait for a restart)",
                            path.display()
                        );
                    }
                }
                Ok(Err(error)) => tracing::warn!(
                    "{} changed but does not load, so the dashboard and API keep the credentials they had: {error}",
                    path.display()
                ),
                Err(_) => {}
            }
        }
    });
}

/// What tells a change: the file's modification time and length.
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.modified().ok()?, metadata.len()))
}
