//! The PostgreSQL and MySQL/MariaDB sinks against the real servers: the exact rows,
//! field by field and type by type, for devices in two time zones across a DST
//! change; nothing written twice; their tables with their column names; a refused row
//! rejected alone; a server restarted and a process killed mid-run.

use iclock_sync::simulate::biotime::{BiotimeSimulator, SimTransaction};
use sqlx::{Connection, MySqlConnection, PgConnection, Row};

use crate::support::databases::{MariaDatabase, PgSchema};
use crate::support::{Workspace, options, simulator, wall};

/// A punch from terminal `serial` (numbered by [`numbered`]).
fn punch(serial: &str, pin: &str, time: &str, state: u32) -> SimTransaction {
    SimTransaction {
        id: 0,
        emp_code: pin.into(),
        punch_time: time.into(),
        punch_state: state.to_string(),
        verify_type: 15,
        work_code: "7".into(),
        terminal_sn: serial.into(),
        terminal_alias: "Gate".into(),
        upload_time: wall(time),
    }
}

/// The rows with BioTime's own IDs 1, 2, ...
fn numbered(mut rows: Vec<SimTransaction>) -> Vec<SimTransaction> {
    for (index, row) in rows.iter_mut().enumerate() {
        row.id = index as i64 + 1;
    }
    rows
}

/// Two BioTime servers: one for a school in Delhi (Asia/Kolkata), one in New York,
/// whose punches straddle the DST changes of 2026 (8 March, 1 November).
async fn two_sites() -> (BiotimeSimulator, BiotimeSimulator) {
    let delhi = simulator(
        options(),
        numbered(vec![
            punch("DEL-1", "1001", "2026-03-08 09:15:30", 0),
            punch("DEL-1", "1001", "2026-03-08 17:45:00", 1),
            // The same person and second on two terminals: two punches.
            punch("DEL-1", "3001", "2026-03-09 08:00:00", 0),
            punch("DEL-2", "3001", "2026-03-09 08:00:00", 0),
        ]),
    )
    .await;
    let new_york = simulator(
        options(),
        numbered(vec![
            punch("NY-1", "2001", "2026-03-08 01:30:00", 0), // EST, UTC-5
            punch("NY-1", "2001", "2026-03-08 03:30:00", 1), // EDT, UTC-4
            punch("NY-1", "2002", "2026-11-01 01:30:00", 0), // the repeated hour: the earlier (EDT)
            punch("NY-1", "2002", "2026-11-01 03:00:00", 1), // EST again
        ]),
    )
    .await;
    (delhi, new_york)
}

fn config(delhi: &BiotimeSimulator, new_york: &BiotimeSimulator, sink: &str) -> String {
    let device = |name: &str, url: String, zone: &str| {
        format!(
            "[[device]]\nname = \"{name}\"\nkind = \"biotime\"\nurl = \"{url}\"\nusername = \"admin\"\npassword = \"admin\"\ntimezone = \"{zone}\"\n"
        )
    };
    format!(
        "{sink}\n{}{}",
        device("Delhi", delhi.url(), "Asia/Kolkata"),
        device("New York", new_york.url(), "America/New_York")
    )
}

/// (PIN, device serial, local wall time, UTC instant, zone, state) of each expected row.
pub const EXPECTED: &[(&str, &str, &str, &str, &str, i32)] = &[
    (
        "1001",
        "DEL-1",
        "2026-03-08 09:15:30",
        "2026-03-08 03:45:30",
        "Asia/Kolkata",
        0,
    ),
    (
        "1001",
        "DEL-1",
        "2026-03-08 17:45:00",
        "2026-03-08 12:15:00",
        "Asia/Kolkata",
        1,
    ),
    (
        "2001",
        "NY-1",
        "2026-03-08 01:30:00",
        "2026-03-08 06:30:00",
        "America/New_York",
        0,
    ),
    (
        "2001",
        "NY-1",
        "2026-03-08 03:30:00",
        "2026-03-08 07:30:00",
        "America/New_York",
        1,
    ),
    (
        "2002",
        "NY-1",
        "2026-11-01 01:30:00",
        "2026-11-01 05:30:00",
        "America/New_York",
        0,
    ),
    (
        "2002",
        "NY-1",
        "2026-11-01 03:00:00",
        "2026-11-01 08:00:00",
        "America/New_York",
        1,
    ),
    (
        "3001",
        "DEL-1",
        "2026-03-09 08:00:00",
        "2026-03-09 02:30:00",
        "Asia/Kolkata",
        0,
    ),
    (
        "3001",
        "DEL-2",
        "2026-03-09 08:00:00",
        "2026-03-09 02:30:00",
        "Asia/Kolkata",
        0,
    ),
];

