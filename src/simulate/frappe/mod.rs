//! A simulated Frappe HR site (Frappe 15 + ERPNext + HRMS, or ERPNext 13 with the
//! checkin method under `erpnext.`), reproducing what `docs/frappe.md`
//! records of a real one: token auth and its 401/403 bodies,
//! the method and resource envelopes, the (employee, time, log type) duplicate rule with
//! seconds truncated and no unique index (concurrent duplicates both land), only
//! Inactive employees blocked, 500 for timestamps with an offset, and the link bug of
//! `/api/resource/Employee Checkin`. No Frappe site can run here; this is what the
//! sink is tested against. Tests reach in to add faults and read what was written.

mod filters;
mod server;
mod site;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::NaiveDateTime;
use tokio::net::TcpListener;

use crate::tls::ServerTls;
use tokio::task::JoinHandle;

pub use site::{Checkin, Employee, ShiftType, Site, User};

use crate::duration;

/// An API key pair of a Frappe User, and that user's roles.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub key: String,
    pub secret: String,
    pub user: String,
    pub roles: Vec<String>,
}

impl ApiKey {
    pub fn new(key: &str, secret: &str, user: &str, roles: &[&str]) -> ApiKey {
        ApiKey {
            key: key.into(),
            secret: secret.into(),
            user: user.into(),
            roles: roles.iter().map(|role| (*role).to_owned()).collect(),
        }
    }
}

/// How the site behaves.
#[derive(Debug, Clone)]
pub struct SiteOptions {
    pub keys: Vec<ApiKey>,
    /// ERPNext ≤ 13: the checkin method lives under `erpnext.`, not `hrms.`.
    pub legacy_erpnext: bool,
    /// Serve only requests whose `Host` is this (a bench with several sites).
    pub site_host: Option<String>,
    /// Server time per request.
    pub latency: Duration,
    /// Server time per document of an `insert_many` request, on top of `latency`.
    pub document_cost: Duration,
    /// Include `exception` and `exc` in error bodies (sites in developer mode).
    pub tracebacks: bool,
}

impl Default for SiteOptions {
    fn default() -> SiteOptions {
        SiteOptions {
            keys: vec![ApiKey::new(
                "sync-key",
                "sync-secret",
                "sync@example.com",
                &["HR User", "HR Manager", "System Manager"],
            )],
            legacy_erpnext: false,
            site_host: None,
            latency: Duration::ZERO,
            document_cost: Duration::ZERO,
            tracebacks: true,
        }
    }
}

/// Trouble the tests switch on and off.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Creating a checkin for this PIN crashes the server (500 TypeError).
    pub crash_for_pin: Option<String>,
    /// Creating a checkin for this PIN answers 503.
    pub unavailable_for_pin: Option<String>,
    /// The next N requests answer 503.
    pub unavailable_next: u32,
    /// After this many checkins are created, every key is refused (401).
    pub revoke_after_creates: Option<u64>,
    /// The next N creates wait on a row lock past MariaDB's limit: 500
    /// `QueryTimeoutError` (error 1205).
    pub lock_timeouts: u32,
    /// The next N creates are chosen as a deadlock's victim: 500 `QueryDeadlockError`
    /// (error 1213).
    pub deadlocks: u32,
    /// The next N creates lose the database connection: 500 `OperationalError`.
    pub lost_connections: u32,
    /// The next N `insert_many` requests find their first checkin already written by
    /// another client (a second install, a person): the request fails as a duplicate.
    pub raced_bulk_inserts: u32,
}

impl Faults {
    /// The database failure the next create meets, if any (and counts it down).
    fn take_database_failure(&mut self) -> Option<(&'static str, &'static str)> {
        for (left, exc_type, error) in [
            (
                &mut self.lock_timeouts,
                "QueryTimeoutError",
                "(1205, 'Lock wait timeout exceeded; try restarting transaction')",
            ),
            (
                &mut self.deadlocks,
                "QueryDeadlockError",
                "(1213, 'Deadlock found when trying to get lock; try restarting transaction')",
            ),
            (
                &mut self.lost_connections,
                "OperationalError",
                "(2013, 'Lost connection to server during query')",
            ),
        ] {
            if *left > 0 {
                *left -= 1;
                return Some((exc_type, error));
            }
        }
        None
    }
}

