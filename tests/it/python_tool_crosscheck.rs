//! The Python iclock-sync and this tool, reading the same terminal into the same
//! emulator, must leave the same Firestore documents behind: same IDs, same fields,
//! same types, same values — all but `uploadedAt`, the server's clock. The Python side
//! is the old tool's pipeline with its own libraries (pyzk reads, firebase-admin
//! writes; `scripts/python_tool_upload.py`), installed from PyPI into a throwaway
//! virtualenv; without Python or PyPI the test fails loudly rather than skipping.
//!
//! The terminal holds an IN and an OUT by one person in the same second: the legacy
//! ID collapses them into one document, and both tools must keep the first. It also
//! holds punches by PINs that are not positive numbers, which the Python tool skips
//! ("Skipped N logs with invalid staffId") and our schoolsync schema quarantines, so
//! SchoolSync receives the same set. Terminals with 40- and 16-byte records are both
//! compared: bytes 8 and 9 of the latter are read as pyzk reads them.

use std::collections::BTreeMap;

use crate::support::Workspace;
use crate::support::firestore::{Emulator, id_of, sink};
use crate::support::python::{script, venv_with};
use crate::support::zk::{device, layout, profile};
use iclock_sync::simulate::biotime::now_local;
use iclock_sync::simulate::zk::{TerminalSpec, ZkSimulator, generate};
use iclock_sync::source::zk::TransportKind;
use iclock_sync::source::zk::codec::attendance::Identity;
use iclock_sync::source::zk::codec::time::DeviceTime;
use serde_json::Value;

/// Every document of `collection` by ID, without `uploadedAt` (which only the server
/// decides) but with the type of every other field.
async fn bodies(emulator: &Emulator, project: &str) -> BTreeMap<String, Value> {
    emulator
        .documents(project, "staffAttendanceLogs")
        .await
        .into_iter()
        .map(|document| {
            let mut fields = document["fields"].clone();
            let uploaded = fields
                .as_object_mut()
                .and_then(|fields| fields.remove("uploadedAt"));
            assert!(
                uploaded.is_some_and(|value| value.get("timestampValue").is_some()),
                "uploadedAt is a timestamp in {document}"
            );
            (id_of(&document), fields)
        })
        .collect()
}

/// Runs the Python tool's pipeline and ours on one terminal with `record_size`-byte
/// records and compares every document. Besides the generated punches the terminal
/// holds an IN and an OUT by one person in the same second, and punches by PINs the
/// Python tool refuses as staffIds (not a positive number).
async fn compare_documents(python: &std::path::Path, record_size: usize, seed: u64) {
    let emulator = Emulator::start().await;
    let mut data = generate(&TerminalSpec {
        users: 60,
        punches: 600,
        bad_records: 0,
        seed,
        anchor: now_local(),
        layout: layout(record_size),
    });
    let mut twin = data.records[100].clone();
    twin.state = if twin.state == 0 { 1 } else { 0 };
    twin.verify = if twin.verify == 15 { 1 } else { 15 };
    data.records.insert(101, twin);
    let refused_pins: &[&str] = if record_size == 16 {
        &["0"] // a 16-byte record holds the PIN as a number
    } else {
        &["0", "V17"]
    };
    for (offset, pin) in refused_pins.iter().enumerate() {
        let mut odd = data.records[200 + offset].clone();
        odd.identity = Identity::Pin((*pin).to_owned());
        odd.time = DeviceTime::from_datetime(
            odd.time.to_datetime().unwrap() + chrono::Duration::seconds(1),
        );
        data.records.insert(201 + offset, odd);
    }
    let serial = format!("SNPYTOOL{record_size}");
    let sim = ZkSimulator::start_local(
        TransportKind::Tcp,
        profile(&serial, layout(record_size), 0),
        data,
    )
    .await
    .expect("terminal starts");
    let case = format!("{record_size}-byte records");

    let output = tokio::process::Command::new(python)
        .arg(script("python_tool_upload.py"))
        .args([
            "127.0.0.1".to_owned(),
            sim.address().port().to_string(),
            "python-tool".to_owned(),
        ])
        .env("FIRESTORE_EMULATOR_HOST", emulator.host())
        // The old tool's documents do not depend on the zone of the computer it ran on.
        .env("TZ", "America/New_York")
        .output()
        .await
        .expect("the Python tool runs");
    assert!(
        output.status.success(),
        "{case}: the Python tool failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let handled: Vec<String> = serde_json::from_slice(&output.stdout).expect("IDs as JSON");
    assert_eq!(handled.len(), 601, "{case}: pyzk read every valid record");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!(
            "Skipped {} logs with invalid staffId",
            refused_pins.len()
        )),
        "{case}: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "[sync]\nid_scheme = \"legacy-md5\"\n{}\n{}",
            sink(&emulator, "this-tool", "schema = \"schoolsync\""),
            device("Main Office", &sim, "timezone = \"Asia/Kolkata\""),
        ),
    );
    let run = workspace.sync(&[], 0).await;
    assert_eq!(run.summary()["sinks"][0]["delivered"], 600, "{case}");
    assert_eq!(
        run.summary()["sinks"][0]["skipped"],
        refused_pins.len(),
        "{case}"
    );
    let quarantine = workspace.read("output/quarantine.jsonl");
    assert_eq!(
        quarantine
            .lines()
            .filter(|line| line.contains("not a positive number"))
            .count(),
        refused_pins.len(),
        "{case}: {quarantine}"
    );

    let theirs = bodies(&emulator, "python-tool").await;
    let ours = bodies(&emulator, "this-tool").await;
    assert_eq!(theirs.len(), 600, "{case}: one document per legacy ID");
    for (id, body) in &theirs {
        assert_eq!(ours.get(id), Some(body), "{case}: document {id}");
    }
    assert_eq!(ours.len(), theirs.len(), "{case}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_and_this_one_write_the_same_documents_for_the_same_terminal() {
    let venv = tempfile::tempdir().unwrap();
    let python = venv_with(venv.path(), &["pyzk==0.9", "firebase-admin==7.7.0"]);
    // pyzk reads 40- and 16-byte records (see pyzk_crosscheck.rs).
    compare_documents(&python, 40, 91).await;
    compare_documents(&python, 16, 92).await;
}
