//! Reading BioTime transactions: paging, `next` links naming another host, large
//! volumes, late uploads, servers that ignore `ordering`, and `--since`.

use std::collections::BTreeSet;

use crate::support::{Workspace, options, punches, row, simulator, wall_time_ago};
use chrono::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_links_naming_a_foreign_host_are_followed_against_the_configured_url() {
    let sim = simulator(options(), punches(95, 11)).await;
    // The simulator really does put an unreachable internal host in `next`.
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/iclock/api/transactions/?page_size=10",
            sim.url()
        ))
        .header("Authorization", login(&sim.url()).await)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let next = page["next"].as_str().unwrap();
    assert!(next.starts_with("http://10.255.0.1:8081/"), "{next}");

    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 10", "");
    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["delivered"], 95);
    assert!(sim.stats().transaction_pages >= 10);
    assert_eq!(workspace.stored_punches().await.len(), 95);
}

async fn login(url: &str) -> String {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{url}/jwt-api-token-auth/"))
        .json(&serde_json::json!({"username": "admin", "password": "admin"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    format!("JWT {}", answer["token"].as_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_punches_over_many_pages_arrive_exactly_once() {
    let rows = punches(10_000, 12);
    let expected: BTreeSet<(String, String)> = rows
        .iter()
        .map(|row| (row.emp_code.clone(), row.punch_time.clone()))
        .collect();
    let sim = simulator(options(), rows).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 250", "");

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["fetched"], 10_000);
    assert_eq!(run.device(0)["delivered"], 10_000);
    assert!(sim.stats().transaction_pages >= 40);
    let stored = workspace.stored_punches().await;
    assert_eq!(stored.len(), 10_000);
    let stored_keys: BTreeSet<(String, String)> = stored
        .iter()
        .map(|(_, user, time, _)| (user.clone(), time.clone()))
        .collect();
    assert_eq!(stored_keys, expected);
    assert_eq!(workspace.cached_ids().len(), 10_000);
    assert_eq!(workspace.audited_ids().len(), 10_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_run_reads_only_what_is_new_and_uploads_nothing() {
    let sim = simulator(options(), punches(3000, 13)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 500", "");
    workspace.sync(&[], 0).await;
    let pages_first = sim.stats().transaction_pages;
    let audits = workspace.files_named("output", "logs_", ".json").len();

    let second = workspace.sync(&[], 0).await;

    let device = second.device(0);
    assert_eq!(
        device["fetched"], 0,
        "the cursor should skip everything: {device}"
    );
    assert_eq!(device["new"], 0);
    assert_eq!(second.summary()["sinks"][0]["delivered"], 0);
    assert_eq!(
        sim.stats().transaction_pages - pages_first,
        1,
        "one page reaches the watermark"
    );
    assert_eq!(
        workspace.files_named("output", "logs_", ".json").len(),
        audits,
        "no new audit file"
    );
    assert_eq!(workspace.stored_punches().await.len(), 3000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_upload_is_picked_up_on_the_next_run() {
    let sim = simulator(options(), punches(500, 14)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 100", "");
    workspace.sync(&[], 0).await;

    // A terminal that was offline for three months uploads a punch now.
    let months_ago = wall_time_ago(Duration::days(90));
    sim.upload(vec![row("4242", &months_ago, 0)]);
    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["new"], 1);
    assert_eq!(run.device(0)["delivered"], 1);
    let stored = workspace.stored_punches().await;
    assert_eq!(stored.len(), 501);
    assert!(
        stored
            .iter()
            .any(|(_, user, time, _)| user == "4242" && *time == months_ago)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_ordering_is_read_in_full_and_still_misses_nothing() {
    let mut sim_options = options();
    sim_options.ignore_ordering = true;
    let mut rows = punches(600, 15);
    // Upload times out of id order: what a server ignoring `ordering` would expose.
    rows.swap(10, 500);
    let sim = simulator(sim_options, rows).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 100", "");

    let first = workspace.sync(&[], 0).await;
    assert_eq!(first.device(0)["delivered"], 600);
    assert!(
        first.stderr.contains("ignores ordering"),
        "{}",
        first.stderr
    );

    let months_ago = wall_time_ago(Duration::days(40));
    sim.upload(vec![row("777", &months_ago, 1)]);
    let second = workspace.sync(&[], 0).await;
    assert_eq!(second.device(0)["delivered"], 1);
    assert_eq!(workspace.stored_punches().await.len(), 601);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_reads_a_punch_time_window_and_leaves_the_cursor_alone() {
    let old = wall_time_ago(Duration::days(5));
    let recent = wall_time_ago(Duration::hours(3));
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![row("1", &old, 0), row("2", &recent, 0)]);
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");

    let run = workspace.sync(&["--since", "1"], 0).await;

    assert_eq!(run.device(0)["delivered"], 1);
    let stored = workspace.stored_punches().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1, "2");
    assert!(
        !workspace.path("cache/cursors.json").exists(),
        "the cursor was not moved"
    );

    // A normal run afterwards still reads everything the window skipped.
    let full = workspace.sync(&[], 0).await;
    assert_eq!(full.device(0)["new"], 1);
    assert_eq!(full.device(0)["already"], 1);
    assert_eq!(workspace.stored_punches().await.len(), 2);
}
