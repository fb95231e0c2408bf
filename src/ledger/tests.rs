//! The SQLite ledger on a real file: journaling, draining, registering sinks, retry
//! and pruning.

use std::sync::Arc;

use chrono::{NaiveDateTime, Utc};
use serde_json::json;

use super::*;
use crate::punch::{DeviceLabel, PunchId, SourceKind};

fn punch(device: &str, user: &str, minute: u32) -> Punch {
    let local_time = NaiveDateTime::parse_from_str(
        &format!("2026-01-05 08:{minute:02}:00"),
        "%Y-%m-%d %H:%M:%S",
    )
    .unwrap();
    Punch {
        id: PunchId::native(device, user, local_time, 0),
        device: Arc::new(DeviceLabel {
            name: device.into(),
            timezone: "Asia/Kolkata".parse().unwrap(),
        }),
        serial: format!("SN-{device}").into(),
        terminal: "".into(),
        user_id: user.into(),
        local_time,
        state: 0,
        verify_mode: 1,
        work_code: "0".into(),
        source: SourceKind::Zk,
        source_key: format!("zk:{device}#{user}-{minute}"),
        received_at: None,
    }
}

fn device(name: &str) -> DeviceRecord {
    DeviceRecord {
        name: name.into(),
        kind: "zk".into(),
        location: format!("10.0.0.{}:4370", name.len()),
    }
}

fn registration(name: &str, identity: Option<&str>) -> SinkRegistration {
    SinkRegistration {
        name: name.into(),
        target: format!("{name} target"),
        identity: identity.map(str::to_owned),
    }
}

async fn open(dir: &tempfile::TempDir) -> SqliteLedger {
    SqliteLedger::open(&dir.path().join(LEDGER_FILE_NAME), false)
        .await
        .unwrap()
}

async fn journal(
    ledger: &SqliteLedger,
    name: &str,
    punches: &[Punch],
    sinks: &[SinkId],
) -> Journaled {
    ledger
        .journal(Journal {
            device: &device(name),
            punches,
            quarantine: &[],
            cursor: Some(&json!({"records": punches.len()})),
            sinks,
        })
        .await
        .unwrap()
}

/// Sinks "sqlite" and "frappe", `count` punches of PINs 1000, 1001, … journaled for
/// both, and a cycle begun.
async fn two_sinks_and_punches(ledger: &SqliteLedger, count: u32) -> ([SinkId; 2], CycleId) {
    let sinks = ledger
        .register_sinks(
            &[registration("sqlite", None), registration("frappe", None)],
            None,
        )
        .await
        .unwrap();
    let ids = [sinks[0].id, sinks[1].id];
    let batch: Vec<Punch> = (0..count)
        .map(|n| punch("Gate", &format!("100{n}"), n))
        .collect();
    journal(ledger, "Gate", &batch, &ids).await;
    (ids, ledger.begin_cycle(Utc::now()).await.unwrap())
}

#[tokio::test]
async fn a_punch_is_journaled_once_and_queued_for_every_sink() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir).await;
    let sinks = ledger
        .register_sinks(
            &[
                registration("sqlite", Some("a")),
                registration("frappe", None),
            ],
            None,
        )
        .await
        .unwrap();
    let ids: Vec<SinkId> = sinks.iter().map(|sink| sink.id).collect();
    let batch: Vec<Punch> = (0..3).map(|n| punch("Gate", "1001", n)).collect();

    let first = journal(&ledger, "Gate", &batch, &ids).await;
    let again = journal(&ledger, "Gate", &batch, &ids).await;

    assert_eq!(first.new, 3);
    assert_eq!(again.new, 0);
    assert_eq!(
        ledger.cursor("Gate").await.unwrap(),
        Some(json!({"records": 3}))
    );
    for sink in &ids {
        let due = ledger.due(*sink, 0, 10, None).await.unwrap();
        assert_eq!(due.len(), 3);
        let back = &due[0].punch;
        assert!(
            back.received_at.is_some(),
            "the ledger says when it read the punch"
        );
        let read = Punch {
            received_at: None,
            ..back.clone()
        };
        assert_eq!(read, batch[0], "a punch comes back as it went in");
    }
}

