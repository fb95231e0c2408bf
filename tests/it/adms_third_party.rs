//! A terminal simulator we did not write talks to `serve`: django-fingerprint-attendance's
//! `ADMSDeviceSimulator` (PyPI, MIT) in its three firmware profiles, through
//! `scripts/adms_device_simulator.py` (an adapter from Django's test client onto a real
//! socket). Every punch it makes lands once, though it sends many of them twice (a legacy
//! terminal re-sends everything after a handshake without `ATTLOGStamp`, a re-upload
//! command makes another send its whole log again), and the commands queued for it are
//! carried out and answered.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::serve::{handshake, spawn_serve, stop, stored_at_least};
use crate::support::Workspace;
use crate::support::firestore::free_port;
use crate::support::python::{script, venv_with};

const TERMINALS: [(&str, &str); 3] = [
    ("DJ-LEGACY", "legacy"),
    ("DJ-PUSH2", "push2"),
    ("DJ-BIODATA", "biodata"),
];

#[tokio::test]
async fn django_fingerprint_attendance_terminals_land_every_punch_once() {
    let venv = tempfile::tempdir().unwrap();
    let python = venv_with(venv.path(), &["django-fingerprint-attendance==0.1.0"]);

    let workspace = Workspace::new();
    let port = free_port();
    let mut config =
        format!("[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\n");
    for (serial, firmware) in TERMINALS {
        config.push_str(&format!(
            "\n[[device]]\nname = \"{firmware}\"\nkind = \"adms\"\nserial = \"{serial}\"\ntimezone = \"Africa/Accra\"\n"
        ));
    }
    workspace.write("iclock-sync.toml", &config);
    let mut child = spawn_serve(&workspace);
    let url = format!("http://127.0.0.1:{port}");
    handshake(&reqwest::Client::new(), &url, "DJ-PUSH2").await;

    for command in [
        &["DJ-LEGACY", "info"][..],
        &["DJ-PUSH2", "reupload", "2026-09-01", "2026-09-30"],
        &["DJ-BIODATA", "check"],
    ] {
        let queued = workspace
            .run(&[&["adms", "command"][..], command].concat())
            .await;
        assert_eq!(queued.code, Some(0), "{}", queued.all_output());
    }

    let terminals: Vec<String> = TERMINALS
        .iter()
        .map(|(serial, firmware)| format!("{serial}:{firmware}"))
        .collect();
    let run = tokio::process::Command::new(&python)
        .arg(script("adms_device_simulator.py"))
        .arg(&url)
        .args(&terminals)
        .output()
        .await
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap();

    let mut expected = BTreeSet::new();
    for (serial, _) in TERMINALS {
        let terminal = &report[serial];
        let statuses = terminal["statuses"].as_array().unwrap();
        assert!(
            statuses.iter().all(|status| status == 200),
            "{serial}: {statuses:?}"
        );
        assert_eq!(
            terminal["executed"].as_array().unwrap().len(),
            1,
            "{serial}"
        );
        for punch in terminal["punches"].as_array().unwrap() {
            expected.insert((
                serial.to_owned(),
                punch[0].as_str().unwrap().to_owned(),
                punch[1].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(expected.len(), 150);

    stored_at_least(&workspace, expected.len()).await;
    // Anything sent twice would be delivered by the same cycles: give them time to.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pool = workspace.open_database().await;
    let stored: Vec<(String, String, String)> =
        sqlx::query_as("SELECT device_serial, user_id, local_time FROM punches")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(stored.len(), expected.len(), "each punch once");
    assert_eq!(stored.into_iter().collect::<BTreeSet<_>>(), expected);

    let listed = workspace.run(&["adms", "commands"]).await.all_output();
    assert_eq!(listed.matches("— done").count(), 3, "{listed}");
    assert!(listed.contains("~DeviceName=SIM-legacy"), "{listed}");
    stop(&mut child, Duration::from_secs(30)).await;
}
