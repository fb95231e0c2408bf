//! Google Firestore (Firebase) — the destination the Python iclock-sync was built for.
//!
//! Punches go out as BatchWrite requests of at most 500 writes (Firestore's limit),
//! never the same document twice in one request, several requests in flight. Each
//! write creates its document only if it does not exist (see [`documents`]): the
//! answer "already exists" for one write means the punch is already there, never an
//! error. Transient failures (unavailable, deadline, contention, quota) are retried with
//! back-off for `retry_for`; what still fails is left undelivered for the next cycle, and
//! for the next `retry_for` further writes fail at once instead of each waiting it out.

mod config;
mod credentials;
pub mod documents;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use firestore::gcloud_sdk::google::firestore::v1::BatchWriteRequest;
use firestore::{FirestoreDb, FirestoreDbOptions};
use futures::StreamExt;
use futures::future::BoxFuture;
use tonic::Code;

pub use config::{FirestoreConfig, KIND, Schema};
pub use credentials::PYTHON_DEFAULT_KEY;

use super::{Sink, SinkContext, SinkError, SinkOutcome};
use crate::punch::Punch;

/// Firestore accepts at most this many writes per request.
const WRITES_PER_REQUEST: usize = 500;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Google's Firestore API.
const GOOGLE_FIRESTORE_API: &str = "https://firestore.googleapis.com";

pub struct FirestoreSink {
    db: FirestoreDb,
    schema: Schema,
    database: String,
    collection_path: String,
    concurrency: usize,
    retry_for: Duration,
    target: String,
    trouble: credentials::TokenTrouble,
    /// Since when, and why, Firestore has been out of reach.
    unreachable: Mutex<Option<(tokio::time::Instant, String)>>,
}

impl FirestoreSink {
    pub async fn open(
        config: &FirestoreConfig,
        context: &SinkContext<'_>,
    ) -> Result<FirestoreSink, SinkError> {
        let environment = context.environment;
        let emulator = config
            .emulator_host
            .clone()
            .or_else(|| environment.get("FIRESTORE_EMULATOR_HOST"))
            .filter(|host| !host.trim().is_empty());
        let error = |target: String, problem: String, fix: &str| SinkError {
            sink: "firestore".into(),
            target,
            problem,
            fix: fix.to_owned(),
            outage: false,
        };
        let resolved = credentials::resolve(config, context, emulator.is_some())
            .await
            .map_err(|problem| {
                error(
                    config.collection().to_owned(),
                    problem.0,
                    "see the Firestore section of README.md",
                )
            })?;
        let endpoint = config
            .endpoint
            .as_deref()
            .map(|endpoint| endpoint.trim_end_matches('/').to_owned());
        let target = match (&emulator, &endpoint) {
            (Some(host), _) => format!("project {}, emulator {host}", resolved.project_id),
            (None, Some(url)) => format!("project {}, endpoint {url}", resolved.project_id),
            (None, None) => format!("project {}", resolved.project_id),
        };
        // Always explicit: the firestore crate would otherwise read
        // FIRESTORE_EMULATOR_HOST itself, even when it is set but empty.
        let api_url = match (emulator, endpoint) {
            (Some(host), _) if host.contains("://") => host,
            (Some(host), _) => format!("http://{host}"),
            (None, Some(endpoint)) => endpoint,
            (None, None) => GOOGLE_FIRESTORE_API.to_owned(),
        };
        let options = FirestoreDbOptions::new(resolved.project_id.clone())
            .with_database_id(config.database().to_owned())
            .with_firebase_api_url(api_url);
        // With the credentials found, what fails here is the connection: Firestore
        // is down or out of reach, and its punches wait.
        let db = FirestoreDb::with_options_auth(options, resolved.headers)
            .await
            .map_err(|cause| SinkError {
                outage: true,
                ..error(
                    target.clone(),
                    format!("cannot reach Firestore with {}: {cause}", resolved.source),
                    "check the network path to Firestore (and project_id)",
                )
            })?;
        let database = format!(
            "projects/{}/databases/{}",
            resolved.project_id,
            config.database()
        );
        tracing::debug!(%target, credentials = %resolved.source, "Firestore sink ready");
        Ok(FirestoreSink {
            collection_path: format!("{database}/documents/{}", config.collection()),
            db,
            schema: config.schema,
            database,
            concurrency: config.concurrency(),
            retry_for: config.retry_for(),
            target: format!("{target}, collection {}", config.collection()),
            trouble: resolved.trouble,
            unreachable: Mutex::new(None),
        })
    }

    /// Why Firestore is still considered out of reach, if it is.
    fn still_unreachable(&self) -> Option<String> {
        let state = self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state
            .as_ref()
            .filter(|(since, _)| since.elapsed() < self.retry_for)
            .map(|(_, problem)| problem.clone())
    }

    fn set_unreachable(&self, problem: Option<String>) {
        let mut state = self
            .unreachable
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        *state = problem.map(|problem| (tokio::time::Instant::now(), problem));
    }