#[tokio::test]
async fn each_sink_settles_on_its_own_and_failures_wait() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir).await;
    let ([sqlite, frappe], cycle) = two_sinks_and_punches(&ledger, 4).await;

    let due = ledger.due(sqlite, 0, 10, None).await.unwrap();
    let delivered: Vec<(Seq, SinkOutcome)> = due
        .iter()
        .map(|queued| (queued.seq, SinkOutcome::Delivered))
        .collect();
    ledger
        .settle(sqlite, cycle, &delivered, Utc::now())
        .await
        .unwrap();
    let due = ledger.due(frappe, 0, 10, None).await.unwrap();
    let answers = [
        SinkOutcome::Delivered,
        SinkOutcome::Unmapped("no employee with PIN 1001".into()),
        SinkOutcome::Failed("503".into()),
        SinkOutcome::AlreadyPresent,
    ];
    let outcomes: Vec<(Seq, SinkOutcome)> =
        due.iter().map(|queued| queued.seq).zip(answers).collect();
    ledger
        .settle(frappe, cycle, &outcomes, Utc::now())
        .await
        .unwrap();

    assert!(ledger.due(sqlite, 0, 10, None).await.unwrap().is_empty());
    assert_eq!(
        ledger.due(frappe, 0, 10, None).await.unwrap().len(),
        1,
        "a fresh run retries at once"
    );
    assert!(
        ledger
            .due(frappe, 0, 10, Some(Utc::now()))
            .await
            .unwrap()
            .is_empty(),
        "within a run the failed punch waits for its pause"
    );
    let (open, failing, next) = ledger.open_count(frappe).await.unwrap();
    assert_eq!((open, failing), (1, 1));
    assert!(next.is_some());
    assert_eq!(
        ledger.open_by_device().await.unwrap(),
        vec![("Gate".to_owned(), 1)]
    );

    let standings = ledger.sink_standings().await.unwrap();
    assert_eq!(standings[1].unmapped, 1);
    assert_eq!(standings[1].unmapped_pins, vec![("1001".to_owned(), 1)]);

    let retried = ledger
        .retry(&RetryFilter {
            sink: Some("frappe".into()),
            unmapped: true,
            ..RetryFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(retried, 1);
    assert_eq!(
        ledger
            .due(frappe, 0, 10, Some(Utc::now()))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn a_new_sink_gets_the_backfill_window_and_a_replaced_store_everything() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir).await;
    let first = ledger
        .register_sinks(&[registration("sqlite", Some("store-1"))], None)
        .await
        .unwrap();
    assert_eq!(first[0].queued, 0, "nothing to offer a first sink");
    let batch: Vec<Punch> = (0..5).map(|n| punch("Gate", "1001", n)).collect();
    journal(&ledger, "Gate", &batch, &[first[0].id]).await;
    let cycle = ledger.begin_cycle(Utc::now()).await.unwrap();
    let due = ledger.due(first[0].id, 0, 10, None).await.unwrap();
    let delivered: Vec<(Seq, SinkOutcome)> = due
        .iter()
        .map(|queued| (queued.seq, SinkOutcome::Delivered))
        .collect();
    ledger
        .settle(first[0].id, cycle, &delivered, Utc::now())
        .await
        .unwrap();

    let window = Some(std::time::Duration::from_secs(86_400));
    let both = ledger
        .register_sinks(
            &[
                registration("sqlite", Some("store-1")),
                registration("firestore", None),
            ],
            window,
        )
        .await
        .unwrap();
    assert_eq!((both[0].queued, both[1].queued), (0, 5));
    assert!(both[1].queued_because.is_some());

    let replaced = ledger
        .register_sinks(&[registration("sqlite", Some("store-2"))], window)
        .await
        .unwrap();
    assert_eq!(replaced[0].queued, 5, "a replaced store is filled again");
    let standings = ledger.sink_standings().await.unwrap();
    assert_eq!(
        standings.len(),
        1,
        "a sink no longer configured is not drained"
    );
}

#[tokio::test]
async fn ids_delivered_before_the_ledger_are_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir).await;
    let sinks = ledger
        .register_sinks(&[registration("sqlite", None)], None)
        .await
        .unwrap();
    let batch: Vec<Punch> = (0..4).map(|n| punch("Gate", "1001", n)).collect();
    let known = vec![batch[0].id.to_string(), batch[2].id.to_string()];
    assert_eq!(ledger.import_delivered(&known).await.unwrap(), 2);
    assert_eq!(ledger.import_delivered(&known).await.unwrap(), 0);

    let journaled = journal(&ledger, "Gate", &batch, &[sinks[0].id]).await;

    assert_eq!(journaled.delivered_before, 2);
    let due = ledger.due(sinks[0].id, 0, 10, None).await.unwrap();
    let due_ids: Vec<&str> = due.iter().map(|queued| queued.punch.id.as_str()).collect();
    assert_eq!(due_ids, vec![batch[1].id.as_str(), batch[3].id.as_str()]);
}

