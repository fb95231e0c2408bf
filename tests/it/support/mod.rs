//! Shared by the integration tests: a temporary working directory in which the real
//! `iclock-sync` binary runs, a BioTime simulator on a real loopback port, and readers
//! for the files and database the binary leaves behind.

#![allow(dead_code)]

pub mod browser;
pub mod databases;
pub mod faulty_disk;
pub mod firestore;
pub mod frappe;
pub mod mongo;
pub mod proxy;
pub mod python;
pub mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::NaiveDateTime;
use iclock_sync::simulate::biotime::{
    BiotimeSimulator, DatasetSpec, SimOptions, SimTransaction, generate, now_local,
};
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use tokio::net::TcpListener;

/// The binary under test: this build's, or `ICLOCK_SYNC_TEST_BINARY` (to show that a
/// new test fails against an older build).
pub fn binary() -> std::path::PathBuf {
    std::env::var_os("ICLOCK_SYNC_TEST_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_iclock-sync")))
}

/// What one run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The `--json` summary (the last JSON line on stdout).
    pub fn summary(&self) -> Value {
        self.stdout
            .lines()
            .rev()
            .find_map(|line| serde_json::from_str(line).ok())
            .unwrap_or_else(|| {
                panic!(
                    "no JSON summary in stdout:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    pub fn device(&self, index: usize) -> Value {
        self.summary()["devices"][index].clone()
    }

    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A temporary working directory with an `iclock-sync.toml`.
pub struct Workspace {
    pub dir: tempfile::TempDir,
}

impl Workspace {
    pub fn new() -> Workspace {
        Workspace {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, contents: &str) {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dir");
        }
        std::fs::write(path, contents).expect("write file");
    }

    pub fn read(&self, relative: &str) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_default()
    }

    /// Writes a config with one BioTime device per URL (named "Device 1", ...).
    pub fn configure(&self, urls: &[String], extra_device_keys: &str, extra: &str) {
        let mut text = String::from(extra);
        text.push('\n');
        for (index, url) in urls.iter().enumerate() {
            text.push_str(&format!(
                "[[device]]\nname = \"Device {}\"\nkind = \"biotime\"\nurl = \"{url}\"\nusername = \"admin\"\npassword = \"admin\"\ntimezone = \"UTC\"\n{extra_device_keys}\n",
                index + 1
            ));
        }
        self.write("iclock-sync.toml", &text);
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(binary());
        command
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("RUST_LOG")
            .env_remove("ICLOCK_SYNC_CONFIG")
            .env_remove("BIOTIME_URL")
            .env_remove("DEVICE_IPS")
            .env_remove("FIRESTORE_EMULATOR_HOST")
            .env_remove("SSL_CERT_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_with_env(args, &[]).await
    }

    pub async fn run_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        for (key, value) in env {
            command.env(key, value);
        }
        let output = tokio::time::timeout(Duration::from_secs(120), command.output())
            .await
            .expect("the binary finished within 120 s")
            .expect("the binary ran");
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `iclock-sync --json ARGS`, asserting the exit code.
    pub async fn sync(&self, args: &[&str], expected_code: i32) -> Run {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let run = self.run(&all).await;
        assert_eq!(
            run.code,
            Some(expected_code),
            "exit code; stdout:\n{}\nstderr:\n{}",
            run.stdout,
            run.stderr
        );
        run
    }

    pub fn database(&self) -> PathBuf {
        self.path("output/attendance.db")
    }

    /// The SQLite sink's database, read-only.
    pub async fn open_database(&self) -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(self.database())
            .read_only(true);
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("open the database")
    }

    /// `(id, user_id, local_time, punch_state)` of every stored punch.
    pub async fn stored_punches(&self) -> Vec<(String, String, String, i64)> {
        let pool = self.open_database().await;
        let rows =
            sqlx::query_as("SELECT id, user_id, local_time, punch_state FROM punches ORDER BY id")
                .fetch_all(&pool)
                .await
                .expect("read punches");
        pool.close().await;
        rows
    }

    /// The IDs of every stored punch.
    pub async fn stored_ids(&self) -> BTreeSet<String> {
        self.stored_punches()
            .await
            .into_iter()
            .map(|(id, ..)| id)
            .collect()
    }

    /// The ledger (`cache/ledger.db`), read-only.
    async fn open_ledger(&self) -> sqlx::SqlitePool {
        let options = SqliteConnectOptions::new()
            .filename(self.path("cache/ledger.db"))
            .read_only(true);
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options)
            .await
            .expect("open the ledger")
    }

    /// One number from the ledger.
    pub async fn ledger_number(&self, sql: &str) -> i64 {
        let pool = self.open_ledger().await;
        let number: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .fetch_one(&pool)
            .await
            .expect("ask the ledger");
        pool.close().await;
        number
    }

    /// The IDs of every punch in the ledger.
    pub async fn ledger_ids(&self) -> BTreeSet<String> {
        let pool = self.open_ledger().await;
        let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM punches")
            .fetch_all(&pool)
            .await
            .expect("read the ledger");
        pool.close().await;
        ids.into_iter().collect()
    }

    pub fn cached_ids(&self) -> BTreeSet<String> {
        let text = self.read("cache/uploaded_ids_cache.json");
        if text.is_empty() {
            return BTreeSet::new();
        }
        serde_json::from_str::<Vec<String>>(&text)
            .expect("the cache is a JSON array of strings")
            .into_iter()
            .collect()
    }

    /// Every `doc_id` in every audit file.
    pub fn audited_ids(&self) -> Vec<String> {
        let mut ids = Vec::new();
        for file in self.files_named("output", "logs_", ".json") {
            let entries: Vec<Value> =
                serde_json::from_slice(&std::fs::read(file).expect("read audit"))
                    .expect("audit is JSON");
            ids.extend(
                entries
                    .iter()
                    .filter_map(|entry| entry["doc_id"].as_str().map(str::to_owned)),
            );
        }
        ids
    }

    pub fn files_named(&self, dir: &str, prefix: &str, suffix: &str) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.path(dir)) else {
            return Vec::new();
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|entry| entry.path())
            .filter(|path| {
                let name = path.file_name().unwrap_or_default().to_string_lossy();
                name.starts_with(prefix) && name.ends_with(suffix)
            })
            .collect();
        files.sort();
        files
    }

    /// Every file under the workspace with its bytes, for byte-for-byte comparisons.
    pub fn snapshot(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        fn walk(dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
            for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.insert(path.clone(), std::fs::read(&path).expect("read file"));
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(self.dir.path(), &mut out);
        out
    }
}

