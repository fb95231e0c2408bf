//! Upgrading to the ledger: a folder the Python tool wrote, one an earlier version of
//! this tool wrote, and a ledger of the schema's first version — each taken over
//! without a single punch sent again and without losing what it held.

use std::collections::BTreeSet;

use iclock_sync::punch::PunchId;

use crate::support::{Workspace, options, punches, row, simulator, wall, wall_time_ago};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_the_python_tool_wrote_is_taken_over_without_resending_a_punch() {
    let rows = punches(400, 91);
    // The Python tool uploaded all of them, and its cache says so.
    let uploaded: Vec<String> = rows
        .iter()
        .map(|row| PunchId::legacy_md5(&row.emp_code, wall(&row.punch_time)).to_string())
        .collect();
    let distinct: BTreeSet<String> = uploaded.iter().cloned().collect();
    let sim = simulator(options(), rows).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "[sync]\nid_scheme = \"legacy-md5\"\n");
    workspace.write(
        "cache/uploaded_ids_cache.json",
        &serde_json::to_string_pretty(&uploaded).unwrap(),
    );

    let first = workspace.sync(&[], 0).await;

    assert_eq!(first.device(0)["new"], 0, "{}", first.stdout);
    assert_eq!(first.device(0)["already"], 400);
    assert_eq!(first.summary()["sinks"][0]["delivered"], 0);
    assert!(
        workspace.stored_punches().await.is_empty(),
        "nothing was sent again"
    );
    assert_eq!(workspace.cached_ids(), distinct, "the cache keeps every ID");
    assert!(
        first
            .stderr
            .contains(&format!("took {} delivered ID(s)", distinct.len())),
        "{}",
        first.stderr
    );

    let now = wall_time_ago(chrono::Duration::zero());
    sim.upload(vec![row("7001", &now, 0)]);
    let next = workspace.sync(&[], 0).await;
    assert_eq!(next.summary()["sinks"][0]["delivered"], 1);
    assert_eq!(workspace.cached_ids().len(), distinct.len() + 1);
    let reread = workspace.sync(&["--since", "3650"], 0).await;
    assert_eq!(reread.summary()["sinks"][0]["delivered"], 0);
    assert_eq!(
        reread.summary()["sinks"][0]["already"],
        0,
        "not even offered"
    );
}

/// An earlier version kept its cursors in `cache/cursors.json` beside the same JSON
/// cache, audit files and database; the folder is recreated here as it left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_the_previous_version_wrote_is_taken_over_without_resending_a_punch() {
    let sim = simulator(options(), punches(300, 92)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 100", "");
    workspace.sync(&[], 0).await;
    let cursor = ledger_cursor(&workspace, "Device 1").await;
    std::fs::remove_file(workspace.path("cache/ledger.db")).unwrap();
    workspace.write(
        "cache/cursors.json",
        &serde_json::json!({"version": 1, "devices": {"Device 1": cursor}}).to_string(),
    );
    let cache_before = workspace.cached_ids();
    let audits_before = workspace.files_named("output", "logs_", ".json");
    let pages_before = sim.stats().transaction_pages;

    let upgraded = workspace.sync(&[], 0).await;

    assert_eq!(
        upgraded.device(0)["fetched"],
        0,
        "the cursor was taken over"
    );
    assert!(sim.stats().transaction_pages - pages_before <= 1);
    assert_eq!(upgraded.summary()["sinks"][0]["delivered"], 0);
    assert_eq!(workspace.cached_ids(), cache_before);
    assert_eq!(
        workspace.files_named("output", "logs_", ".json"),
        audits_before
    );
    let reread = workspace.sync(&["--since", "3650"], 0).await;
    assert_eq!(reread.device(0)["already"], 300, "the old cache is known");
    assert_eq!(
        reread.summary()["sinks"][0]["already"],
        0,
        "nothing re-sent"
    );
    assert_eq!(workspace.stored_punches().await.len(), 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_of_the_first_schema_version_is_upgraded_with_its_data() {
    let workspace = Workspace::new();
    std::fs::create_dir_all(workspace.path("cache")).unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/ledger-v1.db");
    std::fs::copy(&fixture, workspace.path("cache/ledger.db")).unwrap();

    // retry writes, so it opens the ledger for writing and upgrades it.
    let retry = workspace
        .run(&["retry", "--sink", "frappe", "--unmapped"])
        .await;

    assert_eq!(retry.code, Some(0), "{}", retry.all_output());
    assert!(
        retry.stdout.contains("Queued 2 punch(es)"),
        "{}",
        retry.stdout
    );
    assert_eq!(
        workspace
            .ledger_number("SELECT COUNT(*) FROM _sqlx_migrations WHERE success")
            .await,
        // Every migration there is, up to the newest.
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/ledger"))
            .unwrap()
            .count() as i64
    );
    assert_eq!(
        workspace
            .ledger_number("SELECT COUNT(*) FROM punches")
            .await,
        30
    );
    assert_eq!(
        workspace
            .ledger_number("SELECT COUNT(*) FROM deliveries WHERE state = 2")
            .await,
        55,
        "what each sink took is kept"
    );
    assert_eq!(
        workspace
            .ledger_number("SELECT COUNT(*) FROM delivered_before")
            .await,
        1
    );
    let status = workspace.run(&["--json", "status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.all_output());
    let status = status.summary();
    assert_eq!(status["quarantined"], 1);
    assert_eq!(status["cycles"].as_array().unwrap().len(), 1);
    let gate = &status["devices"][0];
    assert_eq!(gate["name"], "Gate");
    assert_eq!(gate["cursor"]["records"], 21);
    assert_eq!(gate["facts"]["serial"], "SN-Gate");
    assert!(
        status["devices"][1]["last_error"]
            .as_str()
            .is_some_and(|error| error.contains("connection refused"))
    );
    let frappe = &status["sinks"][1];
    assert_eq!(frappe["name"], "frappe");
    assert_eq!(frappe["failing"], 3, "{frappe}");
    let punches = workspace.run(&["--json", "punches", "--pin", "1006"]).await;
    let punches: serde_json::Value = serde_json::from_str(punches.stdout.trim()).unwrap();
    assert_eq!(punches.as_array().unwrap().len(), 2);
    assert_eq!(punches[0]["sinks"][0]["state"], "delivered");
    assert_eq!(
        punches[0]["sinks"][1]["state"], "pending",
        "retried just now"
    );
}

async fn ledger_cursor(workspace: &Workspace, device: &str) -> serde_json::Value {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(workspace.path("cache/ledger.db"))
        .read_only(true);
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .unwrap();
    let text: String = sqlx::query_scalar("SELECT cursor FROM devices WHERE name = ?")
        .bind(device)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    serde_json::from_str(&text).unwrap()
}
