//! Sinks drained from the ledger, each on its own: one down never holds back reading
//! or the other; it catches up from the ledger exactly once; refused punches wait
//! until `retry`; a sink added later is offered the recent past, and a store that was
//! replaced is filled again.

use iclock_sync::simulate::frappe::{Employee, Faults, SiteOptions};

use crate::support::frappe::{SECRET, duplicates, everyone, sink, start};
use crate::support::{Workspace, options, punches, row, simulator, wall_time_ago};

fn workspace() -> Workspace {
    let workspace = Workspace::new();
    workspace.write(".env", &format!("FRAPPE_SECRET={SECRET}\n"));
    workspace
}

/// SQLite and Frappe, Frappe giving up on a failure after a moment.
fn both_sinks(frappe: &iclock_sync::simulate::frappe::FrappeSimulator) -> String {
    format!("[sink.sqlite]\n{}", sink(frappe, "retry_for = \"1s\""))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_down_for_three_cycles_holds_back_nothing_and_then_catches_up_exactly_once() {
    let frappe = start(everyone(1000, 201), SiteOptions::default()).await;
    let sim = simulator(options(), punches(300, 81)).await;
    let workspace = workspace();
    workspace.configure(&[sim.url()], "page_size = 100", &both_sinks(&frappe));
    frappe.set_faults(Faults {
        unavailable_next: u32::MAX,
        ..Faults::default()
    });

    let mut read = 0;
    let mut stored = 0;
    for cycle in 0..3 {
        let now = wall_time_ago(chrono::Duration::zero());
        let pin = (1000 + cycle).to_string();
        if cycle > 0 {
            sim.upload(vec![row(&pin, &now, 0), row(&pin, &now, 1)]);
        }
        let run = workspace.sync(&[], 1).await;
        let summary = run.summary();
        let fetched = run.device(0)["fetched"].as_u64().unwrap();
        read += fetched;
        assert_eq!(
            run.device(0)["new"].as_u64(),
            Some(fetched),
            "cycle {cycle}: the device is read once for its punches"
        );
        let sqlite = &sink_of(&summary, "sqlite");
        let frappe_report = &sink_of(&summary, "frappe");
        assert_eq!(
            sqlite["delivered"].as_u64(),
            Some(fetched),
            "cycle {cycle}: {sqlite}"
        );
        assert_eq!(frappe_report["delivered"], 0, "cycle {cycle}");
        assert_eq!(
            frappe_report["pending"].as_u64(),
            Some(read),
            "cycle {cycle}: everything waits for Frappe"
        );
        stored += fetched;
        assert_eq!(workspace.stored_punches().await.len() as u64, stored);

        let status = workspace.run(&["--json", "status"]).await;
        assert_eq!(status.code, Some(0), "{}", status.all_output());
        let frappe_status = &sink_of(&status.summary(), "frappe");
        assert_eq!(
            frappe_status["pending"].as_u64().unwrap() + frappe_status["failing"].as_u64().unwrap(),
            read,
            "status shows what waits: {frappe_status}"
        );
        let text = workspace.run(&["status"]).await;
        assert!(
            text.stdout.contains(&format!("{read} waiting")),
            "{}",
            text.stdout
        );
    }
    let pages_before = sim.stats().transaction_pages;

    frappe.set_faults(Faults::default());
    let recovered = workspace.sync(&[], 0).await;

    let summary = recovered.summary();
    assert_eq!(recovered.device(0)["fetched"], 0, "nothing is read again");
    assert!(sim.stats().transaction_pages - pages_before <= 1);
    assert_eq!(
        sink_of(&summary, "sqlite")["delivered"],
        0,
        "SQLite had everything"
    );
    let frappe_report = &sink_of(&summary, "frappe");
    assert_eq!(frappe_report["pending"], 0, "{frappe_report}");
    let delivered = frappe_report["delivered"].as_u64().unwrap();
    let skipped = frappe_report["skipped"].as_u64().unwrap();
    assert_eq!(delivered + skipped, read, "{frappe_report}");
    assert_eq!(frappe.checkins().len() as u64, delivered);
    assert_eq!(duplicates(&frappe), 0);
    assert_eq!(
        frappe.stats().created,
        delivered,
        "every checkin created once, none sent twice"
    );
    let stored = workspace.stored_ids().await;
    assert_eq!(
        workspace.cached_ids(),
        stored,
        "once every sink has them, the JSON cache lists them all"
    );
    let again = workspace.sync(&[], 0).await;
    assert_eq!(sink_of(&again.summary(), "frappe")["delivered"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmapped_pin_mapped_later_is_delivered_once_after_retry() {
    // Nobody has PIN 1009 yet.
    let frappe = start(everyone(1000, 9), SiteOptions::default()).await;
    let sim = simulator(options(), Vec::new()).await;
    sim.upload(vec![
        row("1001", "2026-03-02 08:00:00", 0),
        row("1009", "2026-03-02 08:01:00", 0),
        row("1009", "2026-03-02 17:05:00", 1),
    ]);
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", &both_sinks(&frappe));

    let first = workspace.sync(&[], 1).await;
    assert_eq!(sink_of(&first.summary(), "frappe")["unmapped"], 2);
    assert_eq!(
        sink_of(&first.summary(), "frappe")["unmapped_users"][0],
        "1009"
    );
    let status = workspace.run(&["status"]).await;
    assert!(
        status.stdout.contains("unmapped PINs: 1009 (2)"),
        "{}",
        status.stdout
    );

    frappe.edit(|site| {
        site.employees.push(Employee {
            name: "HR-EMP-01009".into(),
            employee_name: "Ivan".into(),
            status: "Active".into(),
            attendance_device_id: Some("1009".into()),
            user_id: None,
            company: "Test Co".into(),
        });
    });
    let unasked = workspace.sync(&[], 0).await;
    assert_eq!(
        sink_of(&unasked.summary(), "frappe")["delivered"],
        0,
        "a refused punch waits for retry"
    );
    assert_eq!(frappe.checkins().len(), 1);

    let retry = workspace
        .run(&["retry", "--sink", "frappe", "--unmapped", "--pin", "1009"])
        .await;
    assert_eq!(retry.code, Some(0), "{}", retry.all_output());
    assert!(
        retry.stdout.contains("Queued 2 punch(es)"),
        "{}",
        retry.stdout
    );
    let delivered = workspace.sync(&[], 0).await;

    assert_eq!(sink_of(&delivered.summary(), "frappe")["delivered"], 2);
    assert_eq!(sink_of(&delivered.summary(), "sqlite")["delivered"], 0);
    let ivan: Vec<_> = frappe
        .checkins()
        .into_iter()
        .filter(|checkin| checkin.employee == "HR-EMP-01009")
        .collect();
    assert_eq!(ivan.len(), 2);
    let nothing = workspace.run(&["retry", "--unmapped"]).await;
    assert!(
        nothing.stdout.contains("Nothing to retry"),
        "{}",
        nothing.stdout
    );
    workspace.sync(&[], 0).await;
    assert_eq!(frappe.checkins().len(), 3, "delivered exactly once");
    let unknown = workspace.run(&["retry", "--sink", "frapp"]).await;
    assert_eq!(unknown.code, Some(2));
    assert!(
        unknown.stderr.contains("frappe, sqlite"),
        "{}",
        unknown.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sink_added_later_gets_the_backfill_window_and_more_on_request() {
    let frappe = start(everyone(1000, 201), SiteOptions::default()).await;
    let sim = simulator(options(), Vec::new()).await;
    let recent = wall_time_ago(chrono::Duration::hours(2));
    sim.upload(vec![
        row("1001", "2026-03-02 08:00:00", 0),
        row("1002", &recent, 0),
    ]);
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", "[sink.sqlite]\n");
    workspace.sync(&[], 0).await;
    // The ledger read them long ago (as far as the window goes).
    workspace.write(
        "iclock-sync.toml",
        &workspace
            .read("iclock-sync.toml")
            .replace("[sink.sqlite]\n", &both_sinks(&frappe)),
    );
    sqlx_update(
        &workspace,
        "UPDATE punches SET read_at = '2026-03-02T08:00:00Z' WHERE user_id = '1001'",
    )
    .await;

    let added = workspace.sync(&[], 0).await;

    assert_eq!(
        sink_of(&added.summary(), "frappe")["delivered"],
        1,
        "the 30-day window"
    );
    assert_eq!(frappe.checkins().len(), 1);
    let backfill = workspace
        .run(&["backfill", "frappe", "--since", "400d"])
        .await;
    assert_eq!(backfill.code, Some(0), "{}", backfill.all_output());
    assert!(
        backfill.stdout.contains("Queued 1 punch(es)"),
        "{}",
        backfill.stdout
    );
    let filled = workspace.sync(&[], 0).await;
    assert_eq!(sink_of(&filled.summary(), "frappe")["delivered"], 1);
    assert_eq!(frappe.checkins().len(), 2);
    assert_eq!(duplicates(&frappe), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_sqlite_store_is_noticed_and_filled_again() {
    let sim = simulator(options(), punches(120, 82)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    workspace.sync(&[], 0).await;
    assert_eq!(workspace.stored_punches().await.len(), 120);

    std::fs::remove_file(workspace.database()).unwrap();
    let refill = workspace.sync(&[], 0).await;

    assert_eq!(
        sink_of(&refill.summary(), "sqlite")["delivered"],
        120,
        "{}",
        refill.stdout
    );
    assert_eq!(workspace.stored_punches().await.len(), 120);
    assert!(
        refill.stderr.contains("replaced or emptied"),
        "{}",
        refill.stderr
    );
}

/// A sink's part of a cycle's (or `status`'s) JSON.
fn sink_of(summary: &serde_json::Value, name: &str) -> serde_json::Value {
    summary["sinks"]
        .as_array()
        .and_then(|sinks| sinks.iter().find(|sink| sink["name"] == name))
        .cloned()
        .unwrap_or_else(|| panic!("no sink {name} in {summary}"))
}

/// Changes the ledger behind the tool's back (to age what it read).
async fn sqlx_update(workspace: &Workspace, sql: &str) {
    let options =
        sqlx::sqlite::SqliteConnectOptions::new().filename(workspace.path("cache/ledger.db"));
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the ledger");
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .expect("update the ledger");
    pool.close().await;
}