/// A simulator on a free loopback port.
pub async fn simulator(options: SimOptions, rows: Vec<SimTransaction>) -> BiotimeSimulator {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    BiotimeSimulator::start(listener, options, rows)
        .await
        .expect("simulator starts")
}

/// `count` realistic punches ending now (at most a day old when `count` is small).
pub fn punches(count: u64, seed: u64) -> Vec<SimTransaction> {
    generate(&DatasetSpec {
        employees: 200,
        days: 1,
        punches: Some(count),
        late_uploads: 0,
        bad_records: 0,
        seed,
        anchor: now_local(),
    })
}

/// A single row, as a terminal would upload it now.
pub fn row(emp_code: &str, punch_time: &str, state: u32) -> SimTransaction {
    SimTransaction {
        id: 0,
        emp_code: emp_code.into(),
        punch_time: punch_time.into(),
        punch_state: state.to_string(),
        verify_type: 1,
        work_code: "0".into(),
        terminal_sn: "CLGY211460005".into(),
        terminal_alias: "Main gate".into(),
        upload_time: now_local(),
    }
}

pub fn wall(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").expect("wall time")
}

pub fn options() -> SimOptions {
    SimOptions::default()
}

/// The simulator's local wall time `ago` before now, as BioTime writes it.
pub fn wall_time_ago(ago: chrono::Duration) -> String {
    (now_local() - ago).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Waits (at most 30 s) until the simulator has served `pages` transaction pages.
pub async fn wait_for_pages(sim: &BiotimeSimulator, pages: u64) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while sim.stats().transaction_pages < pages {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the binary reads pages");
}

/// Sends Ctrl-C (SIGINT) to a running binary.
pub fn interrupt(child: &tokio::process::Child) {
    send_signal(child, "INT");
}

/// Sends SIG`signal` (`INT`, `TERM`, …) to `child`.
pub fn send_signal(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("still running").to_string();
    let sent = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &pid])
        .status()
        .expect("run kill");
    assert!(sent.success());
}

