//! The dedup cache as users meet it: the Python tool's file, a corrupt file,
//! `build-cache`, and two instances on one cache.

use crate::support::{Workspace, options, row, simulator};
use iclock_sync::instance_lock::InstanceLock;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tools_cache_is_honoured() {
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![
        row("1", "2022-11-13 16:34:51", 0),
        row("2", "2022-11-13 16:35:00", 0),
    ]);
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "[sync]\nid_scheme = \"legacy-md5\"\n");
    // Exactly as the Python tool writes it: the first punch was uploaded by it already.
    workspace.write(
        "cache/uploaded_ids_cache.json",
        "[\n    \"c45d4288f29e9feb6751b7973c1625b7\"\n]",
    );

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["already"], 1);
    assert_eq!(run.device(0)["delivered"], 1);
    assert_eq!(workspace.stored_punches().await.len(), 1);
    assert_eq!(workspace.cached_ids().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_cache_is_moved_aside_and_rebuilt_and_the_sync_goes_on() {
    let sim = simulator(options(), vec![]).await;
    sim.upload(vec![
        row("1", "2026-01-05 08:00:00", 0),
        row("2", "2026-01-05 08:01:00", 0),
    ]);
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    workspace.sync(&[], 0).await;
    let good_cache = workspace.cached_ids();
    // What the Python tool's non-atomic write leaves after a crash.
    workspace.write("cache/uploaded_ids_cache.json", "[\n    \"c45d4288f29e9f");
    // An unreadable audit file that the rebuild must skip with a warning.
    let stamp = chrono::Local::now().format("%Y-%m-%d_%H-%M-%S");
    workspace.write(&format!("output/logs_{stamp}_9.json"), "[{\"doc_id\": ");
    sim.upload(vec![row("3", "2026-01-05 08:02:00", 0)]);

    // Read everything again: the ledger, not the cache, says what is known.
    let repaired = workspace.sync(&["--since", "3650"], 0).await;

    assert!(
        repaired.stderr.contains("the dedup cache was corrupt")
            && repaired.stderr.contains("wrote it afresh from the ledger"),
        "{}",
        repaired.stderr
    );
    assert!(repaired.stderr.contains("skipping"), "{}", repaired.stderr);
    let device = repaired.device(0);
    assert_eq!(device["already"], 2, "the ledger knows the first two");
    assert_eq!(device["delivered"], 1);
    assert_eq!(
        workspace
            .files_named("cache", "uploaded_ids_cache.json.corrupt-", "")
            .len(),
        1,
        "the corrupt file is kept for inspection"
    );
    assert_eq!(workspace.cached_ids().len(), good_cache.len() + 1);
    assert!(workspace.cached_ids().is_superset(&good_cache));

    // build-cache does the same on request.
    workspace.write("cache/uploaded_ids_cache.json", "not json");
    let rebuilt = workspace.run(&["build-cache"]).await;
    assert_eq!(rebuilt.code, Some(0), "{}", rebuilt.all_output());
    assert!(rebuilt.stdout.contains("1 skipped"), "{}", rebuilt.stdout);
    assert!(rebuilt.stdout.contains("was kept as"), "{}", rebuilt.stdout);
    assert_eq!(workspace.cached_ids().len(), good_cache.len() + 1);
}

/// An output folder that can never be written (here: a file stands where it should
/// be) is a configuration problem, not something the next run retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unusable_output_folder_is_a_configuration_error() {
    let sim = simulator(options(), vec![]).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    workspace.write("output", "a file where the folder should be");

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    assert!(
        run.stderr.contains("output_dir in [sync]"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn build_cache_merges_python_audit_files_into_an_existing_cache() {
    let workspace = Workspace::new();
    workspace.write("cache/uploaded_ids_cache.json", "[\"aaaa\"]");
    workspace.write(
        "output/logs_2025-10-01_08-00-00.json",
        "[\n    {\n        \"doc_id\": \"c45d4288f29e9feb6751b7973c1625b7\",\n        \"staffId\": \"1\",\n        \"timestamp\": \"2022-11-13 16:34:51\",\n        \"status\": 1,\n        \"workCode\": 0\n    }\n]",
    );
    workspace.write(
        "output/logs_2025-10-02_08-00-00.json",
        "[{\"doc_id\": \"aaaa\"}, {\"staffId\": \"x\"}]",
    );
    workspace.write("output/other.json", "[{\"doc_id\": \"not-an-audit-file\"}]");

    let run = workspace.run(&["--json", "build-cache"]).await;

    assert_eq!(run.code, Some(0), "{}", run.all_output());
    let report = run.summary();
    assert_eq!(report["files_read"], 2);
    assert_eq!(report["ids_found"], 2);
    assert_eq!(report["ids_added"], 1);
    assert_eq!(report["cache_size"], 2);
    let ids: Vec<String> = workspace.cached_ids().into_iter().collect();
    assert_eq!(ids, vec!["aaaa", "c45d4288f29e9feb6751b7973c1625b7"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_instance_on_the_same_cache_refuses_to_run() {
    let sim = simulator(options(), vec![]).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    let _held = InstanceLock::acquire(&workspace.path("cache")).unwrap();

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(3), "{}", run.all_output());
    assert!(run.stderr.contains("another iclock-sync"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("pid {}", std::process::id())),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats().logins, 0, "nothing was read");
    let build = workspace.run(&["build-cache"]).await;
    assert_eq!(build.code, Some(3), "{}", build.all_output());
}