/// The punch ID iclock-sync gives a row of [`EXPECTED`].
pub fn id_of(serial: &str, pin: &str, local: &str, state: i32) -> String {
    iclock_sync::punch::PunchId::native(serial, pin, wall(local), state).into_string()
}

/// The two sites of [`two_sites`] synced into the sink `sink_name` (configured by the
/// section `sink`) twice: the first run writes every punch, the second nothing.
pub async fn two_sites_synced_twice(sink: &str, sink_name: &str) -> Workspace {
    let (delhi, new_york) = two_sites().await;
    let workspace = Workspace::new();
    workspace.write("iclock-sync.toml", &config(&delhi, &new_york, sink));
    let run = workspace.sync(&[], 0).await;
    let sink = sink_report(&run.summary(), sink_name);
    assert_eq!(sink["delivered"], 8, "{sink}");
    let again = workspace.sync(&[], 0).await;
    let sink = sink_report(&again.summary(), sink_name);
    assert_eq!(sink["delivered"], 0, "a second run writes nothing: {sink}");
    assert!(
        !run.all_output().contains("secret-pw") && !again.all_output().contains("secret-pw"),
        "the password never shows"
    );
    workspace
}

pub fn sink_report(summary: &serde_json::Value, name: &str) -> serde_json::Value {
    summary["sinks"]
        .as_array()
        .and_then(|sinks| sinks.iter().find(|sink| sink["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name} in {summary}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_gets_each_punch_once_field_by_field_across_time_zones_and_dst() {
    let schema = PgSchema::new().await;
    two_sites_synced_twice(
        &format!("[sink.postgres]\nurl = \"{}\"\n", schema.url),
        "postgres",
    )
    .await;

    let mut db = PgConnection::connect(&schema.url).await.expect("connect");
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'iclock_punches' ORDER BY ordinal_position",
    )
    .fetch_all(&mut db)
    .await
    .expect("columns");
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "text"),
            ("device_name", "text"),
            ("device_serial", "text"),
            ("user_id", "text"),
            ("local_time", "timestamp without time zone"),
            ("utc_time", "timestamp with time zone"),
            ("timezone", "text"),
            ("punch_state", "integer"),
            ("verify_mode", "integer"),
            ("work_code", "text"),
            ("source", "text"),
            ("source_key", "text"),
            ("received_at", "timestamp with time zone"),
            ("delivered_at", "timestamp with time zone"),
        ]
    );
    let rows = sqlx::query(
        "SELECT id, device_name, device_serial, user_id, local_time, utc_time, timezone, punch_state, \
         verify_mode, work_code, source, source_key, received_at, delivered_at \
         FROM iclock_punches ORDER BY user_id, device_serial, utc_time",
    )
    .fetch_all(&mut db)
    .await
    .expect("rows");
    assert_eq!(rows.len(), EXPECTED.len());
    for (row, (pin, serial, local, utc, zone, state)) in rows.iter().zip(EXPECTED) {
        let local_time: chrono::NaiveDateTime = row.get("local_time");
        let utc_time: chrono::DateTime<chrono::Utc> = row.get("utc_time");
        assert_eq!(
            row.get::<String, _>("id"),
            id_of(serial, pin, local, *state)
        );
        assert_eq!(row.get::<String, _>("user_id"), *pin);
        assert_eq!(row.get::<String, _>("device_serial"), *serial);
        assert_eq!(
            row.get::<String, _>("device_name"),
            if zone.starts_with("Asia") {
                "Delhi"
            } else {
                "New York"
            }
        );
        assert_eq!(local_time, wall(local), "local wall time of {pin} {local}");
        assert_eq!(
            utc_time.naive_utc(),
            wall(utc),
            "UTC instant of {pin} {local} in {zone}"
        );
        assert_eq!(row.get::<String, _>("timezone"), *zone);
        assert_eq!(row.get::<i32, _>("punch_state"), *state);
        assert_eq!(row.get::<i32, _>("verify_mode"), 15);
        assert_eq!(row.get::<String, _>("work_code"), "7");
        assert_eq!(row.get::<String, _>("source"), "biotime");
        assert!(row.get::<String, _>("source_key").starts_with("biotime:"));
        let received: chrono::DateTime<chrono::Utc> = row.get("received_at");
        let delivered: chrono::DateTime<chrono::Utc> = row.get("delivered_at");
        let now = chrono::Utc::now();
        assert!(
            received <= delivered && delivered <= now,
            "{received} {delivered}"
        );
        assert!(now - received < chrono::Duration::minutes(5));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_gets_each_punch_once_field_by_field_across_time_zones_and_dst() {
    let database = MariaDatabase::new().await;
    two_sites_synced_twice(
        &format!("[sink.mysql]\nurl = \"{}\"\n", database.url),
        "mysql",
    )
    .await;

    let mut db = MySqlConnection::connect(&database.url)
        .await
        .expect("connect");
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR) FROM information_schema.COLUMNS \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'iclock_punches' ORDER BY ORDINAL_POSITION",
    )
    .fetch_all(&mut db)
    .await
    .expect("columns");
    let types: Vec<(&str, &str)> = types
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("id", "char(32)"),
            ("device_name", "varchar(100)"),
            ("device_serial", "varchar(64)"),
            ("user_id", "varchar(64)"),
            ("local_time", "datetime"),
            ("utc_time", "datetime(6)"),
            ("timezone", "varchar(64)"),
            ("punch_state", "int(11)"),
            ("verify_mode", "int(11)"),
            ("work_code", "varchar(64)"),
            ("source", "varchar(16)"),
            ("source_key", "varchar(255)"),
            ("received_at", "datetime(6)"),
            ("delivered_at", "datetime(6)"),
        ]
    );
    let rows = sqlx::query(
        // `utc_time` quoted: unquoted, MySQL reads it as its UTC_TIME() function.
        "SELECT id, device_name, device_serial, user_id, local_time, `utc_time`, timezone, punch_state, \
         verify_mode, work_code, source, source_key, received_at, delivered_at \
         FROM iclock_punches ORDER BY user_id, device_serial, `utc_time`",
    )
    .fetch_all(&mut db)
    .await
    .expect("rows");
    assert_eq!(rows.len(), EXPECTED.len());
    for (row, (pin, serial, local, utc, zone, state)) in rows.iter().zip(EXPECTED) {
        let local_time: chrono::NaiveDateTime = row.get("local_time");
        let utc_time: chrono::NaiveDateTime = row.get("utc_time");
        assert_eq!(
            row.get::<String, _>("id"),
            id_of(serial, pin, local, *state)
        );
        assert_eq!(row.get::<String, _>("user_id"), *pin);
        assert_eq!(row.get::<String, _>("device_serial"), *serial);
        assert_eq!(local_time, wall(local), "local wall time of {pin} {local}");
        assert_eq!(
            utc_time,
            wall(utc),
            "UTC instant of {pin} {local} in {zone}"
        );
        assert_eq!(row.get::<String, _>("timezone"), *zone);
        assert_eq!(row.get::<i32, _>("punch_state"), *state);
        assert_eq!(row.get::<i32, _>("verify_mode"), 15);
        assert_eq!(row.get::<String, _>("work_code"), "7");
        assert_eq!(row.get::<String, _>("source"), "biotime");
        let received: chrono::NaiveDateTime = row.get("received_at");
        let delivered: chrono::NaiveDateTime = row.get("delivered_at");
        let now = chrono::Utc::now().naive_utc();
        assert!(
            received <= delivered && delivered <= now,
            "{received} {delivered}"
        );
        assert!(now - received < chrono::Duration::minutes(5));
    }
}

