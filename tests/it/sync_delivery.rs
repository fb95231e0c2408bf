//! What a sync cycle delivers and records: quarantine of bad records beside good ones,
//! dry runs that touch nothing, the legacy ID scheme, and a dead device among live ones.

use crate::support::{Workspace, options, punches, row, simulator, wall_time_ago};
use iclock_sync::simulate::biotime::{DatasetSpec, generate, now_local};

fn with_bad_records(good: u64, bad: u32) -> Vec<iclock_sync::simulate::biotime::SimTransaction> {
    generate(&DatasetSpec {
        employees: 100,
        days: 1,
        punches: Some(good),
        late_uploads: 0,
        bad_records: bad,
        seed: 21,
        anchor: now_local(),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_quarantined_while_the_good_ones_are_delivered() {
    let sim = simulator(options(), with_bad_records(300, 5)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 50", "");

    let run = workspace.sync(&[], 0).await;

    let device = run.device(0);
    assert_eq!(device["fetched"], 305);
    assert_eq!(device["quarantined"], 5);
    assert_eq!(device["newly_quarantined"], 5);
    assert_eq!(device["delivered"], 300);
    assert_eq!(workspace.stored_punches().await.len(), 300);
    let quarantine = workspace.read("output/quarantine.jsonl");
    let reasons: Vec<String> = quarantine
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(reasons.len(), 5);
    for expected in [
        "empty user id",
        "not a real date",
        "before 2000",
        "in the future",
        "not a number",
    ] {
        assert!(
            reasons.iter().any(|reason| reason.contains(expected)),
            "{expected}: {reasons:?}"
        );
    }

    // Read again from scratch (--since ignores the cursor; 10000 days reaches back past
    // the 1999 record): counted, but not reported twice.
    let again = workspace.sync(&["--since", "10000"], 0).await;
    assert_eq!(again.device(0)["quarantined"], 5);
    assert_eq!(again.device(0)["newly_quarantined"], 0);
    assert_eq!(workspace.read("output/quarantine.jsonl"), quarantine);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_lists_what_is_new_and_changes_no_byte_anywhere() {
    let sim = simulator(options(), punches(400, 22)).await;
    let workspace = Workspace::new();
    // The sink path names a variable that is not set: a dry run must not need it.
    workspace.configure(&[sim.url()], "page_size = 100", "");
    workspace.sync(&[], 0).await;
    let config = workspace.read("iclock-sync.toml");
    workspace.write(
        "iclock-sync.toml",
        &format!("{config}\n[sink.sqlite]\npath = \"${{DB_PATH}}\"\n"),
    );
    let now = wall_time_ago(chrono::Duration::zero());
    sim.upload(vec![row("5001", &now, 0), row("", &now, 1)]);
    let before = workspace.snapshot();

    let run = workspace.sync(&["--dry-run"], 0).await;

    assert_eq!(workspace.snapshot(), before, "a dry run wrote something");
    let summary = run.summary();
    assert_eq!(summary["dry_run"], true);
    assert_eq!(summary["would_upload"], 1);
    assert_eq!(summary["preview"][0]["user_id"], "5001");
    assert_eq!(summary["devices"][0]["quarantined"], 1);

    let text = workspace.run(&["--dry-run"]).await;
    assert_eq!(text.code, Some(0), "{}", text.all_output());
    assert!(
        text.stdout
            .contains("1 punch(es) would be uploaded; nothing was written"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout
            .contains("would upload  Device 1  user     5001"),
        "{}",
        text.stdout
    );
    assert_eq!(workspace.snapshot(), before, "a dry run wrote something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_scheme_writes_the_python_tools_ids_into_cache_and_audit() {
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![
        row("1", "2022-11-13 16:34:51", 0),
        // Same user, same second, other state: the legacy scheme collapses the two.
        row("1", "2022-11-13 16:34:51", 1),
    ]);
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "[sync]\nid_scheme = \"legacy-md5\"\n");

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["new"], 1);
    assert_eq!(run.device(0)["already"], 1);
    let expected = "c45d4288f29e9feb6751b7973c1625b7";
    assert_eq!(
        workspace.cached_ids().into_iter().collect::<Vec<_>>(),
        vec![expected]
    );
    assert_eq!(workspace.audited_ids(), vec![expected]);
    let stored = workspace.stored_punches().await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].0, expected);
    let audit: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&workspace.files_named("output", "logs_", ".json")[0]).unwrap(),
    )
    .unwrap();
    assert_eq!(audit[0]["staffId"], "1");
    assert_eq!(audit[0]["timestamp"], "2022-11-13 16:34:51");
    assert_eq!(audit[0]["status"], 1, "status is the verify mode");
    assert_eq!(
        audit[0]["workCode"], stored[0].3,
        "workCode is the punch state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_native_scheme_keeps_in_and_out_in_the_same_second_apart() {
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![
        row("1", "2022-11-13 16:34:51", 0),
        row("1", "2022-11-13 16:34:51", 1),
    ]);
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["delivered"], 2);
    assert_eq!(workspace.stored_punches().await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_device_is_named_and_the_others_carry_on() {
    let sim = simulator(options(), punches(120, 23)).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let workspace = Workspace::new();
    workspace.configure(&[dead_url.clone(), sim.url()], "timeout = \"3s\"", "");

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    assert!(run.stdout.contains("Device 1  biotime"), "{}", run.stdout);
    assert!(
        run.stdout.contains("FAILED (unreachable)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(&format!(
            "error: device 'Device 1' ({dead_url}): cannot connect"
        )),
        "{}",
        run.stdout
    );
    assert_eq!(workspace.stored_punches().await.len(), 120);
    let json = workspace.sync(&[], 1).await;
    assert_eq!(json.device(0)["error"]["kind"], "unreachable");
    assert_eq!(json.device(1)["error"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_device_is_not_contacted() {
    let sim = simulator(options(), punches(10, 24)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "enabled = false", "");
    let run = workspace.sync(&[], 0).await;
    assert_eq!(run.summary()["devices"].as_array().unwrap().len(), 0);
    assert_eq!(sim.stats().logins, 0);
}

/// The ledger and the cache are lost and the next cycle finds every punch already in the sink: it says
/// so in the headline (agreeing with the sink table) and writes no audit file, which
/// lists only what this tool wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cycle_whose_punches_were_all_there_already_says_so_and_writes_no_audit_file() {
    let sim = simulator(options(), punches(215, 23)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    workspace.sync(&[], 0).await;
    assert_eq!(workspace.files_named("output", "logs_", ".json").len(), 1);
    std::fs::remove_dir_all(workspace.path("cache")).unwrap();

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(0), "{}", run.all_output());
    assert!(
        run.stdout
            .contains("0 new punch(es) delivered. 215 were already in the sinks."),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("audit file:"), "{}", run.stdout);
    assert_eq!(
        workspace.files_named("output", "logs_", ".json").len(),
        1,
        "no audit file for a cycle that wrote nothing"
    );
}