#[tokio::test]
async fn searching_punches_shows_where_each_went() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir).await;
    let sinks = ledger
        .register_sinks(
            &[registration("sqlite", None), registration("frappe", None)],
            None,
        )
        .await
        .unwrap();
    journal(
        &ledger,
        "Gate",
        &[punch("Gate", "1001", 1), punch("Gate", "1002", 2)],
        &[sinks[0].id, sinks[1].id],
    )
    .await;
    journal(
        &ledger,
        "Hall",
        &[punch("Hall", "1001", 3)],
        &[sinks[0].id, sinks[1].id],
    )
    .await;

    let found = ledger
        .punches(&PunchQuery {
            pin: Some("1001".into()),
            limit: 100,
            ..PunchQuery::default()
        })
        .await
        .unwrap();

    assert_eq!(found.len(), 2);
    assert_eq!(found[1].device, "Hall", "oldest first");
    // The sinks in the order they were configured (not by name).
    let pending = |sink: &str| PunchDelivery {
        sink: sink.into(),
        state: "pending".into(),
        reason: None,
    };
    assert_eq!(found[0].sinks, vec![pending("sqlite"), pending("frappe")]);
    let newest = ledger
        .punches(&PunchQuery {
            pin: Some("1001".into()),
            limit: 100,
            newest_first: true,
            ..PunchQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].device, "Hall", "newest first");
}

/// Both sinks settled a batch before either handed it to the export: the first hand-over
/// exports it, the second finds nothing left (once it wrote every punch a second time
/// into the audit file and the JSON cache).
#[tokio::test]
async fn a_batch_handed_to_the_export_twice_is_exported_once() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = open(&dir).await;
    let (ids, cycle) = two_sinks_and_punches(&ledger, 3).await;
    let seqs: Vec<Seq> = ledger
        .due(ids[0], 0, 10, None)
        .await
        .unwrap()
        .iter()
        .map(|queued| queued.seq)
        .collect();
    for sink in &ids {
        let answers: Vec<(Seq, SinkOutcome)> = seqs
            .iter()
            .map(|seq| (*seq, SinkOutcome::Delivered))
            .collect();
        ledger
            .settle(*sink, cycle, &answers, Utc::now())
            .await
            .unwrap();
    }
    let export = ledger.start_export(None, "logs_test.json").await.unwrap();
    let first = ledger.export_batch(export.id, &seqs).await.unwrap();
    assert_eq!(first.len(), 3);
    assert!(first.iter().all(|(_, written)| *written));
    let second = ledger.export_batch(export.id, &seqs).await.unwrap();
    assert_eq!(second, [], "exported a second time");
}
