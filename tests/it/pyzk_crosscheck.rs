//! pyzk — the client most ZKTeco integrations in the field use — reading our simulated
//! terminal must see the same users and punches as our client. This pins the
//! simulator (and with it our client) to the protocol as pyzk understands it, so a
//! shared misunderstanding in our one codec cannot hide.
//!
//! pyzk 0.9 is installed from PyPI into a throwaway virtualenv; without Python or
//! network access to PyPI the test fails loudly rather than skipping.
//!
//! pyzk's known limits decide the cases: it reads 8-byte records with the time at
//! offset 3 (field captures put it at 4, which pyzk cannot read at all), steps through
//! every larger record as if it were 40 bytes (so 49-byte logs are garbage to it), and
//! stops at the first impossible date — so logs are clean and sizes are 40, 16 and 8
//! with the time at offset 3. pyzk's `status` is the verify mode and `punch` the state
//! in every layout; for 16-byte records that is bytes 8 and 9, the reading we follow
//! by default (`record16 = "pyzk"`).

use std::path::Path;
use std::sync::Arc;

use crate::support::python::{script, venv_with};
use crate::support::zk::{layout, profile, terminal};
use iclock_sync::punch::DeviceLabel;
use iclock_sync::shutdown;
use iclock_sync::simulate::zk::ZkSimulator;
use iclock_sync::source::zk::codec::attendance::AttendanceLayout;
use iclock_sync::source::zk::{
    Connection, TransportChoice, TransportKind, ZkConfig, ZkSource, default_timeout,
};
use iclock_sync::source::{DEFAULT_MAX_READ_TIME, FetchPlan, Fetched, RecordTime, Source};
use serde_json::Value;

async fn read_with_pyzk(python: &Path, sim: &ZkSimulator, key: u32) -> Value {
    let transport = match sim.kind() {
        TransportKind::Tcp => "tcp",
        TransportKind::Udp => "udp",
    };
    let output = tokio::process::Command::new(python)
        .arg(script("pyzk_read.py"))
        .args([
            "127.0.0.1".to_owned(),
            sim.address().port().to_string(),
            transport.to_owned(),
            key.to_string(),
        ])
        .output()
        .await
        .expect("pyzk runs");
    assert!(
        output.status.success(),
        "pyzk failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("pyzk printed JSON")
}

/// Users as our client reads them: `(uid, user id, name, privilege, card)`.
async fn our_users(sim: &ZkSimulator, key: u32) -> Vec<(u64, String, String, u64, u64)> {
    let mut connection = Connection::open(sim.address(), sim.kind(), key, default_timeout())
        .await
        .unwrap();
    let count = connection.counters().await.unwrap().users;
    let (_, users) = connection.users(count).await.unwrap();
    connection.close().await;
    users
        .into_iter()
        .map(|user| {
            (
                u64::from(user.uid),
                user.user_id,
                user.name,
                u64::from(user.privilege),
                u64::from(user.card),
            )
        })
        .collect()
}

/// Punches as our client delivers them: `(user id, time, state, verify)`, in log order.
async fn our_punches(sim: &ZkSimulator, key: u32) -> Vec<(String, String, u64, u64)> {
    let config = ZkConfig {
        transport: match sim.kind() {
            TransportKind::Tcp => TransportChoice::Tcp,
            TransportKind::Udp => TransportChoice::Udp,
        },
        comm_key: key,
        ..ZkConfig::at(sim.address().to_string())
    };
    let label = Arc::new(DeviceLabel {
        name: "Cross-check".into(),
        timezone: chrono_tz::UTC,
    });
    let mut source = ZkSource::new(label, &config, None);
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1000);
    let (_trigger, stop) = shutdown::channel();
    source
        .fetch(&FetchPlan::new(None, stop, DEFAULT_MAX_READ_TIME), &sender)
        .await
        .unwrap();
    drop(sender);
    let mut punches = Vec::new();
    while let Some(batch) = receiver.recv().await {
        for fetched in batch {
            let Fetched::Record(record) = fetched else {
                panic!("a clean log decoded to an undecodable record: {fetched:?}")
            };
            let RecordTime::Valid(time) = record.time else {
                panic!("a clean log has an impossible date")
            };
            punches.push((
                record.user_id,
                time.format("%Y-%m-%d %H:%M:%S").to_string(),
                record.state as u64,
                record.verify_mode as u64,
            ));
        }
    }
    punches
}

/// Equal lists, or a failure that shows the first difference (not thousands of rows).
fn assert_same<T: PartialEq + std::fmt::Debug>(pyzk: &[T], ours: &[T], what: &str) {
    if let Some(index) = (0..pyzk.len().min(ours.len())).find(|i| pyzk[*i] != ours[*i]) {
        panic!(
            "{what}: entry {index} differs: pyzk {:?}, ours {:?}",
            pyzk[index], ours[index]
        );
    }
    assert_eq!(pyzk.len(), ours.len(), "{what}: counts differ");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyzk_sees_the_same_users_and_punches_as_our_client() {
    let venv = tempfile::tempdir().unwrap();
    let python = venv_with(venv.path(), &["pyzk==0.9"]);
    let cases = [
        (40, TransportKind::Tcp, 123_456),
        (40, TransportKind::Udp, 0),
        (16, TransportKind::Udp, 0),
        (16, TransportKind::Tcp, 777),
        (8, TransportKind::Tcp, 0),
        (8, TransportKind::Udp, 0),
    ];
    for (index, (size, kind, key)) in cases.into_iter().enumerate() {
        let record_layout = match size {
            8 => AttendanceLayout::Compact { time_at: 3 },
            size => layout(size),
        };
        let serial = format!("SNPYZK{index}");
        let sim = terminal(
            kind,
            profile(&serial, record_layout, key),
            3_000,
            0,
            index as u64,
        )
        .await;
        let case = format!("{size}-byte records over {kind:?}, comm key {key}");

        let pyzk = read_with_pyzk(&python, &sim, key).await;
        assert_eq!(pyzk["serial"], serial.as_str(), "{case}");

        let theirs: Vec<(u64, String, String, u64, u64)> = pyzk["users"]
            .as_array()
            .unwrap()
            .iter()
            .map(|user| {
                (
                    user["uid"].as_u64().unwrap(),
                    user["user_id"].as_str().unwrap().to_owned(),
                    user["name"].as_str().unwrap().to_owned(),
                    user["privilege"].as_u64().unwrap(),
                    user["card"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(theirs.len(), 60, "{case}");
        assert_same(
            &theirs,
            &our_users(&sim, key).await,
            &format!("{case}: users"),
        );

        let theirs: Vec<(String, String, u64, u64)> = pyzk["attendance"]
            .as_array()
            .unwrap()
            .iter()
            .map(|punch| {
                (
                    punch["user_id"].as_str().unwrap().to_owned(),
                    punch["timestamp"].as_str().unwrap().to_owned(),
                    punch["punch"].as_u64().unwrap(),
                    punch["status"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(theirs.len(), 3_000, "{case}");
        assert_same(
            &theirs,
            &our_punches(&sim, key).await,
            &format!("{case}: punches"),
        );
        assert_eq!(
            sim.stats().bad_checksums,
            0,
            "{case}: pyzk's checksums are the spec's"
        );
    }
}