/// A stored punch with the fields tests compare.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoredRow {
    pub serial: String,
    pub user_id: String,
    pub local_time: String,
    pub state: i64,
    pub verify: i64,
}

impl Workspace {
    pub async fn stored_rows(&self) -> Vec<StoredRow> {
        let pool = self.open_database().await;
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT device_serial, user_id, local_time, punch_state, verify_mode FROM punches",
        )
        .fetch_all(&pool)
        .await
        .expect("read punches");
        pool.close().await;
        let mut rows: Vec<StoredRow> = rows
            .into_iter()
            .map(|(serial, user_id, local_time, state, verify)| StoredRow {
                serial,
                user_id,
                local_time,
                state,
                verify,
            })
            .collect();
        rows.sort();
        rows
    }
}

pub mod zk {
    //! Simulated terminals for the tests.

    use super::StoredRow;
    use iclock_sync::simulate::biotime::now_local;
    use iclock_sync::simulate::zk::{
        TerminalProfile, TerminalSpec, ZkSimulator, generate, layout_of,
    };
    use iclock_sync::source::zk::TransportKind;
    use iclock_sync::source::zk::codec::attendance::{AttendanceLayout, Identity};

    pub fn profile(serial: &str, layout: AttendanceLayout, comm_key: u32) -> TerminalProfile {
        TerminalProfile {
            serial: serial.into(),
            comm_key,
            layout,
            fail_after_chunks: None,
            chunk_fault: None,
        }
    }

    pub async fn terminal(
        kind: TransportKind,
        profile: TerminalProfile,
        punches: u64,
        bad_records: u32,
        seed: u64,
    ) -> ZkSimulator {
        let data = generate(&TerminalSpec {
            users: 60,
            punches,
            bad_records,
            seed,
            anchor: now_local(),
            layout: profile.layout,
        });
        ZkSimulator::start_local(kind, profile, data)
            .await
            .expect("terminal starts")
    }

    pub fn layout(record_size: usize) -> AttendanceLayout {
        layout_of(record_size)
    }

    /// What the terminal holds, as the sink should store it: plausible records only,
    /// PINs resolved through the user table.
    pub fn expected_rows(sim: &ZkSimulator, serial: &str) -> Vec<StoredRow> {
        let users = sim.users();
        let now = now_local();
        let mut rows: Vec<StoredRow> = sim
            .records()
            .into_iter()
            .filter_map(|record| {
                let user_id = match record.identity {
                    Identity::Pin(pin) => pin,
                    Identity::Index(uid) => {
                        users.iter().find(|user| user.uid == uid)?.user_id.clone()
                    }
                };
                let time = record.time.to_datetime()?;
                if user_id.is_empty() || time > now + chrono::Duration::days(1) {
                    return None;
                }
                Some(StoredRow {
                    serial: serial.to_owned(),
                    user_id,
                    local_time: time.format("%Y-%m-%d %H:%M:%S").to_string(),
                    state: i64::from(record.state),
                    verify: i64::from(record.verify),
                })
            })
            .collect();
        rows.sort();
        rows
    }

    /// A config entry for a simulated terminal.
    pub fn device(name: &str, sim: &ZkSimulator, extra: &str) -> String {
        let transport = match sim.kind() {
            TransportKind::Tcp => "tcp",
            TransportKind::Udp => "udp",
        };
        format!(
            "[[device]]\nname = \"{name}\"\nkind = \"zk\"\naddress = \"{}\"\ntransport = \"{transport}\"\n{extra}\n",
            sim.address()
        )
    }
}