/// What the site saw.
#[derive(Debug, Clone, Default)]
pub struct FrappeStats {
    pub requests: u64,
    pub employee_lookups: u64,
    pub checkin_lists: u64,
    /// Create requests (method or resource) that got past auth.
    pub creates: u64,
    pub created: u64,
    /// `frappe.client.insert_many` requests.
    pub bulk_requests: u64,
    /// Calls of the `hrms.` method, and of the `erpnext.` one on a legacy site.
    pub method_calls: u64,
    pub legacy_calls: u64,
    /// Every `timestamp`/`time` sent to create a checkin, as sent.
    pub timestamps: Vec<String>,
    pub max_in_flight: u64,
    /// Creates that started while another for the same employee and time was running.
    pub same_punch_overlaps: u64,
    pub hosts: BTreeSet<String>,
    pub user_updates: Vec<(String, bool)>,
    pub shift_type_updates: Vec<(String, String)>,
}

pub(crate) struct Shared {
    options: SiteOptions,
    state: Mutex<State>,
}

struct State {
    site: Site,
    faults: Faults,
    stats: FrappeStats,
    in_flight: u64,
    creating: HashMap<(String, NaiveDateTime), u32>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn site<R>(&self, f: impl FnOnce(&mut Site) -> R) -> R {
        f(&mut self.lock().site)
    }

    fn record(&self, f: impl FnOnce(&mut FrappeStats)) {
        f(&mut self.lock().stats);
    }

    fn faults(&self) -> Faults {
        self.lock().faults.clone()
    }

    fn take_database_failure(&self) -> Option<(&'static str, &'static str)> {
        self.lock().faults.take_database_failure()
    }

    fn take_raced_bulk_insert(&self) -> bool {
        let mut state = self.lock();
        let raced = state.faults.raced_bulk_inserts > 0;
        if raced {
            state.faults.raced_bulk_inserts -= 1;
        }
        raced
    }

    fn take_unavailable(&self) -> bool {
        let mut state = self.lock();
        if state.faults.unavailable_next > 0 {
            state.faults.unavailable_next -= 1;
            true
        } else {
            false
        }
    }

    fn revoked(&self) -> bool {
        let state = self.lock();
        state
            .faults
            .revoke_after_creates
            .is_some_and(|limit| state.stats.created >= limit)
    }

    fn begin_create(&self, key: &(String, NaiveDateTime)) {
        let mut state = self.lock();
        state.in_flight += 1;
        state.stats.max_in_flight = state.stats.max_in_flight.max(state.in_flight);
        let running = state.creating.entry(key.clone()).or_default();
        *running += 1;
        if *running > 1 {
            state.stats.same_punch_overlaps += 1;
        }
    }

    fn end_create(&self, key: &(String, NaiveDateTime)) {
        let mut state = self.lock();
        state.in_flight -= 1;
        if let Some(running) = state.creating.get_mut(key) {
            *running -= 1;
            if *running == 0 {
                state.creating.remove(key);
            }
        }
    }
}

/// A running simulated site; stops when dropped.
pub struct FrappeSimulator {
    shared: Arc<Shared>,
    url: String,
    task: JoinHandle<()>,
}

impl FrappeSimulator {
    pub async fn start(
        listener: TcpListener,
        site: Site,
        options: SiteOptions,
    ) -> std::io::Result<FrappeSimulator> {
        FrappeSimulator::start_with_tls(listener, None, site, options).await
    }

