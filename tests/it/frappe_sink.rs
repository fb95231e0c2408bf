//! The Frappe sink against the simulated Frappe HR site (no real site can run here;
//! the simulator reproduces what docs/frappe.md records): punches from the BioTime
//! simulator become Employee Checkins, every kind of answer is handled per record, and
//! nothing is lost or sent twice.

use std::collections::BTreeSet;

use crate::support::frappe::{SECRET, employee_of, sink, site, start};
use crate::support::{Workspace, options, row, simulator, wall_time_ago};
use iclock_sync::simulate::biotime::{BiotimeSimulator, SimTransaction};
use iclock_sync::simulate::frappe::{ApiKey, Faults, SiteOptions};
use serde_json::Value;

/// A workspace whose `.env` holds the API secret, as a user would keep it.
fn workspace() -> Workspace {
    let workspace = Workspace::new();
    workspace.write(".env", &format!("FRAPPE_SECRET={SECRET}\n"));
    workspace
}

/// A BioTime server to which `rows` were uploaded (each gets its transaction id).
async fn uploaded(rows: Vec<SimTransaction>) -> BiotimeSimulator {
    let sim = simulator(options(), Vec::new()).await;
    sim.upload(rows);
    sim
}

fn naive(text: &str) -> bool {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").is_ok() && text.len() == 19
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mapped_unmapped_inactive_and_left_employees_are_each_handled_in_one_batch() {
    let frappe = start(site(), SiteOptions::default()).await;
    let at = "2026-03-02 08:30:00";
    let sim = uploaded(vec![
        row("1001", at, 0),                    // Alice IN
        row("1001", at, 1),                    // Alice OUT, same second
        row("1001", "2026-03-02 10:15:00", 2), // break-out: OUT by default
        row("1003", at, 0),                    // Carol: Inactive
        row("1004", at, 0),                    // Dave: Left, still accepted
        row("9999", at, 0),                    // nobody
    ])
    .await;
    let workspace = workspace();
    // Terminals in Kolkata, the site in Dubai: times are sent in the site's zone.
    workspace.configure(
        &[sim.url()],
        "",
        &sink(&frappe, "timezone = \"Asia/Dubai\""),
    );
    let text = workspace.read("iclock-sync.toml");
    workspace.write(
        "iclock-sync.toml",
        &text.replace("timezone = \"UTC\"", "timezone = \"Asia/Kolkata\""),
    );

    let run = workspace.sync(&[], 1).await;

    let summary = run.summary();
    let frappe_report = &summary["sinks"][0];
    assert_eq!(frappe_report["delivered"], 4, "{summary}");
    assert_eq!(frappe_report["rejected"], 1);
    assert_eq!(frappe_report["unmapped"], 1);
    assert_eq!(frappe_report["unmapped_users"], serde_json::json!(["9999"]));
    let created: BTreeSet<(String, String, String)> = frappe
        .checkins()
        .into_iter()
        .map(|c| (c.employee, c.time.to_string(), c.log_type))
        .collect();
    let dubai = "2026-03-02 07:00:00"; // 08:30 in Kolkata
    let expected: BTreeSet<(String, String, String)> = [
        (employee_of("1001"), dubai, "IN"),
        (employee_of("1001"), dubai, "OUT"),
        (employee_of("1001"), "2026-03-02 08:45:00", "OUT"),
        (employee_of("1004"), dubai, "IN"),
    ]
    .into_iter()
    .map(|(e, t, l)| (e, t.to_owned(), l.to_owned()))
    .collect();
    assert_eq!(
        created, expected,
        "IN and OUT in the same second are both created"
    );
    assert!(
        frappe
            .checkins()
            .iter()
            .all(|c| c.device_id.as_deref() == Some("Main gate"))
    );
    let stats = frappe.stats();
    assert!(
        stats.timestamps.iter().all(|t| naive(t)),
        "only naive wall times are sent: {:?}",
        stats.timestamps
    );
    let quarantine = workspace.read("output/quarantine.jsonl");
    assert!(
        quarantine.contains("unmapped in sink frappe: no Employee has attendance_device_id = 9999"),
        "{quarantine}"
    );
    assert!(quarantine.contains("is Inactive in Frappe"), "{quarantine}");
    let text = workspace.run(&["--dry-run"]).await;
    assert_eq!(text.code, Some(0));

    // Nothing new: nothing is sent.
    let again = workspace.sync(&[], 0).await;
    assert_eq!(again.device(0)["new"], 0);
    assert_eq!(frappe.stats().creates, stats.creates);

    // The cache and cursor lost: everything is read again, and Frappe's checkins are
    // found — nothing is created twice.
    std::fs::remove_dir_all(workspace.path("cache")).unwrap();
    let rebuilt = workspace.sync(&[], 1).await;
    assert_eq!(rebuilt.summary()["sinks"][0]["already"], 4);
    assert_eq!(rebuilt.summary()["sinks"][0]["delivered"], 0);
    assert_eq!(frappe.checkins().len(), 4);
    assert_eq!(
        frappe.stats().creates,
        stats.creates + 1,
        "existing checkins are found by one list request; only Carol's refused punch is sent again"
    );
    assert_eq!(frappe.stats().same_punch_overlaps, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_summary_names_unmapped_pins_for_people() {
    let frappe = start(site(), SiteOptions::default()).await;
    let sim = uploaded(vec![
        row("4242", "2026-03-02 08:30:00", 0),
        row("1001", "2026-03-02 08:31:00", 0),
    ])
    .await;
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", &sink(&frappe, ""));

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    assert!(run.stdout.contains("Unmapped"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "frappe: no employee for PIN(s) 4242 — map them in {}",
            frappe.url()
        )),
        "{}",
        run.stdout
    );
    assert!(
        !run.all_output().contains(SECRET),
        "the API secret never appears"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_500_on_one_record_does_not_stop_the_others() {
    let frappe = start(site(), SiteOptions::default()).await;
    frappe.set_faults(Faults {
        crash_for_pin: Some("1006".into()),
        ..Faults::default()
    });
    let sim = uploaded(vec![
        row("1001", "2026-03-02 08:00:00", 0),
        row("1006", "2026-03-02 08:01:00", 0),
        row("1007", "2026-03-02 08:02:00", 0),
        row("1005", "2026-03-02 08:03:00", 0),
    ])
    .await;
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", &sink(&frappe, ""));

    let run = workspace.sync(&[], 1).await;

    assert_eq!(run.summary()["sinks"][0]["delivered"], 3);
    assert_eq!(run.summary()["sinks"][0]["rejected"], 1);
    assert_eq!(frappe.checkins().len(), 3);
    let quarantine = workspace.read("output/quarantine.jsonl");
    assert!(quarantine.contains("HTTP 500 TypeError"), "{quarantine}");
    assert_eq!(
        workspace.cached_ids().len(),
        3,
        "the refused punch is not marked delivered"
    );
}

/// A production site hides tracebacks: a lock wait timeout, a deadlock and a lost
/// database connection answer 500 with nothing but their `exc_type`. Each passes, so
/// the punches are retried and delivered, not refused for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_timeouts_and_deadlocks_are_retried_when_the_site_hides_tracebacks() {
    let frappe = start(
        site(),
        SiteOptions {
            tracebacks: false,
            ..SiteOptions::default()
        },
    )
    .await;
    frappe.set_faults(Faults {
        lock_timeouts: 2,
        deadlocks: 1,
        lost_connections: 1,
        ..Faults::default()
    });
    let sim = uploaded(vec![
        row("1001", "2026-03-02 08:00:00", 0),
        row("1002", "2026-03-02 08:01:00", 0),
        row("1006", "2026-03-02 08:02:00", 0),
        row("1007", "2026-03-02 08:03:00", 0),
    ])
    .await;
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", &sink(&frappe, "concurrency = 1"));

    let run = workspace.sync(&[], 0).await;

    let report = &run.summary()["sinks"][0];
    assert_eq!(report["delivered"], 4, "{report}");
    assert_eq!(report["rejected"], 0, "{report}");
    assert_eq!(frappe.checkins().len(), 4);
    assert!(frappe.stats().creates >= 8, "every failure was retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_or_a_missing_role_is_a_clear_error_before_anything_is_read() {
    let frappe = start(
        site(),
        SiteOptions {
            keys: vec![
                ApiKey::new("sync-key", SECRET, "sync@example.com", &["HR User"]),
                ApiKey::new(
                    "norole-key",
                    "norole-secret",
                    "norole@example.com",
                    &["Employee"],
                ),
            ],
            ..SiteOptions::default()
        },
    )
    .await;
    let sim = uploaded(vec![row("1001", "2026-03-02 08:00:00", 0)]).await;
    let workspace = Workspace::new();
    workspace.write(".env", "FRAPPE_SECRET=not-the-secret\n");
    workspace.configure(&[sim.url()], "", &sink(&frappe, ""));

    let wrong = workspace.run(&[]).await;

    assert_eq!(wrong.code, Some(2), "{}", wrong.all_output());
    let message = wrong.all_output();
    assert!(
        message.contains("refused the API key (401 AuthenticationError)"),
        "{message}"
    );
    assert!(
        message.contains("check api_key and api_secret in [sink.frappe]"),
        "{message}"
    );
    assert!(!message.contains("not-the-secret"), "{message}");
    assert_eq!(sim.stats().logins, 0, "no device was read");
    assert!(
        workspace.cached_ids().is_empty(),
        "nothing marked delivered"
    );

    workspace.write(
        "iclock-sync.toml",
        &workspace
            .read("iclock-sync.toml")
            .replace("sync-key", "norole-key")
            .replace("${FRAPPE_SECRET}", "norole-secret"),
    );
    let unprivileged = workspace.run(&[]).await;
    assert_eq!(unprivileged.code, Some(2), "{}", unprivileged.all_output());
    let message = unprivileged.all_output();
    assert!(
        message.contains("does not have doctype access via role permission for document Employee"),
        "{message}"
    );
    assert!(
        message.contains("give the API user norole@example.com the HR User role"),
        "{message}"
    );
    assert_eq!(frappe.checkins().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_revoked_mid_run_stops_the_sink_and_only_what_was_created_counts() {
    let frappe = start(site(), SiteOptions::default()).await;
    frappe.set_faults(Faults {
        revoke_after_creates: Some(5),
        ..Faults::default()
    });
    let rows: Vec<_> = (0..20)
        .map(|minute| {
            row(
                "1001",
                &format!("2026-03-02 09:{minute:02}:00"),
                (minute % 2) as u32,
            )
        })
        .collect();
    let sim = uploaded(rows).await;
    let workspace = workspace();
    workspace.configure(
        &[sim.url()],
        "",
        &sink(&frappe, "batch_size = 1\nconcurrency = 1"),
    );

    let run = workspace.sync(&[], 1).await;

    let report = &run.summary()["sinks"][0];
    assert_eq!(report["delivered"], 5, "{report}");
    assert_eq!(report["failed"], 15);
    let failure = report["last_failure"].as_str().unwrap();
    assert!(failure.contains("refused the API key (401"), "{failure}");
    assert_eq!(
        workspace.cached_ids().len(),
        5,
        "only the created checkins are marked delivered"
    );
    assert_eq!(
        frappe.stats().creates,
        5,
        "the sink stopped at the first refusal"
    );

    frappe.set_faults(Faults::default());
    let next = workspace.sync(&[], 0).await;
    assert_eq!(next.summary()["sinks"][0]["delivered"], 15);
    assert_eq!(
        frappe.checkins().len(),
        20,
        "nothing missing, nothing twice"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cursor_does_not_move_past_a_punch_that_failed_transiently() {
    let frappe = start(site(), SiteOptions::default()).await;
    frappe.set_faults(Faults {
        unavailable_for_pin: Some("1006".into()),
        ..Faults::default()
    });
    // Frank's punch was uploaded three hours before the others: far outside the
    // 30-minute overlap, so only a cursor that stopped before it reads it again.
    let mut early = row("1006", &wall_time_ago(chrono::Duration::hours(3)), 0);
    early.upload_time = iclock_sync::simulate::biotime::now_local() - chrono::Duration::hours(3);
    let sim = uploaded(vec![
        early,
        row("1001", &wall_time_ago(chrono::Duration::minutes(5)), 0),
        row("1007", &wall_time_ago(chrono::Duration::minutes(4)), 0),
    ])
    .await;
    let workspace = workspace();
    workspace.configure(
        &[sim.url()],
        "",
        &sink(&frappe, "batch_size = 1\nretry_for = \"1s\""),
    );

    let failed = workspace.sync(&[], 1).await;

    assert_eq!(failed.summary()["sinks"][0]["failed"], 1);
    assert!(
        failed.summary()["sinks"][0]["last_failure"]
            .as_str()
            .unwrap()
            .contains("answered HTTP 503"),
        "{}",
        failed.summary()
    );
    assert_eq!(frappe.checkins().len(), 2);

    frappe.set_faults(Faults::default());
    let next = workspace.sync(&[], 0).await;
    assert_eq!(
        next.summary()["sinks"][0]["delivered"],
        1,
        "{}",
        next.summary()
    );
    let employees: BTreeSet<String> = frappe.checkins().into_iter().map(|c| c.employee).collect();
    assert!(employees.contains(&employee_of("1006")));
    assert_eq!(frappe.checkins().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_run_concurrently_but_never_two_for_one_employee_and_time() {
    let frappe = start(
        site(),
        SiteOptions {
            latency: std::time::Duration::from_millis(20),
            ..SiteOptions::default()
        },
    )
    .await;
    let mut rows = Vec::new();
    for minute in 0..30 {
        for pin in ["1001", "1004", "1006", "1007"] {
            let time = format!("2026-03-02 10:{minute:02}:00");
            rows.push(row(pin, &time, 0));
            rows.push(row(pin, &time, 1));
            // The same punch from a second terminal: Frappe's rule says it is a duplicate.
            let mut twin = row(pin, &time, 1);
            twin.terminal_sn = "SECONDGATE01".into();
            rows.push(twin);
        }
    }
    let sim = uploaded(rows).await;
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", &sink(&frappe, "concurrency = 8"));

    let run = workspace.sync(&[], 0).await;

    let report = &run.summary()["sinks"][0];
    assert_eq!(report["delivered"], 240, "{report}");
    assert_eq!(
        report["already"], 120,
        "the second terminal's copies are Frappe duplicates"
    );
    let stats = frappe.stats();
    assert_eq!(stats.same_punch_overlaps, 0);
    assert!(
        stats.max_in_flight > 1,
        "requests overlap: {}",
        stats.max_in_flight
    );
    assert!(stats.max_in_flight <= 8);
    assert_eq!(frappe.checkins().len(), 240);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erpnext_13_site_and_a_multi_site_bench_are_both_reached() {
    let legacy = start(
        site(),
        SiteOptions {
            legacy_erpnext: true,
            site_host: Some("hr.example.com".into()),
            ..SiteOptions::default()
        },
    )
    .await;
    let sim = uploaded(vec![row("1001", "2026-03-02 08:00:00", 0)]).await;
    let workspace = workspace();
    // One by one (batch_size = 1): the method path is what is tested here.
    workspace.configure(&[sim.url()], "", &sink(&legacy, "batch_size = 1\n"));

    let without_host = workspace.run(&[]).await;
    assert_eq!(without_host.code, Some(2), "{}", without_host.all_output());
    assert!(
        without_host
            .all_output()
            .contains("(and host, for a bench that serves several sites)"),
        "{}",
        without_host.all_output()
    );

    workspace.configure(
        &[sim.url()],
        "",
        &sink(&legacy, "batch_size = 1\nhost = \"hr.example.com\""),
    );
    let run = workspace.sync(&[], 0).await;
    assert_eq!(run.summary()["sinks"][0]["delivered"], 1);
    assert_eq!(legacy.checkins().len(), 1);
    let stats = legacy.stats();
    assert_eq!(
        stats.legacy_calls, 1,
        "the erpnext. path was found and used"
    );
    assert!(stats.hosts.contains("hr.example.com"), "{:?}", stats.hosts);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_types_device_ids_and_skips_follow_the_configuration() {
    let frappe = start(site(), SiteOptions::default()).await;
    let sim = uploaded(vec![
        row("1001", "2026-03-02 08:00:00", 0),
        row("1001", "2026-03-02 12:00:00", 2), // break-out: skipped
        row("1001", "2026-03-02 13:00:00", 3), // break-in: no log type
        row("1001", "2026-03-02 17:00:00", 5), // overtime-out: OUT
    ])
    .await;
    let workspace = workspace();
    workspace.configure(
        &[sim.url()],
        "latitude = 4.1755\nlongitude = 73.5093",
        &sink(
            &frappe,
            "log_types = { 2 = \"skip\", 3 = \"\" }\ndevice_id = \"{device}/{serial}\"\nskip_auto_attendance = true",
        ),
    );

    let run = workspace.sync(&[], 0).await;

    let report = &run.summary()["sinks"][0];
    assert_eq!(
        (report["delivered"].as_u64(), report["skipped"].as_u64()),
        (Some(3), Some(1))
    );
    let mut checkins = frappe.checkins();
    checkins.sort_by_key(|c| c.time);
    let log_types: Vec<&str> = checkins.iter().map(|c| c.log_type.as_str()).collect();
    assert_eq!(log_types, vec!["IN", "", "OUT"]);
    let first = &checkins[0];
    assert_eq!(first.device_id.as_deref(), Some("Device 1/CLGY211460005"));
    assert_eq!(first.skip_auto_attendance, 1);
    assert_eq!((first.latitude, first.longitude), (4.1755, 73.5093));
    assert_eq!(
        workspace.cached_ids().len(),
        4,
        "a skipped punch is done with"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shift_types_follow_their_devices_once_all_have_delivered() {
    let frappe = start(site(), SiteOptions::default()).await;
    let sim = uploaded(vec![row("1001", "2026-03-02 08:00:00", 0)]).await;
    let workspace = workspace();
    let shift_types = "[[sink.frappe.shift_type]]\nname = \"Day Shift\"\ndevices = [\"Device 1\"]\n\n[[sink.frappe.shift_type]]\nname = \"Night Shift\"\ndevices = [\"Device 1\"]\n\n[[sink.frappe.shift_type]]\nname = \"Both\"\ndevices = [\"Device 1\", \"Device 2\"]\n";
    workspace.configure(
        &[sim.url(), "http://127.0.0.1:9".into()],
        "timeout = \"2s\"",
        &format!("{}{shift_types}", sink(&frappe, "")),
    );
    let before = chrono::Local::now().naive_local() - chrono::Duration::seconds(1);

    let run = workspace.sync(&[], 1).await;

    let day = frappe.shift_types()["Day Shift"]
        .last_sync_of_checkin
        .clone()
        .expect("set");
    assert!(naive(&day), "{day}");
    let set = chrono::NaiveDateTime::parse_from_str(&day, "%Y-%m-%d %H:%M:%S").unwrap();
    assert!(
        set >= before && set <= chrono::Local::now().naive_local(),
        "{day}"
    );
    let notes: Vec<String> = run.summary()["sinks"][0]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|note| note.as_str().unwrap().to_owned())
        .collect();
    assert!(
        notes
            .iter()
            .any(|n| n.starts_with("Shift Type 'Day Shift': checkins complete up to")),
        "{notes:?}"
    );
    assert!(
        notes.iter().any(|n| n
            .contains("Shift Type 'Night Shift': cannot set last_sync_of_checkin")
            && n.contains("check the name")),
        "{notes:?}"
    );
    assert!(
        !notes.iter().any(|n| n.contains("'Both'")),
        "a Shift Type waits for all of its devices: {notes:?}"
    );
    let updates = frappe.stats().shift_type_updates;
    assert_eq!(updates.len(), 1, "{updates:?}");
    let _: Value = run.summary();
}

/// The site's Shift Type is already complete further on (set by an earlier run, or a
/// second install on the same site): it is read first and never set back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shift_types_watermark_never_moves_back() {
    let frappe = start(site(), SiteOptions::default()).await;
    frappe.edit(|site| {
        site.shift_types
            .get_mut("Day Shift")
            .expect("the test company has a Day Shift")
            .last_sync_of_checkin = Some("2099-12-31 23:00:00.000000".into());
    });
    let sim = uploaded(vec![row("1001", "2026-03-02 08:00:00", 0)]).await;
    let workspace = workspace();
    workspace.configure(
        &[sim.url()],
        "",
        &format!(
            "{}[[sink.frappe.shift_type]]\nname = \"Day Shift\"\ndevices = [\"Device 1\"]\n",
            sink(&frappe, "")
        ),
    );

    let run = workspace.sync(&[], 0).await;

    assert_eq!(
        frappe.shift_types()["Day Shift"]
            .last_sync_of_checkin
            .as_deref(),
        Some("2099-12-31 23:00:00.000000")
    );
    assert!(frappe.stats().shift_type_updates.is_empty());
    let notes = run.summary()["sinks"][0]["notes"].to_string();
    assert!(
        notes.contains("already has checkins complete up to 2099-12-31 23:00:00; left as it is"),
        "{notes}"
    );
}

/// Punches of active employees go to Frappe in batches through `insert_many`; a batch
/// Frappe refuses as a whole (here: another writer created one of its checkins first)
/// is sent again one by one, each judged on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkins_go_in_batches_and_a_refused_batch_is_sent_one_by_one() {
    let frappe = start(
        iclock_sync::simulate::frappe::company(300),
        SiteOptions::default(),
    )
    .await;
    frappe.edit(|site| {
        for employee in &mut site.employees {
            employee.status = "Active".into();
        }
    });
    let sim = simulator(options(), crate::support::punches(250, 12)).await;
    let workspace = workspace();
    workspace.configure(&[sim.url()], "", &sink(&frappe, ""));

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.summary()["sinks"][0]["delivered"], 250);
    let stats = frappe.stats();
    assert_eq!(stats.bulk_requests, 3, "batches of 100, 100 and 50");
    assert_eq!(stats.method_calls, 0);
    let checkins = frappe.checkins();
    assert_eq!(checkins.len(), 250);
    assert!(checkins.iter().all(|c| !c.employee_name.is_empty()));

    let now = wall_time_ago(chrono::Duration::minutes(1));
    let later: Vec<SimTransaction> = (0..10)
        .map(|index| row(&(1010 + index).to_string(), &now, 0))
        .collect();
    sim.upload(later);
    frappe.set_faults(Faults {
        raced_bulk_inserts: 1,
        ..Faults::default()
    });

    let next = workspace.sync(&[], 0).await;

    let report = &next.summary()["sinks"][0];
    assert_eq!(report["delivered"], 9, "{report}");
    assert_eq!(report["already"], 1, "{report}");
    let stats = frappe.stats();
    assert_eq!(stats.bulk_requests, 4);
    assert_eq!(stats.method_calls, 10, "the refused batch, one by one");
    assert_eq!(frappe.checkins().len(), 260, "nothing twice");
}
