//! The binary as a user meets it: configuration mistakes, `.env`-only setups,
//! `--loop` stopped with Ctrl-C, `devices`, and the demo.

use std::time::Duration;

use crate::support::{
    Workspace, interrupt, options, punches, row, send_signal, simulator, wait_for_pages,
    wall_time_ago,
};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_mistakes_name_the_file_the_key_and_the_fix() {
    let workspace = Workspace::new();

    let missing = workspace.run(&[]).await;
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("iclock-sync.toml: not found"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("iclock-sync demo"),
        "{}",
        missing.stderr
    );

    workspace.configure(&["http://127.0.0.1:9".into()], "passwrd = \"x\"", "");
    let typo = workspace.run(&[]).await;
    assert_eq!(typo.code, Some(2));
    assert!(
        typo.stderr.contains(
            "iclock-sync.toml line 9: [[device]] 'Device 1' key `passwrd`: `passwrd` is not a key here — did you mean `password`?"
        ),
        "{}",
        typo.stderr
    );

    workspace.write(
        "iclock-sync.toml",
        "[[device]]\nname = \"Gate\"\nkind = \"biotime\"\nurl = \"http://x\"\nusername = \"u\"\npassword = \"${GATE_PASSWORD}\"\n",
    );
    let unset = workspace.run(&[]).await;
    assert_eq!(unset.code, Some(2));
    assert!(
        unset.stderr.contains("'Gate' key `password`"),
        "{}",
        unset.stderr
    );
    assert!(
        unset.stderr.contains("GATE_PASSWORD is not set"),
        "{}",
        unset.stderr
    );

    let elsewhere = workspace.run(&["--config", "nope.toml"]).await;
    assert_eq!(elsewhere.code, Some(2));
    assert!(
        elsewhere.stderr.contains("nope.toml: file not found"),
        "{}",
        elsewhere.stderr
    );

    let json = workspace.run(&["--json", "--config", "nope.toml"]).await;
    assert_eq!(json.summary()["exit_code"], 2);

    // As with python-dotenv, a .env line that cannot be read is skipped with a warning.
    std::fs::remove_file(workspace.path("iclock-sync.toml")).unwrap();
    workspace.write(".env", "BIOTIME_URL http://x\n");
    let dotenv = workspace.run(&[]).await;
    assert_eq!(dotenv.code, Some(2));
    assert!(
        dotenv
            .stderr
            .contains(".env line 1: expected '=' after BIOTIME_URL; the line is skipped"),
        "{}",
        dotenv.stderr
    );
    assert!(
        dotenv
            .stderr
            .contains("neither BIOTIME_URL nor DEVICE_IPS is set"),
        "{}",
        dotenv.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn help_and_version_need_no_configuration() {
    let workspace = Workspace::new();
    let help = workspace.run(&["--help"]).await;
    assert_eq!(help.code, Some(0));
    for text in [
        "--dry-run",
        "--since",
        "--loop",
        "build-cache",
        "devices",
        "demo",
        "Exit codes",
    ] {
        assert!(
            help.stdout.contains(text),
            "{text} missing from --help:\n{}",
            help.stdout
        );
    }
    let version = workspace.run(&["--version"]).await;
    assert!(
        version.stdout.starts_with("iclock-sync "),
        "{}",
        version.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_biotime_server_can_be_configured_in_dot_env_alone() {
    let sim = simulator(options(), punches(30, 41)).await;
    let workspace = Workspace::new();
    workspace.write(
        ".env",
        &format!("BIOTIME_URL={}\nBIOTIME_USERNAME=admin\nBIOTIME_PASSWORD=admin\nBIOTIME_TIMEZONE=Asia/Kolkata\n", sim.url()),
    );
    let run = workspace.sync(&[], 0).await;
    assert_eq!(run.device(0)["name"], "BioTime");
    assert_eq!(run.device(0)["delivered"], 30);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_runs_cycle_after_cycle_and_ctrl_c_exits_zero() {
    let sim = simulator(options(), punches(100, 42)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    let mut child = workspace
        .command(&["--json", "--loop", "1s"])
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let first: serde_json::Value =
        serde_json::from_str(&lines.next_line().await.unwrap().unwrap()).unwrap();
    assert_eq!(first["devices"][0]["delivered"], 100);
    let now = wall_time_ago(chrono::Duration::zero());
    sim.upload(vec![row("8001", &now, 0)]);
    let second: serde_json::Value = serde_json::from_str(
        &tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a second cycle within 10 s")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(second["devices"][0]["delivered"], 1);

    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(workspace.stored_punches().await.len(), 101);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_loop_each_device_is_read_on_its_own_interval() {
    let often = simulator(options(), punches(10, 45)).await;
    let rarely = simulator(options(), punches(10, 46)).await;
    let workspace = Workspace::new();
    workspace.configure(&[often.url(), rarely.url()], "", "");
    let config = workspace.read("iclock-sync.toml");
    // The second device: once an hour.
    let at = config.rfind("[[device]]").unwrap();
    let (first, second) = config.split_at(at);
    workspace.write(
        "iclock-sync.toml",
        &format!("{first}{second}interval = \"1h\"\n"),
    );
    let mut child = workspace
        .command(&["--json", "--loop", "1s"])
        .spawn()
        .expect("spawn");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();

    let mut cycles = Vec::new();
    for _ in 0..3 {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("a cycle within 10 s")
            .unwrap()
            .unwrap();
        let summary: serde_json::Value = serde_json::from_str(&line).unwrap();
        let names: Vec<String> = summary["devices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|device| device["name"].as_str().unwrap().to_owned())
            .collect();
        cycles.push(names);
    }
    interrupt(&child);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits after Ctrl-C")
        .unwrap();

    assert_eq!(status.code(), Some(0));
    assert_eq!(
        cycles[0],
        vec!["Device 1", "Device 2"],
        "everything is read at the start"
    );
    assert_eq!(cycles[1], vec!["Device 1"]);
    assert_eq!(cycles[2], vec!["Device 1"]);
    assert_eq!(rarely.stats().transaction_pages, 1);
    assert!(often.stats().transaction_pages >= 3);
}

/// Ctrl-C, or SIGTERM (what systemd sends to stop a service), mid-cycle: what was read
/// is delivered and recorded, the process exits 0, and the next run completes the set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_or_sigterm_mid_cycle_keeps_what_was_read_and_the_next_run_completes() {
    for signal in ["INT", "TERM"] {
        let mut sim_options = options();
        sim_options.page_delay = Duration::from_millis(100);
        let sim = simulator(sim_options, punches(3000, 44)).await;
        let workspace = Workspace::new();
        workspace.configure(&[sim.url()], "page_size = 100", "");
        let child = workspace.command(&["--json"]).spawn().expect("spawn");
        wait_for_pages(&sim, 6).await;

        send_signal(&child, signal);
        let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .expect("stops promptly")
            .unwrap();

        assert_eq!(output.status.code(), Some(0), "SIG{signal}");
        let summary: serde_json::Value =
            serde_json::from_str(String::from_utf8_lossy(&output.stdout).trim()).unwrap();
        assert_eq!(summary["interrupted"], true, "SIG{signal}");
        let delivered = summary["devices"][0]["delivered"].as_u64().unwrap();
        assert!(
            delivered > 0 && delivered < 3000,
            "SIG{signal}: {delivered}"
        );
        assert_eq!(workspace.stored_punches().await.len() as u64, delivered);

        let rest = workspace.sync(&[], 0).await;
        assert_eq!(
            rest.device(0)["delivered"].as_u64().unwrap(),
            3000 - delivered
        );
        assert_eq!(workspace.stored_punches().await.len(), 3000);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_reports_reachability_credentials_counts_and_clock() {
    let good = simulator(options(), punches(250, 43)).await;
    let mut locked = options();
    locked.password = "other".into();
    let refusing = simulator(locked, vec![]).await;
    let workspace = Workspace::new();
    workspace.configure(&[good.url(), refusing.url()], "", "");

    let run = workspace.run(&["devices"]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    let out = &run.stdout;
    assert!(
        out.contains("Device 1 (biotime, http://127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("reachable      yes"), "{out}");
    assert!(out.contains("credentials    ok"), "{out}");
    assert!(out.contains("punches        250 on the server"), "{out}");
    assert!(out.contains("clock          "), "{out}");
    assert!(out.contains("terminals      3"), "{out}");
    assert!(out.contains("credentials    REFUSED"), "{out}");
    assert!(out.contains("wrong username/password"), "{out}");

    let json = workspace.run(&["--json", "devices"]).await;
    let devices = &json.summary()["devices"];
    assert_eq!(devices[0]["punches"], 250);
    assert_eq!(devices[0]["auth_ok"], true);
    assert!(devices[0]["clock_drift_seconds"].as_i64().unwrap().abs() <= 2);
    assert_eq!(devices[1]["auth_ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_delivers_once_and_the_second_demo_finds_nothing_new() {
    let workspace = Workspace::new();
    let args = ["--json", "demo", "--employees", "40", "--days", "2"];
    let device = |run: &crate::support::Run, name: &str| {
        run.summary()["devices"]
            .as_array()
            .unwrap()
            .iter()
            .find(|device| device["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no device {name}"))
    };
    let first = workspace.run(&args).await;
    assert_eq!(first.code, Some(0), "{}", first.all_output());
    let biotime = device(&first, "Demo BioTime");
    assert!(biotime["delivered"].as_u64().unwrap() > 100, "{biotime}");
    assert_eq!(biotime["quarantined"], 5);
    let terminal = device(&first, "Demo terminal");
    assert_eq!(terminal["kind"], "zk");
    assert_eq!(terminal["delivered"], 160);
    for gate in ["Demo gate 1", "Demo gate 2"] {
        let pushed = device(&first, gate);
        assert_eq!(pushed["kind"], "adms", "{pushed}");
        assert_eq!(pushed["delivered"], 60, "{pushed}");
    }

    let second = workspace.run(&args).await;
    assert_eq!(second.code, Some(0), "{}", second.all_output());
    for name in ["Demo BioTime", "Demo terminal"] {
        assert_eq!(device(&second, name)["new"], 0, "{name}");
        assert_eq!(device(&second, name)["delivered"], 0, "{name}");
    }
    let delivered: u64 = second.summary()["sinks"][0]["delivered"].as_u64().unwrap();
    assert_eq!(
        delivered, 0,
        "the pushed punches, sent again, are already there"
    );
    assert!(workspace.path("output/demo/attendance.db").exists());

    let text = workspace.run(&args[1..]).await;
    assert!(text.stdout.contains("Sync finished"), "{}", text.stdout);
    assert!(
        text.stdout.contains("output/demo/attendance.db"),
        "{}",
        text.stdout
    );
}

/// `cd /elsewhere && iclock-sync --config /srv/school/iclock-sync.toml`: the cache, the
/// output, the database and `.env` are the ones beside the file, not new ones in the
/// working directory (which once delivered everything again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relative_paths_in_a_config_file_start_from_its_folder() {
    let sim = simulator(options(), punches(50, 41)).await;
    let workspace = Workspace::new();
    workspace.configure(&[sim.url()], "", "");
    let text = workspace
        .read("iclock-sync.toml")
        .replace("password = \"admin\"", "password = \"${SCHOOL_PASSWORD}\"");
    workspace.write("school/iclock-sync.toml", &text);
    workspace.write("school/.env", "SCHOOL_PASSWORD=admin\n");
    std::fs::remove_file(workspace.path("iclock-sync.toml")).unwrap();
    let config = workspace.path("school/iclock-sync.toml");
    let config = config.to_str().unwrap();

    for elsewhere in ["first", "second"] {
        std::fs::create_dir_all(workspace.path(elsewhere)).unwrap();
        let mut command = workspace.command(&["--json", "--config", config]);
        command.current_dir(workspace.path(elsewhere));
        let output = command.output().await.unwrap();
        let run = crate::support::Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        };
        assert_eq!(run.code, Some(0), "{}", run.all_output());
        let expected = if elsewhere == "first" { 50 } else { 0 };
        assert_eq!(run.device(0)["delivered"], expected, "run from {elsewhere}");
        assert_eq!(
            std::fs::read_dir(workspace.path(elsewhere))
                .unwrap()
                .count(),
            0,
            "nothing is created in the working directory"
        );
    }
    assert!(workspace.path("school/output/attendance.db").exists());
    assert!(
        workspace
            .path("school/cache/uploaded_ids_cache.json")
            .exists()
    );
}

/// A school with only terminals: `init --zk ADDRESS` writes a configuration that works
/// as written (no BioTime password asked for), and is not overwritten by accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_a_configuration_for_the_terminals_a_school_has() {
    use crate::support::zk::{layout, profile, terminal};
    let sim = terminal(
        iclock_sync::source::zk::TransportKind::Tcp,
        profile("SNINIT", layout(40), 0),
        25,
        0,
        47,
    )
    .await;
    let workspace = Workspace::new();
    let address = sim.address().to_string();

    let init = workspace.run(&["init", "--zk", &address]).await;
    assert_eq!(init.code, Some(0), "{}", init.all_output());
    assert!(
        init.stdout.contains("iclock-sync devices"),
        "{}",
        init.stdout
    );
    assert!(
        !workspace
            .read("iclock-sync.toml")
            .contains("\n[[device]]\nname = \"Head office\"")
    );

    let run = workspace.sync(&[], 0).await;
    assert_eq!(run.device(0)["name"], "Main gate");
    assert_eq!(run.device(0)["delivered"], 25);

    let again = workspace.run(&["init", "--zk", &address]).await;
    assert_eq!(again.code, Some(2));
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);
    let nothing = workspace.run(&["init", "--force"]).await;
    assert_eq!(nothing.code, Some(2), "init needs to know the devices");
}

/// Shell completions and a man page come from the command line's own definition; the
/// summary colours what failed when asked to (or on a terminal without NO_COLOR), and
/// log lines carry this computer's time to the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn completions_man_page_colour_and_log_times() {
    let workspace = Workspace::new();
    let bash = workspace.run(&["completions", "bash"]).await;
    assert_eq!(bash.code, Some(0), "{}", bash.all_output());
    assert!(
        bash.stdout.contains("complete -F _iclock__sync"),
        "{}",
        bash.stdout
    );
    assert!(bash.stdout.contains("--dry-run"));
    let man = workspace.run(&["man"]).await;
    assert_eq!(man.code, Some(0), "{}", man.all_output());
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH iclock-sync"),
        "{}",
        man.stdout
    );

    workspace.configure(&["http://127.0.0.1:9".into()], "timeout = \"1s\"", "");
    let colour = workspace.run(&["--color", "always", "-v"]).await;
    assert_eq!(colour.code, Some(1));
    assert!(
        colour.stdout.contains("\u{1b}[31mFAILED (unreachable)"),
        "{}",
        colour.stdout
    );
    let plain = workspace.run(&["--color", "never", "-v"]).await;
    assert!(!plain.stdout.contains('\u{1b}'), "{}", plain.stdout);
    let stamped = plain
        .stderr
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or_default();
    let stamp = stamped.get(..19).unwrap_or_default();
    assert!(
        chrono::NaiveDateTime::parse_from_str(stamp, "%Y-%m-%d %H:%M:%S").is_ok()
            && stamped.get(19..20) == Some(" "),
        "{stamped}"
    );
}
