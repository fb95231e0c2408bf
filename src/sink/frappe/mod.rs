//! Frappe HR / ERPNext: each punch becomes an Employee Checkin.
//!
//! Per batch: the punch state decides the log type (or that the punch is skipped); the
//! PINs are looked up as Employees in bulk (unknown PIN: "unmapped", reported by PIN,
//! the rest goes on); checkins that already exist at that employee, time and log type
//! are "already present"; the rest are created — in bulk with `insert_many` (see
//! `bulk`) or one by one with HRMS's `add_log_based_on_employee_field` — several
//! requests at once but never two for the same employee and time together: Frappe has
//! no unique index, so parallel duplicates would both land. Frappe's own duplicate answer also counts as already present. The
//! time sent is always the naive wall time in the site's zone, never ISO with an
//! offset (which makes Frappe fail with a 500).
//!
//! Every answer is classified per record as `docs/frappe.md` tabulates: validation
//! errors reject that record with Frappe's decoded message; 401 and 403 stop the sink
//! for the cycle with the fix; 429/502/503/504 and dropped connections are retried for
//! `retry_for`, then left for the next cycle. Optionally (`user_control`), a created
//! IN enables and an OUT disables the person, and Shift Types' `last_sync_of_checkin`
//! follows the devices mapped to them.

mod answer;
mod bulk;
mod checkins;
mod client;
mod config;
mod employees;
mod shift_types;
mod users;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::NaiveDateTime;
use futures::StreamExt;
use futures::future::BoxFuture;
use serde_json::json;

pub use client::{CallError, FrappeClient};
pub use config::{FrappeConfig, KIND, LogChoice, LogTypes, RawFrappeConfig, ShiftTypeMapping};
pub use users::FrappeUsers;

use super::{CycleEnd, Sink, SinkError, SinkOutcome};
use crate::punch::{Punch, wall_time_text};
use crate::report::DeviceReport;
use crate::source::DeviceConfig;
use crate::user_control::{SwitchLog, Target, UserSwitch};
use checkins::CheckinKey;
use employees::{Directory, Employee, Lookup};
use shift_types::ShiftTypes;

/// What to do when Frappe refuses the API key.
const KEY_FIX: &str = "check api_key and api_secret in [sink.frappe] (Frappe: User → Settings → API Access → Generate Keys)";
/// Frappe's limit for `device_id`.
const DEVICE_ID_LIMIT: usize = 140;

/// What the sink knows of a configured device.
struct DeviceFacts {
    location: String,
    coordinates: Option<(f64, f64)>,
}

/// A person on a device: the `[[device]]` name and the PIN.
type DevicePin = (Arc<str>, String);

/// A punch on its way to becoming a checkin.
struct Planned<'a> {
    index: usize,
    punch: &'a Punch,
    employee: Employee,
    log_type: Option<&'static str>,
    /// Wall time in the site's zone.
    time: NaiveDateTime,
}

pub struct FrappeSink {
    config: FrappeConfig,
    client: FrappeClient,
    directory: Directory,
    devices: HashMap<String, DeviceFacts>,
    /// Why the sink stopped for this cycle (401, 403, no checkin method).
    stopped: Mutex<Option<String>>,
    users: Option<FrappeUsers>,
    /// Device user control: per device and PIN, the latest switch asked for.
    switches: Mutex<HashMap<DevicePin, (NaiveDateTime, UserSwitch)>>,
    shift_types: ShiftTypes,
    /// When the current cycle began, in the site's zone.
    cycle_began: Mutex<NaiveDateTime>,
    target: String,
}

