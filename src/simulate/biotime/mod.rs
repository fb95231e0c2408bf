//! A simulated BioTime server: the REST behaviour the connector relies on (docs/biotime-api.md)
//! on a real local port. Both login routes, JWT expiry, the DRF 400/401/403/404 bodies,
//! page-number paging whose `next` names a different (internal) host, `page_size` and
//! `limit`, `start_time`/`end_time`/`ordering`, late uploads and loose types. Tests
//! reach into it to add uploads, expire tokens or read counters.

mod dataset;
mod server;
mod wire;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{Local, NaiveDateTime};
use tokio::net::TcpListener;

use crate::tls::ServerTls;
use tokio::task::JoinHandle;

pub use dataset::{DatasetSpec, SimTerminal, SimTransaction, generate, terminals};

use crate::duration;

/// `iclock-sync simulate biotime …`
#[derive(Debug, Clone, clap::Args)]
pub struct SimulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub listen: String,
    /// Employees in the simulated company.
    #[arg(long, default_value_t = 300)]
    pub employees: u32,
    /// Days of punches up to now.
    #[arg(long, default_value_t = 3)]
    pub days: u32,
    /// Exactly this many regular punches instead of --days.
    #[arg(long)]
    pub punches: Option<u64>,
    /// Extra punches from two months ago that were uploaded just now.
    #[arg(long, default_value_t = 25)]
    pub late: u32,
    /// Extra broken records (empty PIN, impossible date, 1999, far future, bad state).
    #[arg(long, default_value_t = 0)]
    pub bad_records: u32,
    /// Seed for the generated data (same seed, same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The user the API accepts.
    #[arg(long, default_value = "admin")]
    pub username: String,
    /// That user's password.
    #[arg(long, default_value = "admin")]
    pub password: String,
    /// JWT lifetime (e.g. 5s to watch refreshes).
    #[arg(long, default_value = "300s", value_parser = duration::parse)]
    pub jwt_ttl: Duration,
    /// Base URL the server believes it has; `next` links use it, as real servers do.
    #[arg(long, default_value = "http://10.255.0.1:8081")]
    pub public_url: String,
    /// Wait this long before answering each transactions page.
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub page_delay: Duration,
    /// Behave like a server that ignores `ordering`.
    #[arg(long)]
    pub ignore_ordering: bool,
    #[command(flatten)]
    pub tls: super::TlsArgs,
    /// Answer API calls with the 403 of a server without the API licence.
    #[arg(long)]
    pub no_licence: bool,
    /// Serve only this login route (`jwt` or `token`); the other answers 404.
    #[arg(long, value_parser = ["jwt", "token"])]
    pub only_route: Option<String>,
}

impl SimulatorArgs {
    pub fn options(&self) -> SimOptions {
        SimOptions {
            username: self.username.clone(),
            password: self.password.clone(),
            jwt_ttl: self.jwt_ttl,
            public_url: self.public_url.trim_end_matches('/').to_owned(),
            page_delay: self.page_delay,
            ignore_ordering: self.ignore_ordering,
            no_licence: self.no_licence,
            jwt_route: self.only_route.as_deref() != Some("token"),
            token_route: self.only_route.as_deref() != Some("jwt"),
        }
    }

    pub fn dataset(&self) -> DatasetSpec {
        DatasetSpec {
            employees: self.employees,
            days: self.days,
            punches: self.punches,
            late_uploads: self.late,
            bad_records: self.bad_records,
            seed: self.seed,
            anchor: now_local(),
        }
    }
}

/// Server behaviour switches.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub username: String,
    pub password: String,
    pub jwt_ttl: Duration,
    /// Used in `next`/`previous` links instead of the address actually listened on.
    pub public_url: String,
    pub page_delay: Duration,
    pub ignore_ordering: bool,
    pub no_licence: bool,
    pub jwt_route: bool,
    pub token_route: bool,
}

impl Default for SimOptions {
    fn default() -> SimOptions {
        SimOptions {
            username: "admin".into(),
            password: "admin".into(),
            jwt_ttl: Duration::from_secs(300),
            public_url: "http://10.255.0.1:8081".into(),
            page_delay: Duration::ZERO,
            ignore_ordering: false,
            no_licence: false,
            jwt_route: true,
            token_route: true,
        }
    }
}

/// Counters tests assert on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimStats {
    pub logins: u64,
    pub failed_logins: u64,
    pub transaction_pages: u64,
    pub unauthorized: u64,
}

/// State shared by the server's handlers and the test handle.
pub(crate) struct Shared {
    options: Mutex<SimOptions>,
    state: Mutex<server::SimState>,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, server::SimState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn options(&self) -> SimOptions {
        self.options
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// A running simulator; stops when dropped.
pub struct BiotimeSimulator {
    shared: Arc<Shared>,
    url: String,
    task: JoinHandle<()>,
}

impl BiotimeSimulator {
    pub async fn start(
        listener: TcpListener,
        options: SimOptions,
        rows: Vec<SimTransaction>,
    ) -> std::io::Result<BiotimeSimulator> {
        BiotimeSimulator::start_with_tls(listener, None, options, rows).await
    }

    /// Serves HTTPS with `tls` when given.
    pub async fn start_with_tls(
        listener: TcpListener,
        tls: Option<ServerTls>,
        options: SimOptions,
        rows: Vec<SimTransaction>,
    ) -> std::io::Result<BiotimeSimulator> {
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            options: Mutex::new(options),
            state: Mutex::new(server::SimState::new(rows, terminals())),
        });
        let router = server::router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            if let Err(error) = crate::tls::serve(listener, router, tls).await {
                tracing::error!("BioTime simulator stopped: {error}");
            }
        });
        Ok(BiotimeSimulator {
            shared,
            url: format!("{scheme}://{address}"),
            task,
        })
    }

    /// The address to configure as the device `url`.
    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn stats(&self) -> SimStats {
        self.shared.state().stats.clone()
    }

    pub fn transaction_count(&self) -> usize {
        self.shared.state().transactions.len()
    }

    /// Every stored row, as stored.
    pub fn transactions(&self) -> Vec<SimTransaction> {
        self.shared.state().transactions.clone()
    }

    /// Adds rows as if they reached the server now (ids assigned in order).
    pub fn upload(&self, rows: Vec<SimTransaction>) {
        self.shared.state().upload(rows);
    }

    /// Makes every issued JWT count as expired (the next call answers 401).
    pub fn expire_tokens(&self) {
        self.shared.state().expire_tokens();
    }

    pub fn set_options(&self, change: impl FnOnce(&mut SimOptions)) {
        change(
            &mut self
                .shared
                .options
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }
}

impl Drop for BiotimeSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The simulator's idea of local wall time (the host's zone).
pub fn now_local() -> NaiveDateTime {
    use chrono::Timelike;
    let now = Local::now().naive_local();
    now.with_nanosecond(0).unwrap_or(now)
}