/// BioTime's `iclock_transaction` as an HR system might keep it, without the unique
/// key iclock-sync needs; `{table}` is its qualified name.
const POSTGRES_THEIR_TABLE: &str = "CREATE TABLE {table} (
    id serial PRIMARY KEY,
    emp_code varchar(20) NOT NULL,
    punch_time timestamptz NOT NULL,
    punch_state varchar(5) NOT NULL,
    verify_type integer NOT NULL,
    work_code varchar(20) NOT NULL,
    terminal_sn varchar(50) NOT NULL,
    terminal_alias varchar(50),
    upload_time timestamptz,
    area_alias varchar(30) NOT NULL DEFAULT 'Head office'
)";

const MYSQL_THEIR_TABLE: &str = "CREATE TABLE {table} (
    id INT AUTO_INCREMENT PRIMARY KEY,
    emp_code VARCHAR(20) NOT NULL,
    punch_time DATETIME(6) NOT NULL,
    punch_state VARCHAR(5) NOT NULL,
    verify_type INT NOT NULL,
    work_code VARCHAR(20) NOT NULL,
    terminal_sn VARCHAR(50) NOT NULL,
    terminal_alias VARCHAR(50),
    upload_time DATETIME(6),
    area_alias VARCHAR(30) NOT NULL DEFAULT 'Head office'
) DEFAULT CHARSET=utf8mb4";

