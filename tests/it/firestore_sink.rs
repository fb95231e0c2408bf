//! The Firestore sink against Google's real emulator: the Python tool's document shape
//! field by field, the native schema, create-if-absent (existing documents untouched),
//! volume, the emulator dying mid-run, and dry runs without credentials.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::firestore::{Emulator, id_of, sink, typed};
use crate::support::{Workspace, options, punches, row, simulator, wall};
use iclock_sync::punch::PunchId;
use iclock_sync::simulate::biotime::{BiotimeSimulator, SimTransaction};
use serde_json::{Value, json};

fn config(sim: &BiotimeSimulator, zone: &str, top: &str, device: &str) -> String {
    format!(
        "{top}\n[[device]]\nname = \"Office\"\nkind = \"biotime\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"admin\"\ntimezone = \"{zone}\"\n{device}\n",
        sim.url()
    )
}

fn with_verify(mut row: SimTransaction, verify: i32) -> SimTransaction {
    row.verify_type = verify;
    row
}

fn field_names(document: &Value) -> BTreeSet<String> {
    document["fields"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schoolsync_documents_are_the_python_tools_field_for_field() {
    let emulator = Emulator::start().await;
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![
        row("1", "2022-11-13 16:34:51", 0),
        with_verify(row("1002", "2026-03-02 17:05:09", 1), 15),
    ]);
    let workspace = Workspace::new();
    let top = format!(
        "[sync]\nid_scheme = \"legacy-md5\"\n{}",
        sink(&emulator, "schoolsync-shape", "schema = \"schoolsync\"")
    );
    // A zone far from UTC: SchoolSync's documents carry the wall time labelled as UTC.
    workspace.write("iclock-sync.toml", &config(&sim, "Asia/Kolkata", &top, ""));

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.summary()["sinks"][0]["delivered"], 2);
    let documents = emulator
        .documents("schoolsync-shape", "staffAttendanceLogs")
        .await;
    assert_eq!(documents.len(), 2);
    let first = documents
        .iter()
        .find(|d| id_of(d) == "c45d4288f29e9feb6751b7973c1625b7")
        .expect("the MD5 vector");
    let expected: BTreeSet<String> = ["staffId", "timestamp", "status", "workCode", "uploadedAt"]
        .map(String::from)
        .into();
    assert_eq!(field_names(first), expected);
    assert_eq!(typed(first, "staffId"), ("stringValue".into(), json!("1")));
    assert_eq!(
        typed(first, "timestamp"),
        ("timestampValue".into(), json!("2022-11-13T16:34:51Z"))
    );
    assert_eq!(
        typed(first, "status"),
        ("integerValue".into(), json!("1")),
        "status is the verify mode"
    );
    assert_eq!(
        typed(first, "workCode"),
        ("integerValue".into(), json!("0")),
        "workCode is the punch state"
    );
    assert_eq!(typed(first, "uploadedAt").0, "timestampValue");
    let second_id = PunchId::legacy_md5("1002", wall("2026-03-02 17:05:09")).into_string();
    let second = documents
        .iter()
        .find(|d| id_of(d) == second_id)
        .expect("second document");
    assert_eq!(typed(second, "timestamp").1, json!("2026-03-02T17:05:09Z"));
    assert_eq!(typed(second, "status").1, json!("15"));
    assert_eq!(typed(second, "workCode").1, json!("1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_documents_carry_every_field_under_its_real_name_in_the_chosen_collection() {
    let emulator = Emulator::start().await;
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![with_verify(row("1002", "2026-03-02 17:05:09", 1), 15)]);
    let workspace = Workspace::new();
    let top = sink(&emulator, "native-shape", "collection = \"punchLog\"");
    workspace.write("iclock-sync.toml", &config(&sim, "Asia/Kolkata", &top, ""));

    workspace.sync(&[], 0).await;

    let documents = emulator.documents("native-shape", "punchLog").await;
    assert_eq!(documents.len(), 1);
    let document = &documents[0];
    let id = PunchId::native("CLGY211460005", "1002", wall("2026-03-02 17:05:09"), 1).into_string();
    assert_eq!(id_of(document), id);
    let expect = |field: &str, kind: &str, value: Value| {
        assert_eq!(typed(document, field), (kind.to_owned(), value), "{field}")
    };
    expect("deviceName", "stringValue", json!("Office"));
    expect("deviceSerial", "stringValue", json!("CLGY211460005"));
    expect("userId", "stringValue", json!("1002"));
    expect("localTime", "stringValue", json!("2026-03-02 17:05:09"));
    expect("time", "timestampValue", json!("2026-03-02T11:35:09Z"));
    expect("timeZone", "stringValue", json!("Asia/Kolkata"));
    expect("punchState", "integerValue", json!("1"));
    expect("verifyMode", "integerValue", json!("15"));
    expect("workCode", "stringValue", json!("0"));
    expect("source", "stringValue", json!("biotime"));
    assert_eq!(typed(document, "sourceKey").0, "stringValue");
    assert_eq!(typed(document, "uploadedAt").0, "timestampValue");
    assert!(
        emulator
            .documents("native-shape", "attendancePunches")
            .await
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_documents_are_never_touched_and_a_second_run_writes_nothing() {
    let emulator = Emulator::start().await;
    let rows = punches(600, 71);
    let existing = &rows[10];
    let existing_id =
        PunchId::legacy_md5(&existing.emp_code, wall(&existing.punch_time)).into_string();
    let project = "create-if-absent";
    // Written earlier by the Python tool, with its own uploadedAt.
    emulator
        .create(
            project,
            "staffAttendanceLogs",
            &existing_id,
            json!({
                "staffId": {"stringValue": existing.emp_code},
                "uploadedAt": {"timestampValue": "2025-10-01T08:00:00Z"},
            }),
        )
        .await;
    let before = emulator
        .document(project, "staffAttendanceLogs", &existing_id)
        .await
        .unwrap();
    let sim = simulator(options(), rows).await;
    let workspace = Workspace::new();
    let top = format!(
        "[sync]\nid_scheme = \"legacy-md5\"\n{}",
        sink(&emulator, project, "schema = \"schoolsync\"")
    );
    workspace.write(
        "iclock-sync.toml",
        &config(&sim, "UTC", &top, "page_size = 250"),
    );

    let first = workspace.sync(&[], 0).await;

    assert_eq!(first.summary()["sinks"][0]["delivered"], 599);
    assert_eq!(first.summary()["sinks"][0]["already"], 1);
    let after = emulator
        .document(project, "staffAttendanceLogs", &existing_id)
        .await
        .unwrap();
    assert_eq!(after["updateTime"], before["updateTime"]);
    assert_eq!(after["fields"], before["fields"], "not overwritten");
    let snapshot: Vec<(String, Value)> = emulator
        .documents(project, "staffAttendanceLogs")
        .await
        .iter()
        .map(|d| (id_of(d), d["updateTime"].clone()))
        .collect();
    assert_eq!(snapshot.len(), 600);

    let second = workspace.sync(&[], 0).await;
    assert_eq!(second.summary()["sinks"][0]["delivered"], 0);
    // Even with the cache and cursor gone, every write finds its document and leaves it.
    std::fs::remove_dir_all(workspace.path("cache")).unwrap();
    let fresh = workspace.sync(&[], 0).await;
    assert_eq!(fresh.summary()["sinks"][0]["delivered"], 0);
    assert_eq!(fresh.summary()["sinks"][0]["already"], 600);
    let again: Vec<(String, Value)> = emulator
        .documents(project, "staffAttendanceLogs")
        .await
        .iter()
        .map(|d| (id_of(d), d["updateTime"].clone()))
        .collect();
    assert_eq!(again, snapshot, "no document changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_punches_are_all_present_exactly_once() {
    let emulator = Emulator::start().await;
    let rows = punches(10_000, 72);
    let expected: BTreeSet<String> = rows
        .iter()
        .map(|r| {
            PunchId::native(
                &r.terminal_sn,
                &r.emp_code,
                wall(&r.punch_time),
                r.punch_state.parse().unwrap(),
            )
            .into_string()
        })
        .collect();
    let sim = simulator(options(), rows).await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &config(&sim, "UTC", &sink(&emulator, "volume", ""), ""),
    );

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.summary()["sinks"][0]["delivered"], 10_000);
    let ids: Vec<String> = emulator
        .documents("volume", "attendancePunches")
        .await
        .iter()
        .map(id_of)
        .collect();
    assert_eq!(ids.len(), 10_000);
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_emulator_dying_mid_run_is_named_and_the_next_run_completes_the_set() {
    let first = Emulator::start().await;
    let project = "killed-mid-run";
    let mut sim_options = options();
    sim_options.page_delay = Duration::from_millis(150);
    let sim = simulator(sim_options, punches(3_000, 73)).await;
    let workspace = Workspace::new();
    let write_config = |emulator: &Emulator| {
        let top = sink(emulator, project, "retry_for = \"2s\"");
        workspace.write(
            "iclock-sync.toml",
            &config(&sim, "UTC", &top, "page_size = 100"),
        );
    };
    write_config(&first);
    let child = workspace.command(&["--json"]).spawn().expect("spawn");
    // Mid-run: some punches written, reading goes on for seconds yet.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while first
        .documents(project, "attendancePunches")
        .await
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing written in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Pause the binary, keep what Firestore holds (the emulator stores in memory only;
    // a real Firestore keeps it), then kill the emulator outright and let the binary
    // run on against a dead endpoint.
    let pid = child.id().unwrap().to_string();
    let signal = |name: &str| {
        std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap()
    };
    assert!(signal("-STOP").success());
    // Requests already sent are still being written: wait until the count settles,
    // so the snapshot holds every write the binary will hear was done.
    let mut written_before = first.documents(project, "attendancePunches").await.len();
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let now = first.documents(project, "attendancePunches").await.len();
        if now == written_before {
            break;
        }
        written_before = now;
    }
    let snapshot_dir = tempfile::tempdir().unwrap();
    let snapshot = first.snapshot(project, snapshot_dir.path()).await;
    first.kill().await;
    assert!(signal("-CONT").success());
    let output = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("the binary finishes")
        .unwrap();

    assert_eq!(
        output.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    let firestore = &summary["sinks"][0];
    assert!(firestore["failed"].as_u64().unwrap() > 0, "{summary}");
    let failure = firestore["last_failure"].as_str().unwrap();
    assert!(failure.contains("Firestore"), "{failure}");
    assert!(
        written_before > 0 && written_before < 3_000,
        "{written_before}"
    );

    let second = Emulator::start_from(Some(&snapshot)).await;
    assert_eq!(
        second.documents(project, "attendancePunches").await.len(),
        written_before
    );
    write_config(&second);
    let rerun = workspace.sync(&[], 0).await;

    let ids: Vec<String> = second
        .documents(project, "attendancePunches")
        .await
        .iter()
        .map(id_of)
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(ids.len(), 3_000, "nothing missing");
    assert_eq!(unique.len(), 3_000, "nothing twice");
    assert_eq!(rerun.summary()["sinks"][0]["failed"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_dry_run_need_no_credentials_and_a_bad_key_path_is_a_clear_error() {
    let sim = simulator(options(), punches(50, 74)).await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &config(
            &sim,
            "UTC",
            "[sink.firestore]\nschema = \"schoolsync\"\n",
            "",
        ),
    );
    let missing = [("FIREBASE_KEY", "keys/not-there.json")];

    let help = workspace.run_with_env(&["--help"], &missing).await;
    assert_eq!(help.code, Some(0), "{}", help.all_output());

    let dry = workspace.run_with_env(&["--dry-run"], &missing).await;
    assert_eq!(dry.code, Some(0), "{}", dry.all_output());
    assert!(
        dry.stdout.contains("50 punch(es) would be uploaded"),
        "{}",
        dry.stdout
    );

    let real = workspace.run_with_env(&[], &missing).await;
    assert_eq!(real.code, Some(2), "{}", real.all_output());
    let message = real.all_output();
    assert!(
        message.contains("keys/not-there.json (from FIREBASE_KEY)"),
        "{message}"
    );
    assert!(
        message.contains("FIREBASE_KEY, FIREBASE_KEY_PATH, GOOGLE_APPLICATION_CREDENTIALS"),
        "{message}"
    );
    assert!(message.contains("sink firestore"), "{message}");
    assert_eq!(
        sim.stats().logins,
        1,
        "the dry run read; the failed run stopped before reading"
    );
}

/// Firestore out of reach when the tool starts is a failing sink, not a configuration
/// error: the other sink gets everything, the exit code is 1 while punches wait, and
/// when Firestore is back they are delivered from the ledger without reading again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firestore_out_of_reach_at_start_waits_in_the_ledger_and_catches_up() {
    let port = crate::support::firestore::free_port();
    let sim = simulator(options(), punches(150, 76)).await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &config(
            &sim,
            "UTC",
            &format!(
                "[sink.sqlite]\n[sink.firestore]\nproject_id = \"demo-down\"\nemulator_host = \"127.0.0.1:{port}\"\n"
            ),
            "",
        ),
    );

    let down = workspace.sync(&[], 1).await;

    let sinks = down.summary()["sinks"].clone();
    let firestore = &sinks[0];
    assert_eq!(firestore["name"], "firestore");
    assert!(
        firestore["down"]
            .as_str()
            .is_some_and(|why| why.contains("cannot reach Firestore")),
        "{firestore}"
    );
    assert_eq!(firestore["pending"], 150);
    assert_eq!(
        sinks[1]["delivered"], 150,
        "the other sink is not held back"
    );
    let text = workspace.run(&[]).await;
    assert_eq!(text.code, Some(1));
    assert!(
        text.stdout.contains("tried again each cycle"),
        "{}",
        text.stdout
    );

    let emulator = Emulator::start_on(port).await;
    let back = workspace.sync(&[], 0).await;

    assert_eq!(back.device(0)["fetched"], 0, "nothing is read again");
    assert_eq!(back.summary()["sinks"][0]["delivered"], 150);
    assert_eq!(
        emulator
            .documents("demo-down", "attendancePunches")
            .await
            .len(),
        150
    );
}
