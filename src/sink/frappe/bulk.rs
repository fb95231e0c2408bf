//! Creating checkins in bulk: `frappe.client.insert_many` takes up to 200 documents per
//! request and costs the site a third of what one `add_log_based_on_employee_field`
//! call per checkin does. But it is all or nothing — one duplicate or Inactive
//! employee fails the whole request, commits none of it, and does not say which — so
//! only punches of resolved, active employees that the existing-checkin lookup did not
//! find go this way, and a batch Frappe refuses is sent again one by one through
//! `add_log`, which classifies each punch.

use serde_json::{Value, json};

use super::client::CallError;
use super::{FrappeSink, Planned};
use crate::punch::wall_time_text;
use crate::sink::SinkOutcome;

impl FrappeSink {
    /// Creates the checkins at `positions` of `planned` (each its own employee and
    /// time) in one request, or one by one if Frappe refuses the request.
    pub(super) async fn create_in_bulk(
        &self,
        planned: &[Planned<'_>],
        positions: Vec<usize>,
    ) -> Vec<(usize, SinkOutcome, Option<String>)> {
        if let Some(reason) = self.stopped() {
            return failed_all(positions, &SinkOutcome::Failed(reason));
        }
        let docs: Vec<Value> = positions
            .iter()
            .map(|position| self.document(&planned[*position]))
            .collect();
        match self.client.insert_many(&docs).await {
            Ok(names) if names.len() == positions.len() => positions
                .into_iter()
                .zip(names)
                .map(|(position, name)| (position, SinkOutcome::Delivered, Some(name)))
                .collect(),
            Err(CallError::Unreachable(problem)) => {
                failed_all(positions, &SinkOutcome::Failed(problem))
            }
            Err(CallError::Answer(answer)) if answer.status == 401 || answer.is_redirect() => {
                failed_all(positions, &self.failure(CallError::Answer(answer)))
            }
            // Refused (a duplicate, an Inactive employee, an answer that does not add
            // up): nothing of it was committed, so each is sent on its own and judged
            // on its own — one that did land answers "already there".
            refused => {
                if let Err(error) = refused {
                    tracing::debug!(
                        "insert_many refused a batch ({}); sending it one by one",
                        error.describe()
                    );
                }
                let mut results = Vec::with_capacity(positions.len());
                for position in positions {
                    let (outcome, name) = self.create(&planned[position]).await;
                    results.push((position, outcome, name));
                }
                results
            }
        }
    }

    /// The Employee Checkin document of `plan`, as `insert_many` takes it.
    fn document(&self, plan: &Planned<'_>) -> Value {
        let mut document = json!({
            "doctype": "Employee Checkin",
            "employee": plan.employee.name,
            "time": wall_time_text(plan.time),
            "device_id": self.device_id(plan.punch),
            "skip_auto_attendance": i64::from(self.config.skip_auto_attendance),
        });
        if let Some(log_type) = plan.log_type {
            document["log_type"] = json!(log_type);
        }
        if let Some((latitude, longitude)) = self.coordinates(plan.punch) {
            document["latitude"] = json!(latitude);
            document["longitude"] = json!(longitude);
        }
        document
    }
}

fn failed_all(
    positions: Vec<usize>,
    outcome: &SinkOutcome,
) -> Vec<(usize, SinkOutcome, Option<String>)> {
    positions
        .into_iter()
        .map(|position| (position, outcome.clone(), None))
        .collect()
}