impl FrappeSink {
    /// Checks the key and the Employee field before anything is read, so that a wrong
    /// key or a missing role stops the run at once (exit 2). A site that cannot be
    /// reached now is not an error here: its punches wait for the next cycle.
    pub async fn open(
        config: &FrappeConfig,
        devices: &[DeviceConfig],
        output_dir: &std::path::Path,
    ) -> Result<FrappeSink, SinkError> {
        let target = match &config.host {
            Some(host) => format!("{} (site {host})", config.url),
            None => config.url.clone(),
        };
        let error = |problem: String, fix: String| SinkError {
            sink: "frappe".into(),
            target: target.clone(),
            problem,
            fix,
            outage: false,
        };
        let client = FrappeClient::new(config)
            .map_err(|problem| error(problem, "check [sink.frappe]".into()))?;
        let user = match client.probe("frappe.auth.get_logged_user").await {
            Ok(user) => user.as_str().unwrap_or_default().to_owned(),
            Err(CallError::Unreachable(problem)) => {
                tracing::warn!("{problem}; its punches wait for the next cycle");
                String::new()
            }
            Err(CallError::Answer(answer)) => {
                return Err(error(
                    refusal(&answer, &config.url),
                    match answer.status {
                        401 => KEY_FIX.into(),
                        404 => "check url in [sink.frappe] (and host, for a bench that serves several sites)".into(),
                        _ => "check url, api_key and api_secret in [sink.frappe]".into(),
                    },
                ));
            }
        };
        let field = &config.employee_field;
        let probe = client
            .probe_list(
                "Employee",
                &[
                    ("filters", json!([[field, "is", "set"]]).to_string()),
                    ("fields", json!(["name"]).to_string()),
                    ("limit_page_length", "1".into()),
                ],
            )
            .await;
        match probe {
            Ok(_) | Err(CallError::Unreachable(_)) => {}
            Err(CallError::Answer(answer)) if answer.status == 403 => {
                return Err(error(
                    format!("Frappe denied access: {}", answer.message),
                    format!(
                        "give the API user{} the HR User role (Frappe: User → Roles)",
                        if user.is_empty() {
                            String::new()
                        } else {
                            format!(" {user}")
                        }
                    ),
                ));
            }
            Err(CallError::Answer(answer)) => {
                return Err(error(
                    format!("employee_field '{field}' cannot be used: {}", answer.message),
                    "set employee_field in [sink.frappe] to the Employee field holding the terminal PIN (default attendance_device_id)".into(),
                ));
            }
        }
        let log = SwitchLog::in_dir(output_dir);
        Ok(FrappeSink {
            client,
            directory: Directory::new(field),
            devices: devices
                .iter()
                .map(|device| {
                    (
                        device.name.clone(),
                        DeviceFacts {
                            location: device.location(),
                            coordinates: device.coordinates,
                        },
                    )
                })
                .collect(),
            stopped: Mutex::new(None),
            users: config
                .user_control
                .contains(&Target::FrappeUser)
                .then(|| FrappeUsers::new(&config.url, log)),
            switches: Mutex::new(HashMap::new()),
            shift_types: ShiftTypes::new(config.shift_types.clone()),
            cycle_began: Mutex::new(NaiveDateTime::default()),
            target,
            config: config.clone(),
        })
    }

    /// For `user-control undo`.
    pub fn client(&self) -> &FrappeClient {
        &self.client
    }

