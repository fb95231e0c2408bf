//! The Python iclock-sync and this tool, reading the same terminal into the same
//! emulator, must leave the same Firestore documents behind: same IDs, same fields,
//! same types, same values — all but `uploadedAt`, the server's clock. The Python side
//! is the old tool's pipeline with its own libraries (pyzk reads, firebase-admin
//! writes; `scripts/python_tool_upload.py`), installed from PyPI into a throwaway
//! virtualenv; without Python or PyPI the test fails loudly rather than skipping.
//!
//! The terminal holds an IN and an OUT by one person in the same second: the legacy
//! ID collapses them into one document, and both tools must keep the first.

use std::collections::BTreeMap;

use crate::support::Workspace;
use crate::support::firestore::{Emulator, id_of, sink};
use crate::support::python::{script, venv_with};
use crate::support::zk::{device, layout, profile};
use iclock_sync::simulate::biotime::now_local;
use iclock_sync::simulate::zk::{TerminalSpec, ZkSimulator, generate};
use iclock_sync::source::zk::TransportKind;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tool_and_this_one_write_the_same_documents_for_the_same_terminal() {
    let venv = tempfile::tempdir().unwrap();
    let python = venv_with(venv.path(), &["pyzk==0.9", "firebase-admin==7.7.0"]);
    let emulator = Emulator::start().await;
    // pyzk reads 40-byte records (see pyzk_crosscheck.rs).
    let mut data = generate(&TerminalSpec {
        users: 60,
        punches: 600,
        bad_records: 0,
        seed: 91,
        anchor: now_local(),
        layout: layout(40),
    });
    let mut twin = data.records[100].clone();
    twin.state = if twin.state == 0 { 1 } else { 0 };
    twin.verify = if twin.verify == 15 { 1 } else { 15 };
    data.records.insert(101, twin);
    let sim =
        ZkSimulator::start_local(TransportKind::Tcp, profile("SNPYTOOL", layout(40), 0), data)
            .await
            .expect("terminal starts");

    let output = tokio::process::Command::new(&python)
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
        "the Python tool failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let handled: Vec<String> = serde_json::from_slice(&output.stdout).expect("IDs as JSON");
    assert_eq!(handled.len(), 601, "pyzk read every record");

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
    assert_eq!(run.summary()["sinks"][0]["delivered"], 600);

    let theirs = bodies(&emulator, "python-tool").await;
    let ours = bodies(&emulator, "this-tool").await;
    assert_eq!(theirs.len(), 600, "one document per legacy ID");
    for (id, body) in &theirs {
        assert_eq!(ours.get(id), Some(body), "document {id}");
    }
    assert_eq!(ours.len(), theirs.len());
}
