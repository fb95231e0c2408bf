//! The database servers on this machine, one private corner per test: a PostgreSQL
//! schema or a MariaDB database of its own, so tests run in parallel without meeting,
//! dropped again when the test ends. `scripts/test` starts both servers when they are
//! down and fails if it cannot, so a server that does not answer here is a failure,
//! never a skip.

use std::sync::atomic::{AtomicU32, Ordering};

use sqlx::{Connection, Executor, MySqlConnection, PgConnection};

/// The PostgreSQL server: trust authentication, database `test`.
pub const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The MariaDB server: root without a password, database `test`.
pub const MARIADB: &str = "mysql://root@127.0.0.1:3306/test";

/// A name no other test (or test run) uses: process ID and a counter.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `sql` against `url` on a runtime of its own: usable from `Drop`.
fn run_detached(url: &'static str, sql: String) {
    let cleanup = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for clean-up");
        runtime.block_on(async {
            if url.starts_with("postgres") {
                let mut connection = PgConnection::connect(url).await?;
                connection.execute(sqlx::AssertSqlSafe(sql)).await?;
            } else {
                let mut connection = MySqlConnection::connect(url).await?;
                connection.execute(sqlx::AssertSqlSafe(sql)).await?;
            }
            Ok::<_, sqlx::Error>(())
        })
    });
    if let Ok(Err(error)) = cleanup.join() {
        eprintln!("could not clean up after a test: {error}");
    }
}

/// A PostgreSQL schema of the test's own; `url` reaches it (as `search_path`).
pub struct PgSchema {
    pub name: String,
    pub url: String,
}

impl PgSchema {
    pub async fn new() -> PgSchema {
        let name = unique_name("it");
        let mut connection = PgConnection::connect(POSTGRES)
            .await
            .unwrap_or_else(|error| {
                panic!("PostgreSQL at {POSTGRES} does not answer ({error}); scripts/test starts it")
            });
        connection
            .execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .expect("create a schema");
        let url = format!("{POSTGRES}?options=-csearch_path%3D{name}");
        PgSchema { name, url }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        run_detached(
            POSTGRES,
            format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        );
    }
}

/// A MariaDB database of the test's own; `url` reaches it.
pub struct MariaDatabase {
    pub name: String,
    pub url: String,
}

impl MariaDatabase {
    pub async fn new() -> MariaDatabase {
        let name = unique_name("it");
        let mut connection = MySqlConnection::connect(MARIADB)
            .await
            .unwrap_or_else(|error| {
                panic!("MariaDB at {MARIADB} does not answer ({error}); scripts/test starts it")
            });
        connection
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create a database");
        let url = format!("mysql://root@127.0.0.1:3306/{name}");
        MariaDatabase { name, url }
    }
}

impl Drop for MariaDatabase {
    fn drop(&mut self) {
        run_detached(MARIADB, format!("DROP DATABASE IF EXISTS {}", self.name));
    }
}
