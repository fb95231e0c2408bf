//! `iclock-sync serve` driven as a user runs it: terminals push to its ADMS receiver,
//! the punches land in the store once, SIGTERM ends it with exit 0; a wrong `[adms]`
//! is refused with exit 2.

use std::time::Duration;

use crate::support::Workspace;
use crate::support::firestore::free_port;

fn configure(workspace: &Workspace, port: u16, extra: &str) {
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n\n\
             [[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM1\"\ntimezone = \"Asia/Kolkata\"\n"
        ),
    );
}

/// `serve` started in `workspace`, its output and log appended to `serve.log` there (a
/// pipe nobody reads would stop it once full).
pub(crate) fn spawn_serve(workspace: &Workspace) -> tokio::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(workspace.path("serve.log"))
        .expect("open serve.log");
    let errors = log.try_clone().expect("share serve.log");
    workspace
        .command(&["serve"])
        .stdout(log)
        .stderr(errors)
        .spawn()
        .expect("start serve")
}

/// Waits until the receiver answers a handshake.
pub(crate) async fn handshake(client: &reqwest::Client, url: &str, serial: &str) -> String {
    for _ in 0..300 {
        if let Ok(response) = client
            .get(format!(
                "{url}/iclock/cdata?SN={serial}&options=all&pushver=2.4.1"
            ))
            .send()
            .await
            && response.status() == 200
        {
            return response.text().await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("serve did not answer a handshake within 30 s");
}

/// `serve` running on the one-terminal configuration (terminal SIM1, Asia/Kolkata),
/// after it answered a handshake (`options`).
struct Serving {
    workspace: Workspace,
    child: tokio::process::Child,
    port: u16,
    url: String,
    client: reqwest::Client,
    options: String,
}

async fn serving() -> Serving {
    let workspace = Workspace::new();
    let port = free_port();
    configure(&workspace, port, "");
    let child = spawn_serve(&workspace);
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let options = handshake(&client, &url, "SIM1").await;
    Serving {
        workspace,
        child,
        port,
        url,
        client,
        options,
    }
}

/// The store's punches once it holds at least `count` (or after 30 s, whatever it holds).
pub(crate) async fn stored_at_least(
    workspace: &Workspace,
    count: usize,
) -> Vec<(String, String, String, i64)> {
    let mut stored = Vec::new();
    for _ in 0..300 {
        if workspace.database().exists() {
            stored = workspace.stored_punches().await;
            if stored.len() >= count {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stored
}

/// SIGTERM, and serve exits 0 within `limit`.
pub(crate) async fn stop(child: &mut tokio::process::Child, limit: Duration) {
    crate::support::send_signal(child, "TERM");
    let status = tokio::time::timeout(limit, child.wait())
        .await
        .expect("serve stops after SIGTERM")
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

async fn upload(client: &reqwest::Client, url: &str, serial: &str, body: &str) -> (u16, String) {
    let response = client
        .post(format!(
            "{url}/iclock/cdata?SN={serial}&table=ATTLOG&Stamp=1"
        ))
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn pushed_punches_land_once_and_sigterm_ends_serve_with_exit_0() {
    let Serving {
        workspace,
        mut child,
        url,
        client,
        options,
        ..
    } = serving().await;
    assert!(options.contains("TimeZone=330"), "{options}");
    let poll = client
        .get(format!(
            "{url}/iclock/getrequest?SN=SIM1&INFO=Ver%202.0.12-20150625,25,30,1200,192.168.1.50,10,7,15,0,111"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(poll.text().await.unwrap(), "OK");

    let body = "1001\t2026-09-15 09:00:00\t0\t15\t0\t0\t0\n\
                1002\t2026-09-15 09:00:05\t0\t1\t0\t0\t0\n\
                1001\t2026-09-15 18:00:00\t1\t15\t0\t0\t0\n";
    assert_eq!(
        upload(&client, &url, "SIM1", body).await,
        (200, "OK: 3".into())
    );
    let stored = stored_at_least(&workspace, 3).await;
    let rows: Vec<(String, String, i64)> = stored
        .iter()
        .map(|(_, pin, time, state)| (pin.clone(), time.clone(), *state))
        .collect();
    let mut expected = vec![
        ("1001".to_owned(), "2026-09-15 09:00:00".to_owned(), 0),
        ("1002".to_owned(), "2026-09-15 09:00:05".to_owned(), 0),
        ("1001".to_owned(), "2026-09-15 18:00:00".to_owned(), 1),
    ];
    let mut rows = rows;
    rows.sort();
    expected.sort();
    assert_eq!(rows, expected);

    // Sent again (the answer was lost): acknowledged, stored nowhere twice.
    assert_eq!(
        upload(&client, &url, "SIM1", body).await,
        (200, "OK: 3".into())
    );
    let (status, _) = upload(&client, &url, "STRANGER", body).await;
    assert_eq!(status, 403);
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(workspace.stored_punches().await.len(), 3);

    stop(&mut child, Duration::from_secs(30)).await;
    assert!(
        client
            .get(format!("{url}/iclock/ping?SN=SIM1"))
            .send()
            .await
            .is_err(),
        "nothing listens after serve stopped"
    );
    // `status` shows each terminal's last contact and what it said, and the one held.
    let status = workspace.run(&["status"]).await;
    let text = status.all_output();
    assert!(
        text.contains("Gate (adms, ADMS terminal SIM1): last contact 20"),
        "{text}"
    );
    assert!(
        text.contains("\"firmware\":\"Ver 2.0.12-20150625\""),
        "{text}"
    );
    assert!(text.contains("\"ip\":\"192.168.1.50\""), "{text}");
    assert!(text.contains("\"push_version\":\"2.4.1\""), "{text}");
    assert!(text.contains("cursor: {\"ATTLOG\":\"1\"}"), "{text}");
    assert!(
        text.contains("ADMS STRANGER (adms, waiting for approval: add [[device]] kind = \"adms\", serial = \"STRANGER\")"),
        "{text}"
    );
    // `devices`: what serve recorded, and that the terminal is in touch.
    let devices = workspace.run(&["devices"]).await;
    assert_eq!(devices.code, Some(0), "{}", devices.all_output());
    for fact in [
        "Gate (adms, ADMS terminal SIM1)",
        "reachable      yes",
        "address        192.168.1.50",
        "push version   2.4.1",
        "firmware       Ver 2.0.12-20150625",
        "stamps         ATTLOG=1",
        "commands       0 waiting",
    ] {
        assert!(devices.stdout.contains(fact), "{fact}: {}", devices.stdout);
    }
}

#[tokio::test]
async fn a_wrong_adms_section_is_refused_with_exit_2_naming_the_key() {
    let workspace = Workspace::new();
    let cases = [
        ("listen = \"everywhere\"", "listen", "0.0.0.0:8081"),
        (
            "listen = \"127.0.0.1:8081\"\nunknown_devices = \"maybe\"",
            "unknown_devices",
            "hold",
        ),
        (
            "listen = \"127.0.0.1:8081\"\nallow = [\"10.0.0/8\"]",
            "allow",
            "192.168.1.0/24",
        ),
        (
            "listen = \"127.0.0.1:8081\"\ncolour = 1",
            "colour",
            "listen",
        ),
    ];
    for (section, key, fix) in cases {
        workspace.write(
            "iclock-sync.toml",
            &format!(
                "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\n{section}\n\n[[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM1\"\n"
            ),
        );
        let run = workspace.run(&["serve"]).await;
        assert_eq!(run.code, Some(2), "{section}: {}", run.all_output());
        let output = run.all_output();
        assert!(output.contains("[adms]"), "{section}: {output}");
        assert!(output.contains(key), "{section}: {output}");
        assert!(output.contains(fix), "{section}: {output}");
    }
    workspace.write(
        "iclock-sync.toml",
        "[[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"not a serial!\"\n",
    );
    let run = workspace.run(&["serve"]).await;
    assert_eq!(run.code, Some(2), "{}", run.all_output());
    assert!(run.all_output().contains("serial"), "{}", run.all_output());
}

#[tokio::test]
async fn a_port_in_use_is_refused_with_exit_2() {
    let workspace = Workspace::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    configure(&workspace, port, "");
    let run = workspace.run(&["serve"]).await;
    assert_eq!(run.code, Some(2), "{}", run.all_output());
    assert!(
        run.all_output().contains("[adms] listen"),
        "{}",
        run.all_output()
    );
}

/// The ledger's file system turns read-only (EROFS) while a terminal uploads: the
/// upload is not acknowledged (503), so the terminal keeps it; sent again once the disk
/// works, it lands once.
#[tokio::test]
async fn an_upload_the_ledger_cannot_store_is_refused_and_lands_once_when_sent_again() {
    let workspace = Workspace::new();
    let port = free_port();
    configure(&workspace, port, "");
    let switch = workspace.path("disk-is-failing");
    let fault = crate::support::faulty_disk::read_only_while("ledger.db-wal", &switch);
    let mut command = workspace.command(&["serve"]);
    command.envs(fault);
    let mut child = command.spawn().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    handshake(&client, &url, "SIM1").await;

    let body = "2001\t2026-09-15 09:00:00\t0\t15\n2002\t2026-09-15 09:00:01\t0\t15\n";
    std::fs::write(&switch, "").unwrap();
    let (status, answer) = upload(&client, &url, "SIM1", body).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer.starts_with("ERROR"), "{answer}");
    std::fs::remove_file(&switch).unwrap();

    // The terminal tries again after ErrorDelay.
    assert_eq!(
        upload(&client, &url, "SIM1", body).await,
        (200, "OK: 2".into())
    );
    assert_eq!(
        upload(&client, &url, "SIM1", body).await,
        (200, "OK: 2".into())
    );
    let stored = stored_at_least(&workspace, 2).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let pins: Vec<String> = workspace
        .stored_punches()
        .await
        .into_iter()
        .map(|(_, pin, ..)| pin)
        .collect();
    assert_eq!(pins.len(), 2, "{stored:?}");
    assert!(pins.contains(&"2001".to_owned()) && pins.contains(&"2002".to_owned()));
    stop(&mut child, Duration::from_secs(30)).await;
}

/// Three simulated terminals (push 1.x, push 2.4 and Android firmware) push 400 punches
/// each; every one lands once, and pushing them all again adds none.
#[tokio::test]
async fn simulated_terminals_of_three_firmwares_land_every_punch_once() {
    let workspace = Workspace::new();
    let port = free_port();
    let mut config = format!(
        "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\ndelay = 2\nerror_delay = 10\n"
    );
    for serial in ["SIM0001", "SIM0002", "SIM0003"] {
        config.push_str(&format!(
            "\n[[device]]\nname = \"{serial}\"\nkind = \"adms\"\nserial = \"{serial}\"\ntimezone = \"Asia/Kolkata\"\n"
        ));
    }
    workspace.write("iclock-sync.toml", &config);
    let mut child = spawn_serve(&workspace);
    let url = format!("http://127.0.0.1:{port}");
    handshake(&reqwest::Client::new(), &url, "SIM0001").await;
    let simulate = [
        "simulate",
        "adms",
        "--server",
        &url,
        "--terminals",
        "3",
        "--punches",
        "400",
        "--batch",
        "150",
    ];
    for round in 0..2 {
        let run = workspace.run(&simulate).await;
        assert_eq!(run.code, Some(0), "round {round}: {}", run.all_output());
        assert!(
            run.stdout
                .contains("3 terminal(s): 1200 punches acknowledged, 0 upload(s) sent again"),
            "{}",
            run.stdout
        );
        assert_eq!(
            stored_at_least(&workspace, 1200).await.len(),
            1200,
            "round {round}"
        );
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let stored = workspace.stored_punches().await;
    assert_eq!(stored.len(), 1200);
    // The push 2.4 terminal's lines carry +05:30, the device's own zone: wall times
    // are as the terminal showed them.
    assert!(
        stored
            .iter()
            .any(|(_, _, time, _)| time == "2026-09-01 08:00:00")
    );
    stop(&mut child, Duration::from_secs(30)).await;
}

/// A thousand idle connections and slow clients that send half a request hold no
/// terminal back: uploads are answered at once meanwhile, and serve stops on SIGTERM.
#[tokio::test]
async fn idle_and_slow_connections_by_the_thousand_do_not_hold_back_a_terminal() {
    use tokio::io::AsyncWriteExt;

    let Serving {
        // Kept to the end: serve works in its folder.
        workspace: _workspace,
        mut child,
        port,
        url,
        client,
        ..
    } = serving().await;

    let mut idle = Vec::new();
    for number in 0..1000 {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        if number % 2 == 0 {
            // Half a request: headers that never end.
            let _ = stream
                .write_all(b"POST /iclock/cdata?SN=SIM1&table=ATTLOG HTTP/1.1\r\nHost: x\r\n")
                .await;
        }
        idle.push(stream);
    }
    let started = std::time::Instant::now();
    let body = "3001\t2026-09-15 09:00:00\t0\t15\n";
    assert_eq!(
        upload(&client, &url, "SIM1", body).await,
        (200, "OK: 1".into())
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the upload waited {:?} behind idle connections",
        started.elapsed()
    );
    // A body that never arrives is cut off, not waited for.
    let mut slow = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    slow.write_all(
        b"POST /iclock/cdata?SN=SIM1&table=ATTLOG HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n12",
    )
    .await
    .unwrap();
    stop(&mut child, Duration::from_secs(45)).await;
    drop(idle);
}

/// With tls_cert and tls_key the receiver speaks HTTPS (a real handshake, a test CA).
#[tokio::test]
async fn the_receiver_serves_https_with_the_configured_certificate() {
    let workspace = Workspace::new();
    let ca = crate::support::tls::TestCa::new();
    workspace.write("tls/server.pem", &ca.server_certificate_pem);
    workspace.write("tls/server.key", &ca.server_key_pem);
    let port = free_port();
    configure(
        &workspace,
        port,
        "tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"",
    );
    let mut child = spawn_serve(&workspace);
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .build()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}");
    let options = handshake(&client, &url, "SIM1").await;
    assert!(options.starts_with("GET OPTION FROM: SIM1"), "{options}");
    assert_eq!(
        upload(&client, &url, "SIM1", "4001\t2026-09-15 09:00:00\t0\t15\n").await,
        (200, "OK: 1".into())
    );
    // Plain HTTP on the TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/iclock/ping?SN=SIM1"))
            .await
            .map(|response| response.status() != 200)
            .unwrap_or(true)
    );
    stop(&mut child, Duration::from_secs(30)).await;
}

/// A command queued by hand is handed over at the terminal's next poll, once, and its
/// result is recorded and shown.
#[tokio::test]
async fn a_queued_command_is_handed_over_at_the_next_poll_and_its_result_kept() {
    let Serving {
        workspace,
        mut child,
        url,
        client,
        ..
    } = serving().await;
    let poll = || async {
        client
            .get(format!("{url}/iclock/getrequest?SN=SIM1"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    assert_eq!(poll().await, "OK");

    let queued = workspace.run(&["adms", "command", "SIM1", "info"]).await;
    assert_eq!(queued.code, Some(0), "{}", queued.all_output());
    let queued = workspace
        .run(&[
            "adms",
            "command",
            "SIM1",
            "reupload",
            "2026-09-01",
            "2026-09-30",
        ])
        .await;
    assert_eq!(queued.code, Some(0), "{}", queued.all_output());
    let refused = workspace
        .run(&["adms", "command", "SIM1", "CLEAR", "LOG"])
        .await;
    assert_eq!(refused.code, Some(2), "{}", refused.all_output());
    let status = workspace.run(&["status"]).await.all_output();
    assert!(
        status.contains("commands: 2 waiting (`iclock-sync adms commands SIM1`)"),
        "{status}"
    );

    assert_eq!(
        poll().await,
        "C:1:INFO\nC:2:DATA QUERY ATTLOG StartTime=2026-09-01 00:00:00\tEndTime=2026-09-30 23:59:59\n"
    );
    // Handed over and waiting for the result: not handed over again at once.
    assert_eq!(poll().await, "OK");
    let answered = client
        .post(format!("{url}/iclock/devicecmd?SN=SIM1"))
        .body("ID=1&Return=0&CMD=INFO\n~DeviceName=MB460\nUserCount=25\nID=2&Return=-1&CMD=DATA\n")
        .send()
        .await
        .unwrap();
    assert_eq!(answered.text().await.unwrap(), "OK");

    let listed = workspace.run(&["adms", "commands", "SIM1"]).await;
    let text = listed.all_output();
    assert!(text.contains("1  SIM1  INFO  — done"), "{text}");
    assert!(text.contains("~DeviceName=MB460"), "{text}");
    assert!(text.contains("(Return=-1)"), "{text}");
    stop(&mut child, Duration::from_secs(30)).await;
}

/// A re-upload asked of a simulated terminal: it polls, carries it out (its punches in
/// the window sent again) and answers; the store still holds each punch once.
#[tokio::test]
async fn a_reupload_carried_out_by_a_terminal_adds_no_second_punch() {
    let workspace = Workspace::new();
    let port = free_port();
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "[serve]\nlisten = \"127.0.0.1:0\"\n\n[adms]\nlisten = \"127.0.0.1:{port}\"\ndelay = 2\n\n\
             [[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM0001\"\ntimezone = \"Asia/Kolkata\"\n"
        ),
    );
    let mut child = spawn_serve(&workspace);
    let url = format!("http://127.0.0.1:{port}");
    handshake(&reqwest::Client::new(), &url, "SIM0001").await;
    let queued = workspace
        .run(&[
            "adms",
            "command",
            "SIM0001",
            "reupload",
            "2026-09-01",
            "2026-09-01",
        ])
        .await;
    assert_eq!(queued.code, Some(0), "{}", queued.all_output());
    let run = workspace
        .run(&[
            "simulate",
            "adms",
            "--server",
            &url,
            "--punches",
            "100",
            "--poll-for",
            "3s",
        ])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.all_output());
    let listed = workspace.run(&["adms", "commands"]).await.all_output();
    assert!(
        listed.contains(
            "DATA QUERY ATTLOG StartTime=2026-09-01 00:00:00 EndTime=2026-09-01 23:59:59  — done"
        ),
        "{listed}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(workspace.stored_punches().await.len(), 100);
    stop(&mut child, Duration::from_secs(30)).await;
}

/// SIGTERM right after an upload, before the cycle it woke: the punches are delivered
/// on the way out.
#[tokio::test]
async fn punches_pushed_just_before_sigterm_are_delivered_on_the_way_out() {
    let Serving {
        workspace,
        mut child,
        url,
        client,
        ..
    } = serving().await;
    let body = "3001\t2026-09-15 09:00:00\t0\t15\n3002\t2026-09-15 09:00:01\t0\t15\n";
    assert_eq!(
        upload(&client, &url, "SIM1", body).await,
        (200, "OK: 2".into())
    );
    stop(&mut child, Duration::from_secs(30)).await;
    assert_eq!(workspace.stored_punches().await.len(), 2);
}
