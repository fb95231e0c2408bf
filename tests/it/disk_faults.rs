//! A disk that fails under the SQLite store mid-sync: after the first I/O error the
//! store is not trusted again in that cycle, nothing is recorded as delivered that the
//! database does not hold, and the next run delivers the rest exactly once.

use std::collections::BTreeSet;

use crate::support::faulty_disk::failing_writes;
use crate::support::{Workspace, options, punches, simulator};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_write_error_the_store_is_failed_for_the_cycle_and_nothing_unstored_is_recorded() {
    let sim = simulator(options(), punches(10_000, 71)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 250", "");
    // A few writes into the WAL fail, early in the sync; the disk then works again.
    let fault = failing_writes("attendance.db-wal", 40, 3);
    let fault: Vec<(&str, &str)> = fault
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();

    let run = workspace.run_with_env(&["--json"], &fault).await;

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    let sink = &run.summary()["sinks"][0];
    let delivered = sink["delivered"].as_u64().unwrap();
    let failed = sink["failed"].as_u64().unwrap();
    let waiting = sink["pending"].as_u64().unwrap();
    assert_eq!(delivered + waiting, 10_000, "{sink}");
    assert!(
        failed > 0 && waiting >= failed && delivered < 10_000,
        "the store was trusted again after its write error: {sink}"
    );
    assert!(
        sink["last_failure"]
            .as_str()
            .is_some_and(|failure| failure.contains("attendance.db")),
        "{sink}"
    );
    let stored = workspace.stored_ids().await;
    assert_eq!(stored.len() as u64, delivered, "{sink}");
    assert_eq!(
        workspace.cached_ids(),
        stored,
        "what the database holds, and only that, is recorded as delivered"
    );

    let again = workspace.sync(&[], 0).await;
    assert_eq!(
        again.summary()["sinks"][0]["delivered"].as_u64(),
        Some(waiting)
    );
    let stored = workspace.stored_punches().await;
    let ids: BTreeSet<String> = stored.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(stored.len(), 10_000);
    assert_eq!(ids.len(), 10_000, "duplicate rows");
    assert_eq!(workspace.cached_ids(), ids);
}
