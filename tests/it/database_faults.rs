//! Exactly once into every database through faults: the process killed (SIGKILL) in
//! the middle of writing, and the server going away mid-run and coming back. After a
//! clean run, each database holds exactly the punches of the ledger, once each, and
//! every punch the ledger counts as delivered is there.
//!
//! MongoDB (SecantusDB) is really killed and restarted on the same data. PostgreSQL and
//! MariaDB are shared by the whole suite, so their restart is played by a relay that
//! drops every connection and refuses new ones for a while (`support::proxy`): to the
//! client, the same as a restart or a connection broken mid-batch.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use iclock_sync::simulate::biotime::BiotimeSimulator;
use sqlx::{Connection, MySqlConnection, PgConnection};

use crate::support::databases::{MariaDatabase, PgSchema};
use crate::support::mongo::MongoServer;
use crate::support::proxy::Relay;
use crate::support::{Workspace, options, punches, simulator};

const PUNCHES: u64 = 30_000;

/// The database a test writes to, and how to read back what it holds.
enum Database {
    Postgres(PgSchema),
    Maria(MariaDatabase),
    Mongo(MongoServer),
}

impl Database {
    /// The `[sink.…]` section, reaching the server through `port` (a relay) or directly.
    fn sink(&self, port: Option<u16>) -> String {
        let through = |url: &str, real: u16| match port {
            Some(port) => url.replace(&format!(":{real}/"), &format!(":{port}/")),
            None => url.to_owned(),
        };
        match self {
            Database::Postgres(schema) => {
                format!(
                    "[sink.postgres]\nurl = \"{}\"\n",
                    through(&schema.url, 5432)
                )
            }
            Database::Maria(database) => {
                format!("[sink.mysql]\nurl = \"{}\"\n", through(&database.url, 3306))
            }
            Database::Mongo(server) => format!(
                "[sink.mongodb]\nurl = \"{}\"\n",
                through(&server.url("attendance"), server.port)
            ),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Database::Postgres(_) => "postgres",
            Database::Maria(_) => "mysql",
            Database::Mongo(_) => "mongodb",
        }
    }

    fn address(&self) -> SocketAddr {
        let port = match self {
            Database::Postgres(_) => 5432,
            Database::Maria(_) => 3306,
            Database::Mongo(server) => server.port,
        };
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// The IDs stored, and how many rows hold them.
    async fn stored(&self) -> (BTreeSet<String>, usize) {
        let ids: Vec<String> = match self {
            Database::Postgres(schema) => {
                let Ok(mut db) = PgConnection::connect(&schema.url).await else {
                    return (BTreeSet::new(), 0);
                };
                sqlx::query_scalar("SELECT id FROM iclock_punches")
                    .fetch_all(&mut db)
                    .await
                    .unwrap_or_default()
            }
            Database::Maria(database) => {
                let Ok(mut db) = MySqlConnection::connect(&database.url).await else {
                    return (BTreeSet::new(), 0);
                };
                sqlx::query_scalar("SELECT id FROM iclock_punches")
                    .fetch_all(&mut db)
                    .await
                    .unwrap_or_default()
            }
            Database::Mongo(server) => server
                .documents("attendance", "punches")
                .await
                .iter()
                .filter_map(|document| document.get_str("_id").ok().map(str::to_owned))
                .collect(),
        };
        let rows = ids.len();
        (ids.into_iter().collect(), rows)
    }

    async fn count(&self) -> usize {
        self.stored().await.1
    }
}

async fn postgres() -> Database {
    Database::Postgres(PgSchema::new().await)
}

async fn mariadb() -> Database {
    Database::Maria(MariaDatabase::new().await)
}

async fn mongodb() -> Database {
    Database::Mongo(MongoServer::start().await)
}

/// Waits until the database holds some punches, but not all: the run is mid-way.
async fn wait_until_writing(database: &Database, child: &mut tokio::process::Child) -> bool {
    for _ in 0..2000 {
        if child.try_wait().ok().flatten().is_some() {
            return false;
        }
        let count = database.count().await;
        if count > 0 && (count as u64) < PUNCHES {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

/// After a clean run: the database holds the ledger's punches, each once, and the
/// ledger counts every one of them as delivered (or already there).
async fn assert_exactly_once(workspace: &Workspace, database: &Database) {
    let run = workspace.sync(&[], 0).await;
    let report = crate::database_sinks::sink_report(&run.summary(), database.name());
    assert_eq!(report["pending"], 0, "{report}");
    let ledger = workspace.ledger_ids().await;
    assert_eq!(ledger.len() as u64, PUNCHES);
    let (stored, rows) = database.stored().await;
    assert_eq!(rows, stored.len(), "a punch stored twice");
    assert_eq!(
        stored, ledger,
        "the database holds exactly the ledger's punches"
    );
    let settled = workspace
        .ledger_number("SELECT COUNT(*) FROM deliveries WHERE state NOT IN (2, 3)")
        .await;
    assert_eq!(
        settled, 0,
        "every delivery is settled as delivered or already there"
    );
}

/// A BioTime server with the punches, and a workspace syncing it into `database`.
async fn workspace_for(database: &Database, port: Option<u16>) -> (Workspace, BiotimeSimulator) {
    let sim = simulator(options(), punches(PUNCHES, 77)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 2000", &database.sink(port));
    (workspace, sim)
}

/// SIGKILL while the sink writes, three times, then a clean run.
async fn killed_mid_batch(database: Database) {
    let (workspace, _sim) = workspace_for(&database, None).await;
    let mut landed = 0;
    for _ in 0..3 {
        let mut child = workspace.command(&[]).spawn().expect("spawn");
        if wait_until_writing(&database, &mut child).await {
            let _ = child.start_kill();
            landed += 1;
        }
        let _ = child.wait().await;
    }
    assert!(
        landed >= 1,
        "no kill landed while {} was being written",
        database.name()
    );
    assert_exactly_once(&workspace, &database).await;
}

/// The server goes away while the sink writes and comes back a moment later.
async fn restarted_mid_run(mut database: Database) {
    let relay = Relay::start(database.address()).await;
    let through_relay = !matches!(database, Database::Mongo(_));
    let port = through_relay.then_some(relay.port);
    let (workspace, _sim) = workspace_for(&database, port).await;
    let mut child = workspace.command(&["--json"]).spawn().expect("spawn");
    assert!(
        wait_until_writing(&database, &mut child).await,
        "the run ended before {} was written to",
        database.name()
    );
    if let Database::Mongo(server) = &mut database {
        server.restart().await;
    } else {
        relay.go_down();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        relay.restore();
    }
    let status = tokio::time::timeout(Duration::from_secs(120), child.wait())
        .await
        .expect("the run ends")
        .expect("wait");
    assert!(matches!(status.code(), Some(0 | 1)), "{status:?}");
    assert_exactly_once(&workspace, &database).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_killed_mid_batch() {
    killed_mid_batch(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_killed_mid_batch() {
    killed_mid_batch(mariadb().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_killed_mid_batch() {
    killed_mid_batch(mongodb().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_mid_run() {
    restarted_mid_run(postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_restarted_mid_run() {
    restarted_mid_run(mariadb().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_restarted_mid_run() {
    restarted_mid_run(mongodb().await).await;
}
