//! Kill the binary anywhere and the next run completes the set: nothing lost, nothing
//! twice. The crash points abort at the exact dangerous instants; the random kills
//! cover the instants in between.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::support::frappe::{SECRET, duplicates, everyone, sink, start};
use crate::support::{Workspace, options, punches, simulator};
use iclock_sync::crash_point;
use iclock_sync::simulate::frappe::SiteOptions;

/// After any crash, a clean run must leave every punch stored once, the cache must
/// agree with the database, and the audit files list no punch twice and none that is
/// not stored. (They list what a cycle wrote: a punch written just before a crash is
/// "already there" for the run that records it, so it may be in none.)
async fn assert_complete_and_consistent(workspace: &Workspace, expected: usize) {
    let recovery = workspace.sync(&[], 0).await;
    let stored = workspace.stored_punches().await;
    let ids: BTreeSet<String> = stored.iter().map(|(id, ..)| id.clone()).collect();
    assert_eq!(stored.len(), expected, "{}", recovery.stdout);
    assert_eq!(ids.len(), expected, "duplicate rows");
    assert_eq!(workspace.cached_ids(), ids, "cache and database disagree");
    let audited = workspace.audited_ids();
    let audited_set: BTreeSet<String> = audited.iter().cloned().collect();
    assert_eq!(audited.len(), audited_set.len(), "an ID was audited twice");
    assert!(
        audited_set.is_subset(&ids),
        "the audit files list punches the database does not hold"
    );
    let after = workspace.sync(&[], 0).await;
    assert_eq!(after.device(0)["new"], 0);
}