    /// Writes `punches` (distinct document IDs, at most 500) with retries; answers for each.
    async fn write(&self, punches: Vec<(&Punch, &str)>) -> Vec<SinkOutcome> {
        if let Some(problem) = self.still_unreachable() {
            return vec![SinkOutcome::Failed(problem); punches.len()];
        }
        let mut outcomes: Vec<Option<SinkOutcome>> = vec![None; punches.len()];
        let mut pending: Vec<usize> = (0..punches.len()).collect();
        let deadline = tokio::time::Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(250);
        let mut last_problem = String::new();
        while !pending.is_empty() {
            let writes = pending
                .iter()
                .map(|index| {
                    let (punch, id) = punches[*index];
                    documents::create(punch, self.schema, &self.collection_path, id)
                })
                .collect();
            let mut request = tonic::Request::new(BatchWriteRequest {
                database: self.database.clone(),
                writes,
                labels: HashMap::new(),
                request_options: None,
            });
            request.set_timeout(REQUEST_TIMEOUT);
            match self.db.client().get().batch_write(request).await {
                Ok(response) => {
                    self.set_unreachable(None);
                    let statuses = response.into_inner().status;
                    let mut retry = Vec::new();
                    for (position, index) in pending.iter().enumerate() {
                        let (code, message) = statuses
                            .get(position)
                            .map(|status| (Code::from(status.code), status.message.clone()))
                            .unwrap_or((Code::Unknown, "no status for this write".to_owned()));
                        match code {
                            Code::Ok => outcomes[*index] = Some(SinkOutcome::Delivered),
                            Code::AlreadyExists => {
                                outcomes[*index] = Some(SinkOutcome::AlreadyPresent)
                            }
                            code if transient(code) => {
                                last_problem =
                                    format!("Firestore answered {code:?} for a write: {message}");
                                retry.push(*index);
                            }
                            code => {
                                outcomes[*index] = Some(SinkOutcome::Rejected(format!(
                                    "Firestore refused the document ({code:?}: {message})"
                                )));
                            }
                        }
                    }
                    pending = retry;
                }
                Err(_) if let Some(trouble) = self.trouble.current() => {
                    let problem = format!(
                        "{trouble} — the token endpoint refused the key: check that it has not been deleted or disabled in the Google Cloud console (IAM → Service accounts → Keys) and that this computer's clock is right"
                    );
                    // Every other request would meet the same refusal.
                    self.set_unreachable(Some(problem.clone()));
                    for index in pending.drain(..) {
                        outcomes[index] = Some(SinkOutcome::Failed(problem.clone()));
                    }
                }
                Err(status) if transient(status.code()) => {
                    last_problem = format!(
                        "Firestore is unreachable or busy ({:?}: {}) — check that Firestore (or the emulator) is up",
                        status.code(),
                        status.message()
                    );
                }
                Err(status) => {
                    let hint = match status.code() {
                        Code::PermissionDenied | Code::Unauthenticated => {
                            " — the credentials may not write to this project: give the service account the Cloud Datastore User role, and check project_id"
                        }
                        Code::NotFound => {
                            " — check project_id and that the project has a Firestore database"
                        }
                        _ => "",
                    };
                    let problem = format!(
                        "Firestore refused the batch ({:?}: {}){hint}",
                        status.code(),
                        status.message()
                    );
                    for index in pending.drain(..) {
                        outcomes[index] = Some(SinkOutcome::Failed(problem.clone()));
                    }
                }
            }
            if pending.is_empty() {
                break;
            }
            if tokio::time::Instant::now() + pause > deadline {
                tracing::warn!("{last_problem}; giving up until the next cycle");
                self.set_unreachable(Some(last_problem.clone()));
                for index in pending.drain(..) {
                    outcomes[index] = Some(SinkOutcome::Failed(last_problem.clone()));
                }
                break;
            }
            tracing::debug!(?pause, "{last_problem}; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(8));
        }
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| SinkOutcome::Failed("not written".into())))
            .collect()
    }
}

/// Failures worth retrying: the service is down, slow, contended or rate-limited.
fn transient(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Aborted
            | Code::Internal
            | Code::Unknown
    )
}

#[async_trait]
impl Sink for FirestoreSink {
    fn name(&self) -> &str {
        "firestore"
    }

    fn target(&self) -> String {
        self.target.clone()
    }

    async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome> {
        let ids: Vec<String> = batch
            .iter()
            .map(|punch| documents::document_id(punch, self.schema))
            .collect();
        let withheld: Vec<Option<String>> = batch
            .iter()
            .map(|punch| documents::withheld_by_schema(punch, self.schema))
            .collect();
        // Under the legacy scheme two punches (IN and OUT in one second) share a document:
        // it is written once, and the second punch shares the first one's outcome.
        let mut first_of: HashMap<&str, usize> = HashMap::new();
        let unique: Vec<usize> = (0..batch.len())
            .filter(|index| withheld[*index].is_none())
            .filter(|index| first_of.entry(ids[*index].as_str()).or_insert(*index) == index)
            .collect();
        let requests: Vec<BoxFuture<'_, (Vec<usize>, Vec<SinkOutcome>)>> = unique
            .chunks(WRITES_PER_REQUEST)
            .map(|chunk| {
                let chunk = chunk.to_vec();
                let punches = chunk
                    .iter()
                    .map(|index| (&batch[*index], ids[*index].as_str()))
                    .collect();
                let request: BoxFuture<'_, _> =
                    Box::pin(async move { (chunk, self.write(punches).await) });
                request
            })
            .collect();
        let mut outcomes: Vec<Option<SinkOutcome>> = vec![None; batch.len()];
        let mut finished = futures::stream::iter(requests).buffer_unordered(self.concurrency);
        while let Some((chunk, answers)) = finished.next().await {
            for (index, answer) in chunk.into_iter().zip(answers) {
                outcomes[index] = Some(answer);
            }
        }
        (0..batch.len())
            .map(|index| {
                if let Some(reason) = &withheld[index] {
                    return SinkOutcome::Withheld(reason.clone());
                }
                let first = first_of[ids[index].as_str()];
                match (&outcomes[first], first == index) {
                    (Some(outcome), true) => outcome.clone(),
                    (Some(SinkOutcome::Delivered | SinkOutcome::AlreadyPresent), false) => {
                        SinkOutcome::AlreadyPresent
                    }
                    (Some(other), false) => other.clone(),
                    (None, _) => SinkOutcome::Failed("not written".into()),
                }
            })
            .collect()
    }
}
