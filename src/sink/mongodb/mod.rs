//! MongoDB: one document per punch, its `_id` the punch ID.
//!
//! A batch is one unordered `insert_many`: every document the server can take is
//! written, and its answer says which were not — a duplicate key (11000) is a punch
//! already there, any other write error refuses that punch alone. A network or server
//! error fails the batch; the ledger sends it again and the documents written before
//! the error come back as already there. Writes ask for the majority and the journal,
//! so an acknowledged punch survives the server's crash.

mod config;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use mongodb::bson::{self, Document, doc};
use mongodb::error::{Error, ErrorKind};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Collection, IndexModel};

pub use config::{KIND, MongoConfig};

use super::{Sink, SinkError, SinkOutcome};
use crate::punch::Punch;

/// The code of a duplicate key.
const DUPLICATE_KEY: i32 = 11000;

/// The collection keeping the store's identity (beside the punches).
const STORE: &str = "iclock_sync_store";

pub struct MongoSink {
    config: MongoConfig,
    client: Client,
    punches: Collection<Document>,
}

impl MongoSink {
    pub async fn open(config: MongoConfig) -> Result<MongoSink, SinkError> {
        let fail = |error: &Error| open_error(&config, error);
        let mut options = ClientOptions::parse(config.url.expose())
            .await
            .map_err(|error| fail(&error))?;
        options.app_name = Some("iclock-sync".to_owned());
        options.max_pool_size = Some(config.pool_size);
        // Unless the URL says otherwise (serverSelectionTimeoutMS, connectTimeoutMS).
        options
            .server_selection_timeout
            .get_or_insert(Duration::from_secs(15));
        options
            .connect_timeout
            .get_or_insert(Duration::from_secs(10));
        options.write_concern = Some(
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build(),
        );
        let client = Client::with_options(options).map_err(|error| fail(&error))?;
        let database = client.database(&config.database);
        database
            .run_command(doc! { "ping": 1 })
            .await
            .map_err(|error| fail(&error))?;
        let punches = database.collection::<Document>(&config.collection);
        // The queries people make: a person's punches, a device's punches, by time.
        let indexes = [
            ("by_user_time", doc! { "user_id": 1, "local_time": 1 }),
            ("by_device_time", doc! { "device_name": 1, "local_time": 1 }),
        ]
        .map(|(name, keys)| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        });
        punches
            .create_indexes(indexes)
            .await
            .map_err(|error| fail(&error))?;
        // The store's identity, made once.
        database
            .collection::<Document>(STORE)
            .update_one(
                doc! { "_id": "identity" },
                doc! { "$setOnInsert": { "value": bson::oid::ObjectId::new().to_hex() } },
            )
            .upsert(true)
            .await
            .map_err(|error| fail(&error))?;
        Ok(MongoSink {
            config,
            client,
            punches,
        })
    }

    fn failure(&self, error: &Error) -> String {
        let (problem, fix) = trouble(error);
        self.config.url.scrub(&format!(
            "sink {} ({}): {problem} — {fix}",
            self.config.name,
            target(&self.config)
        ))
    }

    async fn insert(&self, documents: Vec<Document>) -> Vec<SinkOutcome> {
        let count = documents.len();
        match self.punches.insert_many(documents).ordered(false).await {
            Ok(_) => vec![SinkOutcome::Delivered; count],
            Err(error) => {
                let ErrorKind::InsertMany(failure) = error.kind.as_ref() else {
                    let reason = self.failure(&error);
                    tracing::warn!("{reason}");
                    return vec![SinkOutcome::Failed(reason); count];
                };
                // Not confirmed by the majority: nothing counts as durable yet.
                if let Some(concern) = &failure.write_concern_error {
                    let reason = self.failure(&error);
                    tracing::warn!("{reason} ({})", concern.message);
                    return vec![SinkOutcome::Failed(reason); count];
                }
                let mut outcomes = vec![SinkOutcome::Delivered; count];
                for written in failure.write_errors.iter().flatten() {
                    if let Some(outcome) = outcomes.get_mut(written.index) {
                        *outcome = if written.code == DUPLICATE_KEY {
                            SinkOutcome::AlreadyPresent
                        } else {
                            SinkOutcome::Rejected(format!(
                                "{} refuses the document: {} (code {})",
                                self.config.collection, written.message, written.code
                            ))
                        };
                    }
                }
                outcomes
            }
        }
    }
}

