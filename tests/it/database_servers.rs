//! The database servers the SQL sinks are tested against: that they answer on
//! loopback, are versions the sinks support, and that each test's corner of them is
//! its own and goes away with it.

use sqlx::{Connection, MySqlConnection, PgConnection};

use crate::support::databases::{MARIADB, MariaDatabase, POSTGRES, PgSchema};

#[tokio::test]
async fn each_test_gets_a_postgres_schema_of_its_own_dropped_afterwards() {
    let first = PgSchema::new().await;
    let second = PgSchema::new().await;
    let mut one = PgConnection::connect(&first.url).await.expect("connect");
    let mut other = PgConnection::connect(&second.url).await.expect("connect");
    sqlx::query("CREATE TABLE punches (id TEXT PRIMARY KEY)")
        .execute(&mut one)
        .await
        .expect("create in the first schema");
    let seen: Option<String> = sqlx::query_scalar("SELECT to_regclass('punches')::text")
        .fetch_one(&mut other)
        .await
        .expect("look from the second");
    assert_eq!(seen, None, "the second schema sees the first one's table");

    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int")
        .fetch_one(&mut one)
        .await
        .expect("version");
    assert!(version >= 120_000, "PostgreSQL {version} is older than 12");

    let name = first.name.clone();
    drop(one);
    drop(first);
    let mut admin = PgConnection::connect(POSTGRES).await.expect("connect");
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .expect("count");
    assert_eq!(left, 0, "schema {name} outlived its test");
}

#[tokio::test]
async fn each_test_gets_a_mariadb_database_of_its_own_dropped_afterwards() {
    let database = MariaDatabase::new().await;
    let mut connection = MySqlConnection::connect(&database.url)
        .await
        .expect("connect");
    let current: Option<String> = sqlx::query_scalar("SELECT DATABASE()")
        .fetch_one(&mut connection)
        .await
        .expect("current database");
    assert_eq!(current.as_deref(), Some(database.name.as_str()));

    let version: String = sqlx::query_scalar("SELECT VERSION()")
        .fetch_one(&mut connection)
        .await
        .expect("version");
    let mut numbers = version
        .split(['.', '-'])
        .map(|part| part.parse::<u32>().unwrap_or(0));
    let (major, minor) = (numbers.next().unwrap_or(0), numbers.next().unwrap_or(0));
    assert!(
        (major, minor) >= (10, 6),
        "MariaDB {version} is older than 10.6"
    );

    let name = database.name.clone();
    drop(connection);
    drop(database);
    let mut admin = MySqlConnection::connect(MARIADB).await.expect("connect");
    let left: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(&name)
    .fetch_one(&mut admin)
    .await
    .expect("count");
    assert_eq!(left, 0, "database {name} outlived its test");
}