    fn stopped(&self) -> Option<String> {
        self.stopped
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops the sink for the rest of the cycle; returns the reason.
    fn stop(&self, reason: String) -> String {
        tracing::error!("sink frappe: {reason}");
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = Some(reason.clone());
        reason
    }

    /// What a failed call means for the punches it was for.
    fn failure(&self, error: CallError) -> SinkOutcome {
        match error {
            CallError::Unreachable(problem) => SinkOutcome::Failed(problem),
            CallError::Answer(answer) if matches!(answer.status, 401 | 403) => {
                let fix = if answer.status == 401 {
                    KEY_FIX
                } else {
                    "give the API user the HR User role"
                };
                SinkOutcome::Failed(
                    self.stop(format!("{} — {fix}", refusal(&answer, &self.config.url))),
                )
            }
            CallError::Answer(answer) if answer.is_redirect() => {
                SinkOutcome::Failed(self.stop(answer.message))
            }
            CallError::Answer(answer) if answer.is_missing_method() => {
                SinkOutcome::Failed(self.stop(format!(
                    "{} has no Employee Checkin method ({}) — install Frappe HR (hrms) on the site",
                    self.config.url, answer.message
                )))
            }
            CallError::Answer(answer) => SinkOutcome::Rejected(format!(
                "Frappe answered HTTP {} {}: {}",
                answer.status, answer.exc_type, answer.message
            )),
        }
    }

    /// The punch's wall time in the site's zone.
    fn site_time(&self, punch: &Punch) -> NaiveDateTime {
        match self.config.timezone {
            Some(zone) => punch.utc().with_timezone(&zone).naive_local(),
            None => punch.local_time,
        }
    }

    fn device_id(&self, punch: &Punch) -> String {
        let device = &*punch.device.name;
        let terminal = if punch.terminal.is_empty() {
            device
        } else {
            &*punch.terminal
        };
        let location = self
            .devices
            .get(device)
            .map(|facts| facts.location.as_str())
            .unwrap_or_default();
        self.config
            .device_id
            .replace("{terminal}", terminal)
            .replace("{serial}", &punch.serial)
            .replace("{device}", device)
            .replace("{location}", location)
            .chars()
            .take(DEVICE_ID_LIMIT)
            .collect()
    }

    /// Where the punch's device stands, when configured.
    fn coordinates(&self, punch: &Punch) -> Option<(f64, f64)> {
        self.devices
            .get(&*punch.device.name)
            .and_then(|facts| facts.coordinates)
    }

    /// Creates one checkin; the outcome and, when created, the checkin's name.
    async fn create(&self, plan: &Planned<'_>) -> (SinkOutcome, Option<String>) {
        if let Some(reason) = self.stopped() {
            return (SinkOutcome::Failed(reason), None);
        }
        let punch = plan.punch;
        let mut arguments = json!({
            "employee_field_value": punch.user_id,
            "employee_fieldname": self.config.employee_field,
            "timestamp": wall_time_text(plan.time),
            "device_id": self.device_id(punch),
            "skip_auto_attendance": i64::from(self.config.skip_auto_attendance),
        });
        if let Some(log_type) = plan.log_type {
            arguments["log_type"] = json!(log_type);
        }
        if let Some((latitude, longitude)) = self.coordinates(punch) {
            arguments["latitude"] = json!(latitude);
            arguments["longitude"] = json!(longitude);
        }
        match self.client.add_log(&arguments).await {
            Ok(created) => (
                SinkOutcome::Delivered,
                created["name"].as_str().map(str::to_owned),
            ),
            Err(CallError::Answer(answer)) if answer.is_duplicate() => {
                (SinkOutcome::AlreadyPresent, None)
            }
            Err(CallError::Answer(answer)) if answer.is_unknown_employee() => {
                (SinkOutcome::Unmapped(answer.message), None)
            }
            Err(CallError::Answer(answer)) if answer.is_inactive_employee() => (
                SinkOutcome::Rejected(format!(
                    "employee {} ({}) is Inactive in Frappe: {}",
                    plan.employee.name, plan.employee.employee_name, answer.message
                )),
                None,
            ),
            Err(error) => (self.failure(error), None),
        }
    }

    /// Decides what becomes of each punch short of creating it: skipped by its log
    /// type, unmapped or ambiguous PIN (recorded in `outcomes`); the rest is returned
    /// with the checkins Frappe already has. `Err`: the outcome of every punch not
    /// decided yet (the lookups failed).
    async fn plan<'a>(
        &self,
        batch: &'a [Punch],
        outcomes: &mut [Option<SinkOutcome>],
    ) -> Result<(Vec<Planned<'a>>, HashSet<CheckinKey>), SinkOutcome> {
        if let Some(reason) = self.stopped() {
            return Err(SinkOutcome::Failed(reason));
        }
        let mut wanted = Vec::new();
        for (index, punch) in batch.iter().enumerate() {
            match self.config.log_types.of(punch.state) {
                LogChoice::Skip => outcomes[index] = Some(SinkOutcome::Skipped),
                choice => wanted.push((index, choice.log_type())),
            }
        }
        // A lookup that fails fails the punches: they are retried, never refused.
        let failed = |what: &str, error: CallError| match self.failure(error) {
            SinkOutcome::Rejected(reason) => SinkOutcome::Failed(format!("{what}: {reason}")),
            other => other,
        };
        let pins = wanted
            .iter()
            .map(|(index, _)| batch[*index].user_id.as_str());
        self.directory
            .resolve(&self.client, pins)
            .await
            .map_err(|error| failed("cannot look up employees", error))?;
        let field = self.directory.field();
        let mut planned = Vec::new();
        for (index, log_type) in wanted {
            let punch = &batch[index];
            match self.directory.get(&punch.user_id) {
                Some(Lookup::Found(employee)) => planned.push(Planned {
                    index,
                    punch,
                    employee,
                    log_type,
                    time: self.site_time(punch),
                }),
                Some(Lookup::Ambiguous(names)) => {
                    outcomes[index] = Some(SinkOutcome::Rejected(format!(
                        "employees {} all have {field} = {}; keep the PIN on one of them",
                        names.join(", "),
                        punch.user_id
                    )));
                }
                Some(Lookup::Missing) | None => {
                    outcomes[index] = Some(SinkOutcome::Unmapped(format!(
                        "no Employee has {field} = {} in {}",
                        punch.user_id, self.config.url
                    )));
                }
            }
        }
        let wanted: Vec<(&str, NaiveDateTime)> = planned
            .iter()
            .map(|plan| (plan.employee.name.as_str(), plan.time))
            .collect();
        let existing = checkins::existing(&self.client, &wanted)
            .await
            .map_err(|error| failed("cannot list existing checkins", error))?;
        Ok((planned, existing))
    }

