//! User control on Frappe logins: after a checkin is created, the employee's linked
//! User is enabled on IN and disabled on OUT ("staff can use the ERP only while clocked
//! in"). Never a System Manager (nor Administrator): locking out the people who could
//! undo it would be unrecoverable. Only real changes are made and logged.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

use super::client::{CallError, FrappeClient};
use super::employees::Employee;
use crate::user_control::{SwitchLog, SwitchRecord, Target};

#[derive(Debug, Clone, Copy)]
struct UserState {
    enabled: bool,
    manager: bool,
}

/// What happened this cycle, for the summary.
#[derive(Debug, Default)]
struct Tally {
    switched_on: u64,
    switched_off: u64,
    managers_left_alone: BTreeSet<String>,
    problem: Option<String>,
}

pub struct FrappeUsers {
    site: String,
    log: SwitchLog,
    known: Mutex<HashMap<String, UserState>>,
    tally: Mutex<Tally>,
}

impl FrappeUsers {
    pub fn new(site: &str, log: SwitchLog) -> FrappeUsers {
        FrappeUsers {
            site: site.to_owned(),
            log,
            known: Mutex::new(HashMap::new()),
            tally: Mutex::new(Tally::default()),
        }
    }

    /// The users' states are read again each cycle (an administrator may have
    /// changed them).
    pub fn forget(&self) {
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    /// Enables or disables `employee`'s linked User, if it has one and is not a
    /// System Manager.
    pub async fn switch(
        &self,
        client: &FrappeClient,
        employee: &Employee,
        enable: bool,
        because: &str,
    ) {
        let Some(user) = &employee.user_id else {
            return;
        };
        if user == "Administrator" || user == "Guest" {
            return;
        }
        let state = match self.state(client, user).await {
            Ok(state) => state,
            Err(error) => return self.problem(user, &error),
        };
        if state.manager {
            self.tally().managers_left_alone.insert(user.clone());
            return;
        }
        if state.enabled == enable {
            return;
        }
        match self.set(client, user, state, enable, because, false).await {
            Err(error) => return self.problem(user, &error),
            Ok(Err(error)) => {
                self.tally().problem = Some(format!(
                    "{user} was switched but {} cannot be written: {error}",
                    self.log.path().display()
                ));
            }
            Ok(Ok(())) => {}
        }
        let mut tally = self.tally();
        if enable {
            tally.switched_on += 1;
        } else {
            tally.switched_off += 1;
        }
    }

    /// Sets `user` to `enabled` regardless of the punch history (for `undo`); whether
    /// it had to change, or why it could not be.
    pub async fn restore(
        &self,
        client: &FrappeClient,
        user: &str,
        enabled: bool,
    ) -> Result<bool, String> {
        let state = self
            .state(client, user)
            .await
            .map_err(|error| error.describe())?;
        if state.enabled == enabled {
            return Ok(false);
        }
        match self
            .set(client, user, state, enabled, "user-control undo", true)
            .await
        {
            Err(error) => Err(error.describe()),
            Ok(Err(error)) => Err(format!(
                "restored, but {} cannot be written: {error}",
                self.log.path().display()
            )),
            Ok(Ok(())) => Ok(true),
        }
    }

    /// Writes `enabled` to `user` (whose state was `state`) and logs the switch. The
    /// inner error: switched, but not logged.
    async fn set(
        &self,
        client: &FrappeClient,
        user: &str,
        state: UserState,
        enabled: bool,
        because: &str,
        undo: bool,
    ) -> Result<std::io::Result<()>, CallError> {
        client
            .update("User", user, &json!({ "enabled": i64::from(enabled) }))
            .await?;
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.to_owned(), UserState { enabled, ..state });
        let mut record = SwitchRecord::new(
            Target::FrappeUser,
            &self.site,
            user,
            enabled,
            state.enabled,
            because,
        );
        record.undo = undo;
        Ok(self.log.append(&record))
    }

    async fn state(&self, client: &FrappeClient, user: &str) -> Result<UserState, CallError> {
        if let Some(state) = self
            .known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(user)
        {
            return Ok(*state);
        }
        let document = client.document("User", user).await?;
        let enabled = match &document["enabled"] {
            Value::Bool(enabled) => *enabled,
            Value::Number(number) => number.as_i64() != Some(0),
            _ => true,
        };
        let manager = document["roles"]
            .as_array()
            .is_some_and(|roles| roles.iter().any(|role| role["role"] == "System Manager"));
        let state = UserState { enabled, manager };
        self.known
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(user.to_owned(), state);
        Ok(state)
    }

    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn problem(&self, user: &str, error: &CallError) {
        let hint = match error {
            CallError::Answer(answer) if answer.status == 403 => {
                " — switching logins needs the System Manager role for the API user"
            }
            _ => "",
        };
        self.tally().problem = Some(format!("cannot switch {user}: {}{hint}", error.describe()));
    }

    /// The cycle's summary lines; starts a new tally.
    pub fn notes(&self) -> Vec<String> {
        let tally = std::mem::take(&mut *self.tally());
        let mut notes = Vec::new();
        if tally.switched_on + tally.switched_off > 0 {
            notes.push(format!(
                "user control: {} login(s) enabled, {} disabled (logged in {})",
                tally.switched_on,
                tally.switched_off,
                self.log.path().display()
            ));
        }
        if !tally.managers_left_alone.is_empty() {
            notes.push(format!(
                "user control: left System Manager(s) alone: {}",
                tally
                    .managers_left_alone
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        notes.extend(
            tally
                .problem
                .map(|problem| format!("user control: {problem}")),
        );
        notes
    }
}
