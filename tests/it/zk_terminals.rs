//! Terminals read directly over the ZK protocol: every record size over TCP and UDP,
//! with and without a comm key; large logs; a terminal that drops the connection
//! mid-read; broken records; incremental reads; clearing the log; the Python tool's
//! `.env`; and `devices`.

use crate::support::zk::{device, expected_rows, layout, profile, terminal};
use crate::support::{StoredRow, Workspace};
use iclock_sync::source::zk::TransportKind;
use iclock_sync::source::zk::codec::attendance::AttendanceLayout;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_size_is_read_over_tcp_and_udp_with_and_without_a_comm_key() {
    let mut terminals = Vec::new();
    let mut config = String::new();
    for (index, (size, kind, key)) in [40usize, 49, 16, 8]
        .into_iter()
        .flat_map(|size| [TransportKind::Tcp, TransportKind::Udp].map(|kind| (size, kind)))
        .flat_map(|(size, kind)| [0u32, 123_456].map(|key| (size, kind, key)))
        .enumerate()
    {
        let serial = format!("SN{size}{}{key}", kind.name());
        let sim = terminal(
            kind,
            profile(&serial, layout(size), key),
            300,
            0,
            index as u64,
        )
        .await;
        config.push_str(&device(
            &format!("Terminal {index}"),
            &sim,
            &format!("comm_key = {key}"),
        ));
        terminals.push((serial, sim));
    }
    // A terminal whose 8-byte records put the time at offset 3 (pyzk's layout).
    let serial = "SN8at3".to_owned();
    let sim = terminal(
        TransportKind::Tcp,
        profile(&serial, AttendanceLayout::Compact { time_at: 3 }, 0),
        300,
        0,
        99,
    )
    .await;
    config.push_str(&device("Terminal 8 at 3", &sim, ""));
    terminals.push((serial, sim));
    let workspace = Workspace::new();
    workspace.write("iclock-sync.toml", &config);

    let run = workspace.sync(&[], 0).await;

    let stored = workspace.stored_rows().await;
    for (index, (serial, sim)) in terminals.iter().enumerate() {
        assert_eq!(run.device(index)["delivered"], 300, "{serial}");
        let mine: Vec<StoredRow> = stored
            .iter()
            .filter(|row| &row.serial == serial)
            .cloned()
            .collect();
        assert_eq!(mine, expected_rows(sim, serial), "{serial}");
        let stats = sim.stats();
        assert!(
            stats.disables >= 1 && stats.enables >= 1,
            "{serial}: {stats:?}"
        );
        assert!(sim.is_enabled(), "{serial} left disabled");
        assert_eq!(stats.bad_checksums, 0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_comm_key_is_a_clear_error_naming_the_device() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNKEY", layout(40), 4242),
        50,
        0,
        1,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &device("Front desk", &sim, "comm_key = 4241"),
    );

    let run = workspace.run(&[]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    let output = run.all_output();
    assert!(
        output.contains(&format!(
            "device 'Front desk' ({}): comm key rejected",
            sim.address()
        )),
        "{output}"
    );
    assert!(
        output.contains("set comm_key in [[device]] 'Front desk'"),
        "{output}"
    );
    assert_eq!(sim.stats().rejected_keys, 1);
}

/// SHA-256 over the sorted rows: the "content checksum" of a log.
fn checksum(rows: &[StoredRow]) -> String {
    let mut hasher = Sha256::new();
    for row in rows {
        hasher.update(format!(
            "{}|{}|{}|{}|{}\n",
            row.serial, row.user_id, row.local_time, row.state, row.verify
        ));
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_punches_are_read_whole_over_tcp_and_udp() {
    let tcp = terminal(
        TransportKind::Tcp,
        profile("SNBIGTCP", layout(40), 0),
        100_000,
        0,
        7,
    )
    .await;
    let udp = terminal(
        TransportKind::Udp,
        profile("SNBIGUDP", layout(40), 0),
        100_000,
        0,
        8,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "{}{}",
            device("Big TCP", &tcp, ""),
            device("Big UDP", &udp, "")
        ),
    );

    let run = workspace.sync(&[], 0).await;

    let stored = workspace.stored_rows().await;
    for (index, (serial, sim)) in [("SNBIGTCP", &tcp), ("SNBIGUDP", &udp)]
        .into_iter()
        .enumerate()
    {
        let expected = expected_rows(sim, serial);
        assert_eq!(expected.len(), 100_000);
        let mine: Vec<StoredRow> = stored
            .iter()
            .filter(|row| row.serial == serial)
            .cloned()
            .collect();
        assert_eq!(run.device(index)["fetched"], 100_000);
        assert_eq!(mine.len(), 100_000, "{serial}");
        assert_eq!(checksum(&mine), checksum(&expected), "{serial}");
    }
    assert!(
        udp.stats().chunk_reads > 200,
        "UDP reads 16 KiB chunks: {:?}",
        udp.stats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_that_resets_mid_read_fails_alone_and_delivers_nothing_half_read() {
    let mut failing_profile = profile("SNRESET", layout(40), 0);
    failing_profile.fail_after_chunks = Some(2);
    let failing = terminal(TransportKind::Tcp, failing_profile, 20_000, 0, 3).await;
    let mut silent_profile = profile("SNSILENT", layout(40), 0);
    silent_profile.fail_after_chunks = Some(3);
    let silent = terminal(TransportKind::Udp, silent_profile, 5_000, 0, 4).await;
    let healthy = terminal(
        TransportKind::Tcp,
        profile("SNOK", layout(40), 0),
        1_000,
        0,
        5,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "{}{}{}",
            device("Resetting", &failing, ""),
            device("Silent", &silent, "timeout = \"1s\""),
            device("Healthy", &healthy, "")
        ),
    );

    let run = workspace.sync(&[], 1).await;

    let resetting = run.device(0);
    assert_eq!(resetting["error"]["kind"], "unreachable");
    let message = resetting["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("device 'Resetting'") && message.contains("mid-read"),
        "{message}"
    );
    assert_eq!(resetting["fetched"], 0);
    let quiet = run.device(1);
    assert!(
        quiet["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no answer within 1 s"),
        "{quiet}"
    );
    assert_eq!(run.device(2)["delivered"], 1_000);
    let stored = workspace.stored_rows().await;
    assert!(
        stored.iter().all(|row| row.serial == "SNOK"),
        "nothing from the failed reads is stored"
    );
    assert_eq!(stored.len(), 1_000);
    let cursors = workspace.read("cache/cursors.json");
    assert!(
        !cursors.contains("SNRESET") && !cursors.contains("SNSILENT"),
        "{cursors}"
    );
    assert!(
        failing.is_enabled() && silent.is_enabled() && healthy.is_enabled(),
        "every terminal enabled again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_records_are_quarantined_and_the_rest_delivered() {
    let pin = terminal(
        TransportKind::Tcp,
        profile("SNBAD40", layout(40), 0),
        500,
        6,
        11,
    )
    .await;
    let compact = terminal(
        TransportKind::Udp,
        profile("SNBAD8", layout(8), 0),
        500,
        6,
        12,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "{}{}",
            device("Pin", &pin, ""),
            device("Compact", &compact, "")
        ),
    );

    let run = workspace.sync(&[], 0).await;

    for index in 0..2 {
        let device = run.device(index);
        assert_eq!(device["fetched"], 506, "{device}");
        assert_eq!(device["quarantined"], 6, "{device}");
        assert_eq!(device["delivered"], 500, "{device}");
    }
    let quarantine = workspace.read("output/quarantine.jsonl");
    assert_eq!(quarantine.lines().count(), 12);
    for reason in [
        "is not a real date and time",
        "in the future",
        "empty user id",
        "user index 60000 is not in the terminal's user table",
    ] {
        assert!(quarantine.contains(reason), "{reason}: {quarantine}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_history_is_skipped_and_new_punches_are_read_next_cycle() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNINC", layout(40), 0),
        2_000,
        0,
        21,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write("iclock-sync.toml", &device("Incremental", &sim, ""));
    workspace.sync(&[], 0).await;

    let nothing = workspace.sync(&[], 0).await;
    assert_eq!(nothing.device(0)["fetched"], 0);

    sim.punch("1005", 0, 15);
    sim.punch("1006", 1, 1);
    let two = workspace.sync(&[], 0).await;
    assert_eq!(two.device(0)["fetched"], 2);
    assert_eq!(two.device(0)["delivered"], 2);
    assert_eq!(workspace.stored_rows().await, expected_rows(&sim, "SNINC"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_after_sync_clears_only_a_fully_delivered_log() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNCLEAR", layout(40), 0),
        800,
        0,
        31,
    )
    .await;
    let expected = expected_rows(&sim, "SNCLEAR");
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &device("Clearing", &sim, "clear_after_sync = true"),
    );

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["delivered"], 800);
    assert_eq!(
        run.device(0)["note"],
        "log cleared (800 punches, all delivered)"
    );
    assert_eq!(sim.records().len(), 0);
    assert_eq!(sim.stats().clears, 1);
    assert!(sim.is_enabled());
    assert_eq!(workspace.stored_rows().await, expected);

    // After the clear, new punches are read from the empty log's start.
    sim.punch("1010", 0, 1);
    let next = workspace.sync(&[], 0).await;
    assert_eq!(next.device(0)["delivered"], 1);
    let text = workspace.run(&[]).await;
    assert!(
        text.stdout.contains("Clearing: log cleared"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tools_env_reads_its_terminals_with_legacy_ids() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNLEGACY", layout(40), 0),
        120,
        0,
        41,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write(
        ".env",
        &format!(
            "DEVICE_IPS={}\nDEVICE_NAMES=Main office\nDEVICE_PORT={}\nDEVICE_TIMEOUT=5\n",
            sim.address().ip(),
            sim.address().port()
        ),
    );

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["name"], "Main office");
    assert_eq!(run.device(0)["delivered"], 120);
    let first = &sim.records()[0];
    let time = first.time.to_datetime().unwrap();
    let iclock_sync::source::zk::codec::attendance::Identity::Pin(pin) = &first.identity else {
        panic!("40-byte records carry the PIN")
    };
    let legacy = iclock_sync::punch::PunchId::legacy_md5(pin, time);
    assert!(workspace.cached_ids().contains(legacy.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_describes_each_terminal() {
    let tcp = terminal(
        TransportKind::Tcp,
        profile("SNDEV40", layout(40), 77),
        1_234,
        0,
        51,
    )
    .await;
    let udp = terminal(
        TransportKind::Udp,
        profile("SNDEV8", layout(8), 0),
        321,
        0,
        52,
    )
    .await;
    let workspace = Workspace::new();
    // The UDP terminal is configured with `auto`: TCP is refused, UDP answers.
    let auto = device("Old clock", &udp, "").replace("transport = \"udp\"", "transport = \"auto\"");
    workspace.write(
        "iclock-sync.toml",
        &format!("{}{auto}", device("Gate", &tcp, "comm_key = 77")),
    );

    let run = workspace.run(&["devices"]).await;

    assert_eq!(run.code, Some(0), "{}", run.all_output());
    let out = &run.stdout;
    for expected in [
        "Gate (zk, 127.0.0.1:",
        "credentials    ok",
        "transport      TCP",
        "serial         SNDEV40",
        "firmware       Ver 6.60",
        "platform       ZEM760_TFT",
        "punches        1,234 on the server",
        "users          60",
        "capacity       1234 of 200000 punches",
        "record size    40 bytes",
        "transport      UDP",
        "record size    8 bytes",
        "in step with this computer",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn since_reads_the_window_of_a_terminal_and_leaves_its_cursor_alone() {
    let sim = terminal(
        TransportKind::Tcp,
        profile("SNSINCE", layout(40), 0),
        3_000,
        0,
        61,
    )
    .await;
    let all = expected_rows(&sim, "SNSINCE");
    let workspace = Workspace::new();
    workspace.write("iclock-sync.toml", &device("Window", &sim, ""));
    let in_window = |boundary: chrono::NaiveDateTime| {
        let boundary = boundary.format("%Y-%m-%d %H:%M:%S").to_string();
        all.iter().filter(|row| row.local_time >= boundary).count() as u64
    };
    let before = iclock_sync::simulate::biotime::now_local() - chrono::Duration::days(2);

    let run = workspace.sync(&["--since", "2"], 0).await;

    let after = iclock_sync::simulate::biotime::now_local() - chrono::Duration::days(2);
    let delivered = run.device(0)["delivered"].as_u64().unwrap();
    assert!(delivered > 100 && delivered < 3_000, "{delivered}");
    assert!(
        (in_window(after)..=in_window(before)).contains(&delivered),
        "{delivered}"
    );
    assert!(
        !workspace.read("cache/cursors.json").contains("SNSINCE"),
        "the cursor was not moved"
    );

    let rest = workspace.sync(&[], 0).await;
    assert_eq!(
        rest.device(0)["delivered"].as_u64().unwrap(),
        3_000 - delivered
    );
    assert_eq!(workspace.stored_rows().await, all);
}

/// What `devices` says for the mistakes people make with terminals: a web server's
/// address given as a terminal, an address where nothing answers, and a clock that is
/// hours off because of a time zone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_says_what_is_wrong_and_how_to_fix_it() {
    let web = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_address = web.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(web, axum::Router::new().fallback(|| async { "BioTime" })).await
    });
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let closed_address = closed.local_addr().unwrap();
    drop(closed);
    let late = terminal(
        TransportKind::Tcp,
        profile("SNLATE", layout(40), 0),
        10,
        0,
        53,
    )
    .await;
    let mut connection = iclock_sync::source::zk::Connection::open(
        late.address(),
        TransportKind::Tcp,
        0,
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let five_hours_behind = chrono::Local::now().naive_local() - chrono::Duration::hours(5);
    connection.set_time(five_hours_behind).await.unwrap();
    connection.close().await;
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "[[device]]\nname = \"Web\"\nkind = \"zk\"\naddress = \"{web_address}\"\ntransport = \"tcp\"\ntimeout = \"3s\"\n\n\
             [[device]]\nname = \"Nothing\"\nkind = \"zk\"\naddress = \"{closed_address}\"\ntimeout = \"2s\"\n\n{}",
            device("Late", &late, "")
        ),
    );

    let run = workspace.run(&["devices"]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    let out = &run.stdout;
    assert!(!out.contains("REFUSED"), "{out}");
    assert!(
        out.contains("a web server answered (\"HTTP/1.1") && out.contains("use kind = \"biotime\""),
        "{out}"
    );
    assert!(
        out.contains("nothing answers there, over TCP") && out.contains("port 4370"),
        "{out}"
    );
    assert!(
        out.contains(
            "behind this computer — a whole number of hours usually means a wrong time zone"
        ),
        "{out}"
    );
}