/// The document for `punch`.
fn document(punch: &Punch, delivered_at: DateTime<Utc>) -> Document {
    let date = |instant: DateTime<Utc>| bson::DateTime::from_millis(instant.timestamp_millis());
    doc! {
        "_id": punch.id.as_str(),
        "device_name": &*punch.device.name,
        "device_serial": &*punch.serial,
        "user_id": &punch.user_id,
        "local_time": punch.local_time_text(),
        "utc_time": date(punch.utc()),
        "timezone": punch.device.timezone.name(),
        "punch_state": punch.state,
        "verify_mode": punch.verify_mode,
        "work_code": &punch.work_code,
        "source": punch.source.as_str(),
        "source_key": &punch.source_key,
        "received_at": date(punch.received_at.unwrap_or(delivered_at)),
        "delivered_at": date(delivered_at),
    }
}

/// `mongodb://user:****@host/ (attendance.punches)`, for summaries.
fn target(config: &MongoConfig) -> String {
    format!(
        "{} ({}.{})",
        config.url.redacted(),
        config.database,
        config.collection
    )
}

/// What is wrong and what to do about it.
fn trouble(error: &Error) -> (String, String) {
    let again = "it is tried again; if it persists, check the server's log".to_owned();
    match error.kind.as_ref() {
        ErrorKind::Authentication { message, .. } => (
            format!("the server refused the login: {message}"),
            "check the user and password in url (a password belongs in .env, e.g. ${MONGO_PASSWORD}) and authSource".into(),
        ),
        ErrorKind::ServerSelection { message, .. } => (
            format!("cannot reach the database: {message}"),
            "check that the server is running and reachable from here (host, port, firewall, replicaSet)".into(),
        ),
        ErrorKind::InvalidArgument { message, .. } => (
            format!("the connection settings are refused: {message}"),
            format!("check url, e.g. {}", config::URL_EXAMPLE),
        ),
        ErrorKind::Command(command) => match command.code {
            13 => (
                format!("missing privilege: {}", command.message),
                "grant the user the readWrite role on the database".into(),
            ),
            18 => (
                format!("the server refused the login: {}", command.message),
                "check the user and password in url".into(),
            ),
            10107 | 13435 | 189 => (
                format!("{}: the server is not the primary", command.message),
                "point url at the replica set (all members, with replicaSet=…) or the primary".into(),
            ),
            _ => (command.message.clone(), again),
        },
        _ => (error.to_string(), again),
    }
}

/// Authentication, privileges and bad settings are for a person to fix (exit 2);
/// anything else (down, elected, dropped) is an outage.
fn is_setup(error: &Error) -> bool {
    match error.kind.as_ref() {
        ErrorKind::Authentication { .. } | ErrorKind::InvalidArgument { .. } => true,
        ErrorKind::Command(command) => matches!(command.code, 13 | 18),
        _ => false,
    }
}

fn open_error(config: &MongoConfig, error: &Error) -> SinkError {
    let (problem, fix) = trouble(error);
    SinkError {
        sink: config.name.clone(),
        target: target(config),
        problem: config.url.scrub(&problem),
        fix,
        outage: !is_setup(error),
    }
}

#[async_trait]
impl Sink for MongoSink {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn target(&self) -> String {
        target(&self.config)
    }

    async fn identity(&self) -> Option<String> {
        self.client
            .database(&self.config.database)
            .collection::<Document>(STORE)
            .find_one(doc! { "_id": "identity" })
            .await
            .ok()
            .flatten()
            .and_then(|document| document.get_str("value").ok().map(str::to_owned))
    }

    async fn deliver(&self, batch: &[Punch]) -> Vec<SinkOutcome> {
        let delivered_at = Utc::now();
        let mut outcomes = Vec::with_capacity(batch.len());
        // Once the server failed a whole chunk, the rest wait with it.
        let mut failure: Option<String> = None;
        for chunk in batch.chunks(self.config.batch_size) {
            if let Some(reason) = &failure {
                outcomes.extend(vec![SinkOutcome::Failed(reason.clone()); chunk.len()]);
                continue;
            }
            let documents = chunk
                .iter()
                .map(|punch| document(punch, delivered_at))
                .collect();
            let answers = self.insert(documents).await;
            if let Some(SinkOutcome::Failed(reason)) = answers.first()
                && answers
                    .iter()
                    .all(|answer| matches!(answer, SinkOutcome::Failed(_)))
            {
                failure = Some(reason.clone());
            }
            outcomes.extend(answers);
        }
        outcomes
    }

    async fn close(&self) {
        self.client.clone().shutdown().await;
    }
}
