//! Post-checkin user control: a created IN enables the person and an OUT disables them
//! — their Frappe login, or their user record on the terminal — never a System
//! Manager, every change logged, and `user-control undo` puts everything back.

use std::collections::BTreeMap;

use crate::support::frappe::{SECRET, sink, site, start};
use crate::support::zk::{device, layout, profile};
use crate::support::{Workspace, options, row, simulator};
use iclock_sync::simulate::frappe::{Employee, Site, SiteOptions, User};
use iclock_sync::simulate::zk::{TerminalSpec, ZkSimulator, generate};
use iclock_sync::source::zk::TransportKind;

fn workspace() -> Workspace {
    let workspace = Workspace::new();
    workspace.write(".env", &format!("FRAPPE_SECRET={SECRET}\n"));
    workspace
}

fn enabled(users: &BTreeMap<String, User>) -> BTreeMap<String, bool> {
    users
        .iter()
        .map(|(name, user)| (name.clone(), user.enabled))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frappe_logins_follow_in_and_out_but_system_managers_are_left_alone() {
    let frappe = start(site(), SiteOptions::default()).await;
    let sim = simulator(options(), Vec::new()).await;
    sim.upload(vec![
        row("1001", "2026-03-02 08:00:00", 0), // Alice in …
        row("1001", "2026-03-02 17:00:00", 1), // … and out: disabled
        row("1002", "2026-03-02 17:05:00", 1), // Bob, a System Manager: untouched
        row("1004", "2026-03-02 08:10:00", 0), // Dave in: already enabled, nothing to do
        row("1005", "2026-03-02 17:10:00", 1), // Erin has no login
        row("1006", "2026-03-02 17:20:00", 1), // Frank out: disabled
    ]);
    let workspace = workspace();
    workspace.configure(
        &[sim.url()],
        "",
        &sink(&frappe, "user_control = [\"frappe_user\"]"),
    );
    let before = enabled(&frappe.users());

    let run = workspace.sync(&[], 0).await;

    let after = enabled(&frappe.users());
    let changed: Vec<(&String, &bool)> = after
        .iter()
        .filter(|(name, state)| before[*name] != **state)
        .collect();
    assert_eq!(
        changed,
        vec![
            (&"alice@example.com".to_owned(), &false),
            (&"frank@example.com".to_owned(), &false)
        ]
    );
    let mut updates = frappe.stats().user_updates;
    updates.sort();
    assert_eq!(
        updates,
        vec![
            ("alice@example.com".to_owned(), false),
            ("frank@example.com".to_owned(), false)
        ],
        "only real changes are written"
    );
    let notes = run.summary()["sinks"][0]["notes"].to_string();
    assert!(notes.contains("0 login(s) enabled, 2 disabled"), "{notes}");
    assert!(
        notes.contains("left System Manager(s) alone: bob@example.com"),
        "{notes}"
    );
    let log = workspace.read("output/user_control.jsonl");
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.contains("\"because\":\"OUT at 2026-03-02 17:00:00 (checkin EMP-CKIN-"),
        "{log}"
    );

    let status = workspace.run(&["user-control", "status"]).await;
    assert_eq!(status.code, Some(0), "{}", status.all_output());
    assert!(
        status.stdout.contains("2 account(s) differ"),
        "{}",
        status.stdout
    );
    assert_eq!(enabled(&frappe.users()), after, "status changes nothing");

    let undo = workspace.run(&["user-control", "undo"]).await;
    assert_eq!(undo.code, Some(0), "{}", undo.all_output());
    assert!(
        undo.stdout.contains("2 account(s) restored"),
        "{}",
        undo.stdout
    );
    assert_eq!(
        enabled(&frappe.users()),
        before,
        "everyone is back as before"
    );
    let again = workspace.run(&["user-control", "undo"]).await;
    assert!(again.stdout.contains("Nothing to undo"), "{}", again.stdout);
}

