//! The ZK client against the simulated terminal, below the sync: the operations later
//! features build on (switching a user off and on, setting the clock, live events) and
//! the refusals of `clear_after_sync`.

use std::sync::Arc;
use std::time::Duration;

use crate::support::zk::{layout, profile, terminal};
use iclock_sync::punch::DeviceLabel;
use iclock_sync::shutdown;
use iclock_sync::source::zk::codec::attendance::Identity;
use iclock_sync::source::zk::{Connection, TransportKind, ZkConfig, ZkSource};
use iclock_sync::source::{FetchPlan, Settlement, Source};

const TIMEOUT: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_is_switched_off_and_on_by_rewriting_the_disabled_bit() {
    for (kind, size) in [(TransportKind::Tcp, 40), (TransportKind::Udp, 8)] {
        let sim = terminal(kind, profile("SNUSER", layout(size), 0), 10, 0, 1).await;
        let mut connection = Connection::open(sim.address(), kind, 0, TIMEOUT)
            .await
            .unwrap();
        let (_, users) = connection.users(60).await.unwrap();
        let target = users
            .iter()
            .find(|user| user.user_id == "1007")
            .unwrap()
            .clone();
        assert!(target.enabled());

        connection
            .write_user(&target.with_enabled(false))
            .await
            .unwrap();
        let stored = sim
            .users()
            .into_iter()
            .find(|user| user.uid == target.uid)
            .unwrap();
        assert!(!stored.enabled(), "{kind:?}");
        assert_eq!(stored.privilege, target.privilege | 1);
        let (_, reread) = connection.users(60).await.unwrap();
        assert!(
            !reread
                .iter()
                .find(|user| user.uid == target.uid)
                .unwrap()
                .enabled()
        );

        connection
            .write_user(&stored.with_enabled(true))
            .await
            .unwrap();
        let restored = sim
            .users()
            .into_iter()
            .find(|user| user.uid == target.uid)
            .unwrap();
        assert_eq!(
            restored.raw, target.raw,
            "{kind:?}: only the disabled bit ever changed"
        );
        assert_eq!(sim.stats().user_writes, 2);
        connection.close().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_clock_is_set() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNCLOCK", layout(40), 0),
        10,
        0,
        2,
    )
    .await;
    let mut connection = Connection::open(sim.address(), TransportKind::Tcp, 0, TIMEOUT)
        .await
        .unwrap();
    let wanted =
        chrono::NaiveDateTime::parse_from_str("2031-07-04 09:30:00", "%Y-%m-%d %H:%M:%S").unwrap();
    connection.set_time(wanted).await.unwrap();
    let now = connection
        .device_time()
        .await
        .unwrap()
        .to_datetime()
        .unwrap();
    assert!((now - wanted).num_seconds().abs() <= 2, "{now}");
    connection.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_punches_arrive_as_events_over_tcp_and_udp() {
    for (kind, size) in [(TransportKind::Tcp, 40), (TransportKind::Udp, 16)] {
        let sim = terminal(kind, profile("SNLIVE", layout(size), 0), 10, 0, 3).await;
        let mut connection = Connection::open(sim.address(), kind, 0, TIMEOUT)
            .await
            .unwrap();
        connection.register_events(1).await.unwrap();
        assert_eq!(
            connection
                .next_event(Duration::from_millis(200))
                .await
                .unwrap(),
            None
        );

        sim.punch("1012", 1, 15);
        let event = connection
            .next_event(TIMEOUT)
            .await
            .unwrap()
            .expect("an event");
        assert_eq!(event.identity, Identity::Pin("1012".into()), "{kind:?}");
        assert_eq!((event.state, event.verify), (1, 15));
        let logged = sim.records().last().unwrap().clone();
        assert_eq!(event.time, logged.time);
        // The connection still answers requests afterwards.
        assert_eq!(connection.counters().await.unwrap().records, 11);
        connection.close().await;
    }
}

fn source_for(sim: &iclock_sync::simulate::zk::ZkSimulator) -> ZkSource {
    let config = ZkConfig {
        transport: iclock_sync::source::zk::TransportChoice::Tcp,
        clear_after_sync: true,
        ..ZkConfig::at(sim.address().to_string())
    };
    let label = Arc::new(DeviceLabel {
        name: "Clearing".into(),
        timezone: chrono_tz::UTC,
    });
    ZkSource::new(label, &config, None)
}

async fn read_all(source: &mut ZkSource) -> usize {
    let (sender, mut receiver) = tokio::sync::mpsc::channel(1000);
    let (_trigger, stop) = shutdown::channel();
    let plan = FetchPlan::new(None, stop, iclock_sync::source::DEFAULT_MAX_READ_TIME);
    source.fetch(&plan, &sender).await.unwrap();
    drop(sender);
    let mut count = 0;
    while let Some(batch) = receiver.recv().await {
        count += batch.len();
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_not_cleared_while_anything_read_is_undelivered() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNKEEP", layout(40), 0),
        300,
        0,
        4,
    )
    .await;
    let mut source = source_for(&sim);
    assert_eq!(read_all(&mut source).await, 300);
    let settlement = Settlement {
        complete: true,
        unhandled: vec![17],
        discard: false,
    };
    source.settle(&settlement);
    let note = source.after_recorded().await.unwrap();
    assert_eq!(
        note,
        "log not cleared: 283 of the 300 punches read are not delivered yet"
    );
    assert_eq!(sim.records().len(), 300);
    assert_eq!(sim.stats().clears, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_is_not_cleared_when_a_punch_arrived_after_the_read() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNRACE", layout(40), 0),
        300,
        0,
        5,
    )
    .await;
    let mut source = source_for(&sim);
    assert_eq!(read_all(&mut source).await, 300);
    sim.punch("1003", 0, 1);
    source.settle(&Settlement {
        complete: true,
        unhandled: Vec::new(),
        discard: false,
    });
    let note = source.after_recorded().await.unwrap();
    assert!(
        note.starts_with("log not cleared: the terminal now holds 301 punches, 300 were read"),
        "{note}"
    );
    assert_eq!(sim.records().len(), 301);
    assert!(sim.is_enabled());
}