    /// Serves HTTPS with `tls` when given.
    pub async fn start_with_tls(
        listener: TcpListener,
        tls: Option<ServerTls>,
        site: Site,
        options: SiteOptions,
    ) -> std::io::Result<FrappeSimulator> {
        let address = listener.local_addr()?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            options,
            state: Mutex::new(State {
                site,
                faults: Faults::default(),
                stats: FrappeStats::default(),
                in_flight: 0,
                creating: HashMap::new(),
            }),
        });
        let router = axum::Router::new()
            .fallback(server::handle)
            .with_state(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = crate::tls::serve(listener, router, tls).await;
        });
        Ok(FrappeSimulator {
            shared,
            url: format!("{scheme}://{address}"),
            task,
        })
    }

    /// Starts on a free loopback port.
    pub async fn start_local(site: Site, options: SiteOptions) -> std::io::Result<FrappeSimulator> {
        FrappeSimulator::start(TcpListener::bind("127.0.0.1:0").await?, site, options).await
    }

    pub fn url(&self) -> String {
        self.url.clone()
    }

    pub fn checkins(&self) -> Vec<Checkin> {
        self.shared.lock().site.checkins.clone()
    }

    pub fn users(&self) -> BTreeMap<String, User> {
        self.shared.lock().site.users.clone()
    }

    pub fn shift_types(&self) -> BTreeMap<String, ShiftType> {
        self.shared.lock().site.shift_types.clone()
    }

    pub fn stats(&self) -> FrappeStats {
        self.shared.lock().stats.clone()
    }

    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Changes the site's documents (e.g. maps a PIN to an employee).
    pub fn edit(&self, change: impl FnOnce(&mut Site)) {
        change(&mut self.shared.lock().site);
    }
}

impl Drop for FrappeSimulator {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A company of `employees` people with PINs 1000, 1001, … (the BioTime simulator's
/// `emp_code`s): every 40th Inactive, every 45th Left, each with a login of their own,
/// and the first a System Manager.
pub fn company(employees: u32) -> Site {
    let mut people = Vec::new();
    let mut users = Vec::new();
    for index in 0..employees {
        let pin = 1000 + index;
        let user = format!("emp{pin}@example.com");
        let status = match index {
            index if index % 40 == 39 => "Inactive",
            index if index % 45 == 44 => "Left",
            _ => "Active",
        };
        people.push(Employee {
            name: format!("HR-EMP-{:05}", index + 1),
            employee_name: format!("Employee {pin}"),
            status: status.into(),
            attendance_device_id: Some(pin.to_string()),
            user_id: Some(user.clone()),
            company: "Demo School".into(),
        });
        users.push(User {
            name: user,
            enabled: true,
            roles: if index == 0 {
                vec!["System Manager".into(), "Employee".into()]
            } else {
                vec!["Employee".into()]
            },
        });
    }
    Site::new(people, users, &["Day Shift"])
}

/// `iclock-sync simulate frappe …`
#[derive(Debug, Clone, clap::Args)]
pub struct FrappeSimulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Employees, with PINs 1000, 1001, … as the BioTime simulator uses.
    #[arg(long, default_value_t = 300)]
    pub employees: u32,
    /// The API key the site accepts (its user has the HR roles and System Manager).
    #[arg(long, default_value = "sync-key")]
    pub api_key: String,
    /// That key's secret.
    #[arg(long, default_value = "sync-secret")]
    pub api_secret: String,
    /// Server time per request (a real site takes about 30 ms for one checkin).
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub latency: Duration,
    /// Server time per document of an insert_many request, on top of --latency
    /// (a real site takes 10–13 ms).
    #[arg(long, default_value = "0s", value_parser = duration::parse)]
    pub document_cost: Duration,
    /// Behave like ERPNext 13 (the checkin method under `erpnext.`).
    #[arg(long)]
    pub legacy_erpnext: bool,
    /// Hide tracebacks as production sites do (System Settings "Show Full Error…"
    /// off): errors carry only their `exc_type`.
    #[arg(long)]
    pub no_tracebacks: bool,
    #[command(flatten)]
    pub tls: crate::simulate::TlsArgs,
}

impl FrappeSimulatorArgs {
    pub fn options(&self) -> SiteOptions {
        SiteOptions {
            keys: vec![ApiKey::new(
                &self.api_key,
                &self.api_secret,
                "sync@example.com",
                &["HR User", "HR Manager", "System Manager"],
            )],
            legacy_erpnext: self.legacy_erpnext,
            latency: self.latency,
            document_cost: self.document_cost,
            tracebacks: !self.no_tracebacks,
            ..SiteOptions::default()
        }
    }
}
