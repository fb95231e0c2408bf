//! How the command line is stopped: SIGINT (Ctrl-C) and SIGTERM (what systemd and
//! `kill` send) both ask the running cycle to stop reading devices; what was already
//! read is still delivered and recorded, so nothing is lost and the process exits 0. A
//! second Ctrl-C quits at once (still safe: every write is idempotent and the next run
//! redoes anything unacknowledged).

use crate::shutdown::{self, Shutdown};

/// Listens for SIGINT and SIGTERM for the life of the process.
pub fn stop_on_signals() -> Shutdown {
    let (trigger, shutdown) = shutdown::channel();
    tokio::spawn(async move {
        let signal = first_signal().await;
        eprintln!(
            "\nStopping on {signal}: finishing what was already read (Ctrl-C again to quit at once)…"
        );
        trigger.trigger();
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("Quit. Anything unacknowledged is redone by the next run.");
            std::process::exit(130);
        }
    });
    shutdown
}

#[cfg(unix)]
async fn first_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut terminate) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return "Ctrl-C";
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "Ctrl-C",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[cfg(not(unix))]
async fn first_signal() -> &'static str {
    let _ = tokio::signal::ctrl_c().await;
    "Ctrl-C"
}