/// A site whose employees are the terminal's users (PINs 1001…), all Active.
fn terminal_site(users: u16) -> Site {
    let employees = (1..=users)
        .map(|uid| Employee {
            name: format!("HR-EMP-{uid:05}"),
            employee_name: format!("Employee {uid}"),
            status: "Active".into(),
            attendance_device_id: Some((1000 + u32::from(uid)).to_string()),
            user_id: None,
            company: "Test Co".into(),
        })
        .collect();
    Site::new(employees, Vec::new(), &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminal_users_follow_their_last_punch_and_biotime_says_it_cannot() {
    // Employee 13 punches only at the head office (BioTime).
    let frappe = start(terminal_site(13), SiteOptions::default()).await;
    let data = generate(&TerminalSpec {
        users: 12,
        punches: 90,
        bad_records: 0,
        seed: 5,
        anchor: iclock_sync::simulate::biotime::now_local(),
        layout: layout(40),
    });
    let terminal = ZkSimulator::start_local(
        TransportKind::Tcp,
        profile("SNCONTROL", layout(40), 0),
        data,
    )
    .await
    .unwrap();
    // Who should end up switched off: everyone whose last punch is an OUT.
    let mut last: BTreeMap<String, (chrono::NaiveDateTime, u8)> = BTreeMap::new();
    for record in terminal.records() {
        let iclock_sync::source::zk::codec::attendance::Identity::Pin(pin) = record.identity else {
            panic!("40-byte records carry the PIN")
        };
        let time = record.time.to_datetime().unwrap();
        if last.get(&pin).is_none_or(|(seen, _)| time >= *seen) {
            last.insert(pin, (time, record.state));
        }
    }
    let biotime = simulator(options(), Vec::new()).await;
    biotime.upload(vec![row("1013", "2026-03-02 08:00:00", 0)]);
    let workspace = workspace();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "{}\n{}\n[[device]]\nname = \"Head office\"\nkind = \"biotime\"\nurl = \"{}\"\nusername = \"admin\"\npassword = \"admin\"\n",
            sink(&frappe, "user_control = [\"device\"]"),
            device("Gate", &terminal, ""),
            biotime.url()
        ),
    );

    let run = workspace.sync(&[], 0).await;

    let users = terminal.users();
    for (pin, (_, state)) in &last {
        let user = users.iter().find(|user| user.user_id == *pin).unwrap();
        assert_eq!(user.enabled(), *state == 0, "PIN {pin}: last state {state}");
    }
    let off = last.values().filter(|(_, state)| *state == 1).count();
    assert!(off > 0);
    assert_eq!(
        terminal.stats().user_writes as usize,
        off,
        "only real changes are written"
    );
    let gate = run.device(0)["note"].as_str().unwrap().to_owned();
    assert!(
        gate.contains(&format!("0 user(s) switched on, {off} off")),
        "{gate}"
    );
    let head_office = run.device(1)["note"].as_str().unwrap().to_owned();
    assert!(
        head_office.contains("not applied: BioTime has no flag to disable a person"),
        "{head_office}"
    );
    assert_eq!(
        workspace.read("output/user_control.jsonl").lines().count(),
        off
    );

    let devices = workspace.run(&["devices"]).await;
    assert!(
        devices
            .stdout
            .contains("user control   users are switched on and off here"),
        "{}",
        devices.stdout
    );
    assert!(
        devices
            .stdout
            .contains("user control   not possible: BioTime has no flag"),
        "{}",
        devices.stdout
    );

    let undo = workspace.run(&["user-control", "undo"]).await;
    assert_eq!(undo.code, Some(0), "{}", undo.all_output());
    assert!(
        terminal.users().iter().all(|user| user.enabled()),
        "everyone can punch again"
    );
}

/// A pushing terminal has no enable/disable verb: the person's record, as the terminal
/// uploaded it, is queued back with an expired validity window (`DATA UPDATE USERINFO`,
/// keypad password and all, never shown); someone it has not described is asked for;
/// `user-control undo` queues the record back with `Expires=0`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushing_terminal_users_are_switched_through_queued_commands() {
    let frappe = start(terminal_site(3), SiteOptions::default()).await;
    let workspace = workspace();
    let port = crate::support::firestore::free_port();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\n\n{}\n\
             [[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM1\"\ntimezone = \"Asia/Kolkata\"\n",
            sink(&frappe, "user_control = [\"device\"]"),
        ),
    );
    let mut serve = crate::serve::spawn_serve(&workspace);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    crate::serve::handshake(&client, &url, "SIM1").await;
    let post = async |table: &str, body: &str| {
        client
            .post(format!("{url}/iclock/cdata?SN=SIM1&table={table}&Stamp=1"))
            .body(body.to_owned())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let record = "PIN=1001\tName=Employee 1\tPri=0\tPasswd=4321\tCard=[15CD5B07]\tGrp=1\tTZ=0000000100000000\tVerify=-1";
    assert!(
        post(
            "OPERLOG",
            &format!("USER {record}\nUSER PIN=1002\tName=Employee 2\tPri=0\n")
        )
        .await
        .starts_with("OK")
    );
    assert_eq!(
        post(
            "ATTLOG",
            "1001\t2026-09-15 08:00:00\t0\t1\n\
             1001\t2026-09-15 17:00:00\t1\t1\n\
             1002\t2026-09-15 08:05:00\t0\t1\n\
             1003\t2026-09-15 17:10:00\t1\t1\n"
        )
        .await,
        "OK: 4"
    );

    let mut commands = String::from("OK");
    for _ in 0..100 {
        commands = client
            .get(format!("{url}/iclock/getrequest?SN=SIM1"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if commands != "OK" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        commands,
        format!(
            "C:1:DATA UPDATE USERINFO {record}\tStartDatetime=2000-01-01T00:00:00\tEndDatetime=2000-01-01T00:00:01\tExpires=1\n\
             C:2:DATA QUERY USERINFO\n"
        )
    );
    crate::serve::stop(&mut serve, std::time::Duration::from_secs(30)).await;
    let log = workspace.read("output/user_control.jsonl");
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(log.contains("\"account\":\"1001\""), "{log}");
    assert!(
        workspace
            .read("serve.log")
            .contains("0 user(s) switched on, 1 off"),
        "{}",
        workspace.read("serve.log")
    );

    let undo = workspace.run(&["user-control", "undo"]).await;
    assert_eq!(undo.code, Some(0), "{}", undo.all_output());
    assert!(
        undo.stdout
            .contains("1001                     enable   queued"),
        "{}",
        undo.stdout
    );
    let listed = workspace.run(&["adms", "commands", "SIM1"]).await;
    let text = listed.all_output();
    assert!(
        !text.contains("4321"),
        "the keypad password is never shown: {text}"
    );
    assert!(text.contains("Passwd=•••"), "{text}");
    assert!(text.contains("Verify=-1 Expires=0"), "{text}");
}