/// emp_code, punch_time, punch_state, verify_type, work_code, terminal_sn,
/// terminal_alias, area_alias.
type TheirRow<Time> = (
    String,
    Time,
    String,
    i32,
    String,
    String,
    Option<String>,
    String,
);

const THEIR_COLUMNS: &str = "user_id = \"emp_code\"\nlocal_time = \"punch_time\"\npunch_state = \"punch_state\"\nverify_mode = \"verify_type\"\nwork_code = \"work_code\"\ndevice_serial = \"terminal_sn\"\ndevice_name = \"terminal_alias\"\ndelivered_at = \"upload_time\"\n";

/// One site whose third punch has no work code, which the table refuses (NOT NULL).
async fn site_with_a_refused_punch() -> BiotimeSimulator {
    let mut refused = punch("DEL-1", "4004", "2026-03-10 08:00:02", 0);
    refused.work_code = String::new();
    simulator(
        options(),
        numbered(vec![
            punch("DEL-1", "4001", "2026-03-10 08:00:00", 0),
            punch("DEL-1", "4002", "2026-03-10 08:00:01", 0),
            refused,
            punch("DEL-1", "4005", "2026-03-10 08:00:03", 1),
        ]),
    )
    .await
}

/// Their table: refused without a unique key (exit 2, the statement printed); once
/// the printed statement has been run, the rows land in the mapped columns and the
/// refused punch alone is rejected; a second run writes nothing.
async fn their_table(workspace: &Workspace, sink: &str, create_index: impl AsyncFnOnce(String)) {
    let refused = workspace.sync(&[], 2).await;
    let output = refused.all_output();
    assert!(output.contains("no unique key"), "{output}");
    let statement = output
        .lines()
        .map(str::trim)
        .find(|line| line.starts_with("CREATE UNIQUE INDEX"))
        .unwrap_or_else(|| panic!("no statement in {output}"))
        .to_owned();
    create_index(statement).await;

    let run = workspace.sync(&[], 1).await;
    let report = sink_report(&run.summary(), sink);
    assert_eq!(report["delivered"], 3, "{report}");
    assert_eq!(report["rejected"], 1, "{report}");
    let quarantine = workspace.read("output/quarantine.jsonl");
    assert!(
        quarantine.contains("work_code") && quarantine.contains("4004"),
        "the refused punch is quarantined with the database's reason: {quarantine}"
    );
    let again = workspace.sync(&[], 0).await;
    assert_eq!(sink_report(&again.summary(), sink)["delivered"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_their_iclock_transaction_table_gets_the_mapped_columns_and_refuses_one_row_alone()
{
    let schema = PgSchema::new().await;
    let table = format!("{}.iclock_transaction", schema.name);
    let mut db = PgConnection::connect(&schema.url).await.expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        POSTGRES_THEIR_TABLE.replace("{table}", &table),
    ))
    .execute(&mut db)
    .await
    .expect("their table");
    let site = site_with_a_refused_punch().await;
    let workspace = Workspace::new();
    workspace.configure(
        &[site.url()],
        "",
        &format!(
            "[sink.postgres]\nname = \"hr\"\nurl = \"{}\"\ntable = \"{table}\"\n[sink.postgres.columns]\n{THEIR_COLUMNS}",
            schema.url
        ),
    );
    their_table(&workspace, "hr", async |statement| {
        assert_eq!(
            statement,
            format!(
                "CREATE UNIQUE INDEX \"iclock_transaction_iclock_sync_key\" ON \"{}\".\"iclock_transaction\" (\"emp_code\", \"punch_time\", \"terminal_sn\");",
                schema.name
            )
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut db)
            .await
            .expect("the printed statement runs");
    })
    .await;

    let rows: Vec<TheirRow<chrono::DateTime<chrono::Utc>>> =
        sqlx::query_as(
            "SELECT emp_code, punch_time, punch_state, verify_type, work_code, terminal_sn, terminal_alias, area_alias \
             FROM iclock_transaction ORDER BY emp_code",
        )
        .fetch_all(&mut db)
        .await
        .expect("rows");
    let at = |text: &str| wall(text).and_utc();
    // The device is in UTC (Workspace::configure), so wall time and instant agree.
    assert_eq!(
        rows,
        [
            (
                "4001".into(),
                at("2026-03-10 08:00:00"),
                "0".into(),
                15,
                "7".into(),
                "DEL-1".into(),
                Some("Device 1".into()),
                "Head office".into()
            ),
            (
                "4002".into(),
                at("2026-03-10 08:00:01"),
                "0".into(),
                15,
                "7".into(),
                "DEL-1".into(),
                Some("Device 1".into()),
                "Head office".into()
            ),
            (
                "4005".into(),
                at("2026-03-10 08:00:03"),
                "1".into(),
                15,
                "7".into(),
                "DEL-1".into(),
                Some("Device 1".into()),
                "Head office".into()
            ),
        ]
    );
    let uploaded: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM iclock_transaction WHERE upload_time > now() - interval '5 minutes'",
    )
    .fetch_one(&mut db)
    .await
    .expect("upload times");
    assert_eq!(uploaded, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_their_iclock_transaction_table_gets_the_mapped_columns_and_refuses_one_row_alone()
{
    let database = MariaDatabase::new().await;
    let mut db = MySqlConnection::connect(&database.url)
        .await
        .expect("connect");
    sqlx::raw_sql(sqlx::AssertSqlSafe(
        MYSQL_THEIR_TABLE.replace("{table}", "iclock_transaction"),
    ))
    .execute(&mut db)
    .await
    .expect("their table");
    let site = site_with_a_refused_punch().await;
    let workspace = Workspace::new();
    workspace.configure(
        &[site.url()],
        "",
        &format!(
            "[sink.mysql]\nname = \"payroll\"\nurl = \"{}\"\ntable = \"iclock_transaction\"\n[sink.mysql.columns]\n{THEIR_COLUMNS}",
            database.url
        ),
    );
    their_table(&workspace, "payroll", async |statement| {
        assert_eq!(
            statement,
            "CREATE UNIQUE INDEX `iclock_transaction_iclock_sync_key` ON `iclock_transaction` (`emp_code`, `punch_time`, `terminal_sn`);"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut db)
            .await
            .expect("the printed statement runs");
    })
    .await;

    let rows: Vec<TheirRow<chrono::NaiveDateTime>> =
        sqlx::query_as(
            "SELECT emp_code, punch_time, punch_state, verify_type, work_code, terminal_sn, terminal_alias, area_alias \
             FROM iclock_transaction ORDER BY emp_code",
        )
        .fetch_all(&mut db)
        .await
        .expect("rows");
    assert_eq!(
        rows,
        [
            (
                "4001".into(),
                wall("2026-03-10 08:00:00"),
                "0".into(),
                15,
                "7".into(),
                "DEL-1".into(),
                Some("Device 1".into()),
                "Head office".into()
            ),
            (
                "4002".into(),
                wall("2026-03-10 08:00:01"),
                "0".into(),
                15,
                "7".into(),
                "DEL-1".into(),
                Some("Device 1".into()),
                "Head office".into()
            ),
            (
                "4005".into(),
                wall("2026-03-10 08:00:03"),
                "1".into(),
                15,
                "7".into(),
                "DEL-1".into(),
                Some("Device 1".into()),
                "Head office".into()
            ),
        ]
    );
}

/// One punch on one BioTime server, into `sink`.
pub async fn one_punch_into(sink: &str) -> (Workspace, BiotimeSimulator) {
    let site = simulator(
        options(),
        numbered(vec![punch("DEL-1", "5001", "2026-03-11 08:00:00", 0)]),
    )
    .await;
    let workspace = Workspace::new();
    workspace.configure(&[site.url()], "", sink);
    (workspace, site)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_migrate_false_a_missing_table_names_the_migration_and_db_migrate_creates_it() {
    let schema = PgSchema::new().await;
    let sink = format!(
        "[sink.postgres]\nname = \"school\"\nurl = \"{}\"\nmigrate = false\n",
        schema.url
    );
    let (workspace, _site) = one_punch_into(&sink).await;
    let refused = workspace.sync(&[], 2).await.all_output();
    assert!(
        refused.contains("migration 0001_punches")
            && refused.contains("`iclock-sync db migrate school`"),
        "{refused}"
    );

    let migrated = workspace.run(&["db", "migrate", "school"]).await;
    assert_eq!(migrated.code, Some(0), "{}", migrated.all_output());
    assert!(
        migrated.stdout.contains("applied 0001_punches"),
        "{}",
        migrated.stdout
    );
    let again = workspace.run(&["db", "migrate", "school"]).await;
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    let unknown = workspace.run(&["db", "migrate", "payroll"]).await;
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains("the database sinks are: school"),
        "{}",
        unknown.stderr
    );

    let run = workspace.sync(&[], 0).await;
    assert_eq!(sink_report(&run.summary(), "school")["delivered"], 1);
}

/// A fresh MariaDB user with `password` and the given grants on `database`.
async fn mariadb_user(database: &MariaDatabase, password: &str, grants: &str) -> String {
    let user = format!("{}_u", database.name);
    let mut admin = MySqlConnection::connect(crate::support::databases::MARIADB)
        .await
        .expect("connect");
    for statement in [
        format!("CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"),
        format!("GRANT {grants} ON {}.* TO '{user}'@'%'", database.name),
    ] {
        sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
            .execute(&mut admin)
            .await
            .expect("user");
    }
    user
}

async fn drop_mariadb_user(user: &str) {
    let mut admin = MySqlConnection::connect(crate::support::databases::MARIADB)
        .await
        .expect("connect");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP USER IF EXISTS '{user}'@'%'"
    )))
    .execute(&mut admin)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_or_a_missing_privilege_is_a_configuration_error_naming_the_fix() {
    let database = MariaDatabase::new().await;
    let user = mariadb_user(&database, "secret-pw", "SELECT").await;
    let url =
        |password: &str| format!("mysql://{user}:{password}@127.0.0.1:3306/{}", database.name);

    let (workspace, _site) =
        one_punch_into(&format!("[sink.mysql]\nurl = \"{}\"\n", url("wrong-pw"))).await;
    let run = workspace.sync(&[], 2).await.all_output();
    assert!(
        run.contains("refused the login") && run.contains("check the user and password"),
        "{run}"
    );
    assert!(
        run.contains(&format!("mysql://{user}:****@")),
        "the URL is shown redacted: {run}"
    );
    assert!(!run.contains("wrong-pw"), "{run}");

    workspace.configure(
        &[_site.url()],
        "",
        &format!("[sink.mysql]\nurl = \"{}\"\n", url("secret-pw")),
    );
    let run = workspace.sync(&[], 2).await.all_output();
    assert!(
        run.contains("missing privilege") && run.contains("GRANT"),
        "{run}"
    );
    assert!(!run.contains("secret-pw"), "{run}");
    drop_mariadb_user(&user).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_does_not_exist_is_a_configuration_error() {
    for sink in [
        "[sink.postgres]\nurl = \"postgres://postgres@127.0.0.1:5432/no_such_database_here\"\n",
        "[sink.mysql]\nurl = \"mysql://root@127.0.0.1:3306/no_such_database_here\"\n",
    ] {
        let (workspace, _site) = one_punch_into(sink).await;
        let run = workspace.sync(&[], 2).await.all_output();
        assert!(
            run.contains("no_such_database_here") && run.contains("create the database"),
            "{run}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_or_read_only_keeps_the_punches_waiting_until_it_is_back() {
    let schema = PgSchema::new().await;
    let closed = crate::support::firestore::free_port();
    let down = format!("[sink.postgres]\nurl = \"postgres://postgres@127.0.0.1:{closed}/test\"\n");
    let (workspace, site) = one_punch_into(&down).await;
    let run = workspace.sync(&[], 1).await;
    let report = sink_report(&run.summary(), "postgres");
    assert_eq!(report["pending"], 1, "{report}");
    assert!(
        report["down"]
            .as_str()
            .unwrap_or_default()
            .contains("check that the server is running"),
        "{report}"
    );

    // A read-only server (as a replica is): every write refused, the punch waits.
    let read_only = format!("{}%20-cdefault_transaction_read_only%3Don", schema.url);
    workspace.configure(
        &[site.url()],
        "",
        &format!("[sink.postgres]\nurl = \"{read_only}\"\n"),
    );
    let run = workspace.sync(&[], 1).await;
    let report = sink_report(&run.summary(), "postgres");
    assert_eq!(report["pending"], 1, "{report}");
    assert!(
        report["down"]
            .as_str()
            .unwrap_or_default()
            .contains("point url at the primary"),
        "{report}"
    );

    workspace.configure(
        &[site.url()],
        "",
        &format!("[sink.postgres]\nurl = \"{}\"\n", schema.url),
    );
    let run = workspace.sync(&[], 0).await;
    let report = sink_report(&run.summary(), "postgres");
    assert_eq!(report["delivered"], 1, "{report}");
    let mut db = PgConnection::connect(&schema.url).await.expect("connect");
    let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM iclock_punches")
        .fetch_one(&mut db)
        .await
        .expect("count");
    assert_eq!(rows, 1);
}

/// TLS through real handshakes with the PostgreSQL server (Debian's, with its own
/// self-signed certificate): `sslmode=require` encrypts; `verify-full` against a CA
/// that did not sign the server's certificate is refused, naming the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_tls_modes_come_from_the_url() {
    let schema = PgSchema::new().await;
    let ca = crate::support::tls::TestCa::new();
    let (workspace, site) = one_punch_into(&format!(
        "[sink.postgres]\nurl = \"{}&sslmode=require\"\n",
        schema.url
    ))
    .await;
    let run = workspace.sync(&[], 0).await;
    assert_eq!(sink_report(&run.summary(), "postgres")["delivered"], 1);

    let ca_file = ca.write_to(&workspace.path(""));
    workspace.configure(
        &[site.url()],
        "",
        &format!(
            "[sink.postgres]\nurl = \"{}&sslmode=verify-full&sslrootcert={}\"\n",
            schema.url,
            ca_file.display()
        ),
    );
    let refused = workspace.sync(&[], 2).await.all_output();
    assert!(
        refused.contains("TLS failed") && refused.contains("sslmode"),
        "{refused}"
    );
}

/// Two sinks of one kind, told apart by name: each database gets every punch, and
/// `status` and the summary name them; two with one name are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_sinks_with_their_own_names_each_get_every_punch() {
    let school = PgSchema::new().await;
    let district = PgSchema::new().await;
    let sinks = format!(
        "[[sink.postgres]]\nname = \"school\"\nurl = \"{}\"\n\n[[sink.postgres]]\nname = \"district\"\nurl = \"{}\"\n",
        school.url, district.url
    );
    let (workspace, site) = one_punch_into(&sinks).await;
    let run = workspace.sync(&[], 0).await;
    for name in ["school", "district"] {
        assert_eq!(sink_report(&run.summary(), name)["delivered"], 1, "{name}");
    }
    for schema in [&school, &district] {
        let mut db = PgConnection::connect(&schema.url).await.expect("connect");
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM iclock_punches")
            .fetch_one(&mut db)
            .await
            .expect("count");
        assert_eq!(rows, 1, "{}", schema.name);
    }
    let status = workspace.run(&["status"]).await;
    assert!(
        status.stdout.contains("school (") && status.stdout.contains("district ("),
        "{}",
        status.stdout
    );

    workspace.configure(&[site.url()], "", &sinks.replace("district", "school"));
    let refused = workspace.sync(&[], 2).await.all_output();
    assert!(
        refused.contains("[[sink.postgres]]")
            && refused.contains("a second sink is named \"school\""),
        "{refused}"
    );
}