async fn crash_at(point: &str) {
    let sim = simulator(options(), punches(1500, 31)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 300", "");

    let crashed = workspace
        .run_with_env(&[], &[(crash_point::ENV, point)])
        .await;
    assert_eq!(
        crashed.code,
        None,
        "expected an abort at {point}: {}",
        crashed.all_output()
    );
    assert!(crashed.stderr.contains(point), "{}", crashed.stderr);
    assert!(
        !workspace.stored_punches().await.is_empty(),
        "the sink had been written before the crash"
    );

    assert_complete_and_consistent(&workspace, 1500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_between_the_sink_write_and_the_ledger_loses_and_duplicates_nothing() {
    crash_at(crash_point::AFTER_SINK_WRITE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_before_an_export_is_recorded_loses_and_duplicates_nothing() {
    crash_at(crash_point::BEFORE_EXPORT_RECORDED).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_during_a_long_sync_lose_and_duplicate_nothing() {
    let mut sim_options = options();
    sim_options.page_delay = Duration::from_millis(15);
    let sim = simulator(sim_options, punches(2000, 32)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "page_size = 40", "");

    // Deterministic "random" delays spread over the ~0.8 s a full run takes.
    for delay_ms in [90_u64, 260, 410, 170, 620, 330] {
        let mut child = workspace.command(&[]).spawn().expect("spawn");
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        let _ = child.start_kill();
        let status = child.wait().await.expect("wait");
        assert!(
            status.code().is_none() || status.code() == Some(0),
            "{status:?}"
        );
    }

    assert_complete_and_consistent(&workspace, 2000).await;
}

/// SIGKILL at pseudo-random moments — while devices are read, while the sinks are
/// drained, while the files are exported — each followed by a clean run: both sinks
/// hold every punch exactly once, and the ledger, the JSON cache and the audit files
/// agree. 22 rounds here; `scripts/bench-kills` runs it with a few hundred
/// (`ICLOCK_SYNC_KILL_ROUNDS`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_while_reading_and_draining_into_two_sinks_lose_and_duplicate_nothing() {
    let rounds: u64 = std::env::var("ICLOCK_SYNC_KILL_ROUNDS")
        .ok()
        .and_then(|rounds| rounds.parse().ok())
        .unwrap_or(22);
    let frappe = start(
        everyone(1000, 201),
        SiteOptions {
            latency: Duration::from_millis(3),
            ..SiteOptions::default()
        },
    )
    .await;
    let mut sim_options = options();
    sim_options.page_delay = Duration::from_millis(10);
    let sim = simulator(sim_options, Vec::new()).await;
    let workspace = Workspace::new();
    workspace.write(".env", &format!("FRAPPE_SECRET={SECRET}\n"));
    workspace.configure(
        &[sim.url()],
        "page_size = 40",
        &format!("[sink.sqlite]\n{}", sink(&frappe, "")),
    );
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut kills_before_the_end = 0;
    for round in 0..rounds {
        sim.upload(punches(80, 100 + round));
        // xorshift: spread the kills over the first 0.25 s of the ~0.3 s a run takes
        // (a faster run on a quiet machine still ends after most of them).
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let delay = Duration::from_millis(5 + state % 250);
        let mut child = workspace.command(&[]).spawn().expect("spawn");
        tokio::time::sleep(delay).await;
        let _ = child.start_kill();
        let status = child.wait().await.expect("wait");
        if status.code().is_none() {
            kills_before_the_end += 1;
        }

        let clean = workspace.sync(&[], 0).await;
        assert_eq!(
            clean.summary()["problems"],
            serde_json::json!([]),
            "round {round}"
        );
        let ledger = workspace.ledger_ids().await;
        let stored = workspace.stored_punches().await;
        let stored_ids: BTreeSet<String> = stored.iter().map(|(id, ..)| id.clone()).collect();
        assert_eq!(
            stored.len(),
            stored_ids.len(),
            "round {round}: a row twice in SQLite"
        );
        assert_eq!(
            stored_ids, ledger,
            "round {round}: SQLite and the ledger disagree"
        );
        assert_eq!(
            duplicates(&frappe),
            0,
            "round {round}: a checkin twice in Frappe"
        );
        let taken = workspace
            .ledger_number(
                "SELECT COUNT(*) FROM deliveries d JOIN sinks s ON s.id = d.sink_id \
                 WHERE s.name = 'frappe' AND d.state IN (2, 3)",
            )
            .await;
        assert_eq!(frappe.checkins().len() as i64, taken, "round {round}");
        assert_eq!(
            workspace
                .ledger_number("SELECT COUNT(*) FROM deliveries WHERE state <= 1")
                .await,
            0,
            "round {round}: something still waits"
        );
        assert_eq!(
            workspace.cached_ids(),
            ledger,
            "round {round}: the JSON cache"
        );
        let audited = workspace.audited_ids();
        let audited_set: BTreeSet<String> = audited.iter().cloned().collect();
        if audited.len() != audited_set.len() {
            let mut seen = BTreeSet::new();
            let twice: Vec<&String> = audited.iter().filter(|id| !seen.insert(*id)).collect();
            let files: Vec<(String, usize)> = workspace
                .files_named("output", "logs_", ".json")
                .iter()
                .map(|file| {
                    let text = std::fs::read_to_string(file).unwrap_or_default();
                    let name = file.file_name().unwrap_or_default().to_string_lossy();
                    (
                        name.into_owned(),
                        twice.iter().filter(|id| text.contains(id.as_str())).count(),
                    )
                })
                .filter(|(_, count)| *count > 0)
                .collect();
            panic!(
                "round {round}: {} punch(es) audited twice, in {files:?}; output: {:?}",
                twice.len(),
                std::fs::read_dir(workspace.path("output"))
                    .map(|entries| entries
                        .flatten()
                        .map(|entry| entry.file_name())
                        .collect::<Vec<_>>())
                    .unwrap_or_default()
            );
        }
        assert!(audited_set.is_subset(&ledger), "round {round}");
    }
    eprintln!(
        "{rounds} rounds, {kills_before_the_end} SIGKILLs before the run ended; {} punches, \
         each once in SQLite and in Frappe",
        workspace.ledger_ids().await.len()
    );
    assert!(
        kills_before_the_end * 5 >= rounds * 4,
        "only {kills_before_the_end} of {rounds} kills landed before a run ended"
    );
}