    /// Creates the checkins of one employee and time (positions in `planned`), in order.
    async fn create_group(
        &self,
        planned: &[Planned<'_>],
        group: Vec<usize>,
    ) -> Vec<(usize, SinkOutcome, Option<String>)> {
        let mut results = Vec::with_capacity(group.len());
        for position in group {
            let (outcome, name) = self.create(&planned[position]).await;
            results.push((position, outcome, name));
        }
        results
    }

    /// User control for the checkins just created: per person, the latest one decides.
    async fn control_users(&self, created: &[(&Planned<'_>, Option<String>)]) {
        let mut latest: HashMap<&str, (&Planned, &Option<String>)> = HashMap::new();
        for (plan, name) in created {
            if plan.log_type.is_none() {
                continue;
            }
            let entry = latest
                .entry(plan.employee.name.as_str())
                .or_insert((plan, name));
            if plan.time >= entry.0.time {
                *entry = (plan, name);
            }
        }
        for (plan, name) in latest.into_values() {
            let enable = plan.log_type == Some("IN");
            let because = format!(
                "{} at {}{}",
                plan.log_type.unwrap_or_default(),
                wall_time_text(plan.time),
                name.as_ref()
                    .map(|name| format!(" (checkin {name})"))
                    .unwrap_or_default()
            );
            if let Some(users) = &self.users {
                users
                    .switch(&self.client, &plan.employee, enable, &because)
                    .await;
            }
            if self.config.user_control.contains(&Target::Device) {
                let key = (
                    Arc::clone(&plan.punch.device.name),
                    plan.punch.user_id.clone(),
                );
                let switch = UserSwitch {
                    device: Arc::clone(&plan.punch.device.name),
                    user_id: plan.punch.user_id.clone(),
                    enable,
                    because,
                };
                let mut switches = self.switches.lock().unwrap_or_else(PoisonError::into_inner);
                let entry = switches.entry(key).or_insert((plan.time, switch.clone()));
                if plan.time >= entry.0 {
                    *entry = (plan.time, switch);
                }
            }
        }
    }
}

/// A 401/403/404 from the probes or a call, in words.
fn refusal(answer: &answer::ErrorAnswer, url: &str) -> String {
    match answer.status {
        401 => format!(
            "Frappe at {url} refused the API key (401 {})",
            answer.exc_type
        ),
        403 => format!("Frappe at {url} denied access (403): {}", answer.message),
        404 => format!(
            "{url} answered 404 for the Frappe API ({}) — is this the site's address?",
            answer.message
        ),
        _ => format!(
            "Frappe at {url} answered HTTP {}: {}",
            answer.status, answer.message
        ),
    }
}

#[async_trait]
impl Sink for FrappeSink {
    fn name(&self) -> &str {
        "frappe"
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    async fn begin_cycle(&self) {
        self.client.reset();
        self.directory.forget();
        if let Some(users) = &self.users {
            users.forget();
        }
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = None;
        let now = chrono::Utc::now();
        *self
            .cycle_began
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = match self.config.timezone {
            Some(zone) => now.with_timezone(&zone).naive_local(),
            None => now.with_timezone(&chrono::Local).naive_local(),
        };
    }

    async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome> {
        let mut outcomes: Vec<Option<SinkOutcome>> = vec![None; batch.len()];
        let (planned, existing) = match self.plan(batch, &mut outcomes).await {
            Ok(plan) => plan,
            Err(outcome) => {
                for slot in outcomes.iter_mut().filter(|slot| slot.is_none()) {
                    *slot = Some(outcome.clone());
                }
                return finish(outcomes);
            }
        };
        // One group per employee and time: sent in order, never two at once.
        let mut groups: HashMap<(&str, NaiveDateTime), Vec<usize>> = HashMap::new();
        for (position, plan) in planned.iter().enumerate() {
            let key = (
                plan.employee.name.clone(),
                plan.time,
                plan.log_type.unwrap_or_default().to_owned(),
            );
            if existing.contains(&key) {
                outcomes[plan.index] = Some(SinkOutcome::AlreadyPresent);
            } else {
                groups
                    .entry((plan.employee.name.as_str(), plan.time))
                    .or_default()
                    .push(position);
            }
        }
        // A punch alone at its employee and time, of an active employee, can go in
        // bulk; the rest (IN and OUT in one second, Inactive employees) one by one.
        let (single, grouped): (Vec<Vec<usize>>, Vec<Vec<usize>>) =
            groups.into_values().partition(|group| {
                self.config.batch_size > 1
                    && group.len() == 1
                    && planned[group[0]].employee.status != "Inactive"
            });
        let single: Vec<usize> = single.into_iter().flatten().collect();
        let mut requests: Vec<BoxFuture<'_, Vec<(usize, SinkOutcome, Option<String>)>>> =
            Vec::new();
        for chunk in single.chunks(self.config.batch_size.max(1)) {
            requests.push(Box::pin(self.create_in_bulk(&planned, chunk.to_vec())));
        }
        for group in grouped {
            requests.push(Box::pin(self.create_group(&planned, group)));
        }
        let results: Vec<Vec<(usize, SinkOutcome, Option<String>)>> =
            futures::stream::iter(requests)
                .buffer_unordered(self.config.concurrency)
                .collect()
                .await;
        let mut created = Vec::new();
        for (position, outcome, name) in results.into_iter().flatten() {
            let plan = &planned[position];
            if outcome == SinkOutcome::Delivered {
                created.push((plan, name));
            }
            outcomes[plan.index] = Some(outcome);
        }
        if !self.config.user_control.is_empty() {
            self.control_users(&created).await;
        }
        finish(outcomes)
    }

    async fn finish_cycle(&self, devices: &[DeviceReport]) -> CycleEnd {
        let began = *self
            .cycle_began
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let mut notes = self.shift_types.advance(&self.client, devices, began).await;
        if let Some(users) = &self.users {
            notes.extend(users.notes());
        }
        let switches =
            std::mem::take(&mut *self.switches.lock().unwrap_or_else(PoisonError::into_inner))
                .into_values()
                .map(|(_, switch)| switch)
                .collect();
        CycleEnd { notes, switches }
    }
}

fn finish(outcomes: Vec<Option<SinkOutcome>>) -> Vec<SinkOutcome> {
    outcomes
        .into_iter()
        .map(|outcome| outcome.unwrap_or_else(|| SinkOutcome::Failed("not sent".into())))
        .collect()
}
