//! The HTTP API of `serve`, against the real binary on free ports with a real ledger:
//! a pushing terminal sends today's punches, a Frappe site (simulated, it cannot run
//! here) knows only some of the PINs, and the API shows and acts on what happened.

use std::time::Duration;

use iclock_sync::simulate::frappe::{Employee, FrappeSimulator};
use serde_json::{Value, json};

use crate::support::Workspace;
use crate::support::firestore::free_port;
use crate::support::frappe::{SECRET, everyone, sink, start};

pub const PASSWORD: &str = "school-pass-123";

/// `serve` with a pushing terminal (Gate, SIM1), a Frappe sink that knows PINs
/// 1001–1003, a dashboard password and two tokens.
pub struct Service {
    pub workspace: Workspace,
    pub frappe: FrappeSimulator,
    pub child: tokio::process::Child,
    /// `http://127.0.0.1:PORT` of the dashboard and API.
    pub web: String,
    /// `http://127.0.0.1:PORT` of the ADMS receiver.
    pub adms: String,
    pub read_token: String,
    pub admin_token: String,
    pub client: reqwest::Client,
}

impl Service {
    pub async fn start() -> Service {
        Service::start_with("").await
    }

    /// With `more` added to the configuration (more devices, say).
    pub async fn start_with(more: &str) -> Service {
        let frappe = start(everyone(1001, 3), Default::default()).await;
        let workspace = Workspace::new();
        workspace.write(".env", &format!("FRAPPE_SECRET={SECRET}\n"));
        let (web_port, adms_port) = (free_port(), free_port());
        workspace.write(
            "iclock-sync.toml",
            &format!(
                "# the school's configuration\n[serve]\nlisten = \"127.0.0.1:{web_port}\"\n\n\
                 [adms]\nlisten = \"127.0.0.1:{adms_port}\"\ndelay = 2\n\n{}\n\
                 [[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM1\"\ntimezone = \"Asia/Kolkata\"\n{more}",
                sink(&frappe, ""),
            ),
        );
        set_password(&workspace, PASSWORD).await;
        let read_token = new_token(&workspace, "read", "reports").await;
        let admin_token = new_token(&workspace, "admin", "integration").await;
        let child = crate::serve::spawn_serve(&workspace);
        let web = format!("http://127.0.0.1:{web_port}");
        let adms = format!("http://127.0.0.1:{adms_port}");
        let client = reqwest::Client::new();
        crate::serve::handshake(&client, &adms, "SIM1").await;
        Service {
            workspace,
            frappe,
            child,
            web,
            adms,
            read_token,
            admin_token,
            client,
        }
    }

    /// The terminal pushes one punch each for PINs 1001–1005, today (its clock): the
    /// last two are nobody at the Frappe site.
    pub async fn push_today(&self) {
        let today = chrono::Utc::now()
            .with_timezone(&chrono_tz::Asia::Kolkata)
            .format("%Y-%m-%d");
        let body: String = (1..=5)
            .map(|n| format!("100{n}\t{today} 00:0{n}:00\t0\t15\t0\t0\t0\n"))
            .collect();
        assert_eq!(self.upload("SIM1", &body).await, (200, "OK: 5".to_owned()));
    }

    pub async fn get(&self, token: Option<&str>, path: &str) -> (u16, String) {
        let mut request = self.client.get(format!("{}{path}", self.web));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    pub async fn json(&self, path: &str) -> Value {
        let (status, body) = self.get(Some(&self.read_token), path).await;
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.web))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The Frappe sink's standing once `wanted` holds (30 s at most).
    pub async fn frappe_until(&self, wanted: impl Fn(&Value) -> bool) -> Value {
        let mut last = Value::Null;
        for _ in 0..150 {
            let sinks = self.json("/api/v1/sinks").await;
            if let Some(frappe) = sinks
                .as_array()
                .and_then(|sinks| sinks.iter().find(|sink| sink["name"] == "frappe"))
            {
                if wanted(frappe) {
                    return frappe.clone();
                }
                last = frappe.clone();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        panic!("the Frappe sink never got there; last: {last}");
    }

    /// PINs 1004 and 1005 become employees at the Frappe site.
    pub fn hire_the_rest(&self) {
        self.frappe.edit(|site| {
            for pin in ["1004", "1005"] {
                site.employees.push(Employee {
                    name: format!("HR-EMP-{pin}"),
                    employee_name: format!("Employee {pin}"),
                    status: "Active".into(),
                    attendance_device_id: Some(pin.into()),
                    user_id: None,
                    company: "Test Co".into(),
                });
            }
        });
    }

    /// Uploads `lines` (`PIN⇥time⇥state…`) as terminal `serial`: the answer's status
    /// and text.
    pub async fn upload(&self, serial: &str, lines: &str) -> (u16, String) {
        let response = self
            .client
            .post(format!(
                "{}/iclock/cdata?SN={serial}&table=ATTLOG&Stamp=1",
                self.adms
            ))
            .body(lines.to_owned())
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// SIGTERM, then the same configuration started again.
    pub async fn restart(&mut self) {
        crate::serve::stop(&mut self.child, Duration::from_secs(30)).await;
        self.child = crate::serve::spawn_serve(&self.workspace);
        crate::serve::handshake(&self.client, &self.adms, "SIM1").await;
    }

    pub async fn stop(mut self) -> Workspace {
        crate::serve::stop(&mut self.child, Duration::from_secs(30)).await;
        self.workspace
    }
}

async fn set_password(workspace: &Workspace, password: &str) {
    use tokio::io::AsyncWriteExt;
    let mut command = workspace.command(&["password"]);
    command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(format!("{password}\n").as_bytes())
        .await
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

async fn new_token(workspace: &Workspace, scope: &str, name: &str) -> String {
    let run = workspace
        .run(&["token", "new", "--scope", scope, "--name", name])
        .await;
    assert_eq!(run.code, Some(0), "{}", run.all_output());
    let token = run.stdout.trim().to_owned();
    assert!(token.starts_with("icsk_"), "{}", run.all_output());
    token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_hashed_in_the_config_and_scoped_and_never_logged() {
    let service = Service::start().await;
    let config = service.workspace.read("iclock-sync.toml");
    assert!(
        config.starts_with("# the school's configuration"),
        "comments kept: {config}"
    );
    assert!(config.contains("password_hash = \"$argon2id$"), "{config}");
    assert!(
        !config.contains(PASSWORD)
            && !config.contains(&service.read_token)
            && !config.contains(&service.admin_token)
    );
    assert_eq!(config.matches("[[serve.token]]").count(), 2, "{config}");

    let (status, body) = service.get(None, "/api/v1/devices").await;
    assert_eq!(status, 401, "{body}");
    let problem: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(problem["status"], 401);
    assert!(
        problem["detail"].as_str().unwrap().contains("token new"),
        "{problem}"
    );
    let (status, _) = service
        .get(Some("icsk_not-a-token"), "/api/v1/devices")
        .await;
    assert_eq!(status, 401);
    let (status, body) = service
        .get(Some(&service.read_token), "/api/v1/devices")
        .await;
    assert_eq!(status, 200, "{body}");

    let (status, problem) = service
        .post(&service.read_token, "/api/v1/retry", json!({}))
        .await;
    assert_eq!(status, 403, "a read token cannot act: {problem}");
    assert!(
        problem["detail"].as_str().unwrap().contains("admin"),
        "{problem}"
    );
    let (status, done) = service
        .post(&service.admin_token, "/api/v1/retry", json!({}))
        .await;
    assert_eq!(status, 200, "{done}");

    // Metrics need a token too; health and readiness do not.
    assert_eq!(service.get(None, "/metrics").await.0, 401);
    assert_eq!(service.get(None, "/health").await.0, 200);
    let (status, ready) = service.get(None, "/ready").await;
    assert_eq!(status, 200, "{ready}");

    let workspace = service.stop().await;
    let log = workspace.read("serve.log");
    assert!(log.contains("dashboard and API on"), "{log}");
    let config = workspace.read("iclock-sync.toml");
    for line in config.lines().filter(|line| line.starts_with("hash")) {
        let hash = line.split('"').nth(1).unwrap();
        assert!(!log.contains(hash));
    }
    assert!(!log.contains("icsk_"), "no token in the log: {log}");
    assert!(!log.contains(PASSWORD));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_devices_punches_sinks_and_refusals_and_retry_clears_them() {
    let service = Service::start().await;
    service.push_today().await;
    let frappe = service.frappe_until(|sink| sink["unmapped"] == 2).await;
    assert_eq!(frappe["delivered_today"], 3, "{frappe}");

    let devices = service.json("/api/v1/devices").await;
    let gate = &devices[0];
    assert_eq!(gate["name"], "Gate");
    assert_eq!(gate["status"], "up", "{gate}");
    assert_eq!(gate["punches_today"], 5, "{gate}");
    assert_eq!(gate["undelivered"], 0, "{gate}");
    assert_eq!(service.json("/api/v1/devices/Gate").await["serial"], "SIM1");
    let (status, body) = service
        .get(Some(&service.read_token), "/api/v1/devices/Nowhere")
        .await;
    assert_eq!(status, 404, "{body}");

    // Paging: two at a time, newest first, every punch once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/punches?limit=2".to_owned();
    loop {
        let page = service.json(&path).await;
        for punch in page["punches"].as_array().unwrap() {
            seen.push(punch["user_id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/punches?limit=2&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["1005", "1004", "1003", "1002", "1001"]);
    let unmapped = service
        .json("/api/v1/punches?state=unmapped&sink=frappe&order=oldest")
        .await;
    let pins: Vec<&str> = unmapped["punches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|punch| punch["user_id"].as_str().unwrap())
        .collect();
    assert_eq!(pins, ["1004", "1005"]);
    let one = service.json("/api/v1/punches?pin=1002").await;
    assert_eq!(
        one["punches"][0]["deliveries"][0]["state"], "delivered",
        "{one}"
    );
    for bad in [
        "from=yesterday",
        "state=lost",
        "cursor=%%%",
        "order=sideways",
    ] {
        let (status, body) = service
            .get(Some(&service.read_token), &format!("/api/v1/punches?{bad}"))
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.contains("\"detail\""), "{body}");
    }
    let (status, csv) = service
        .get(Some(&service.read_token), "/api/v1/punches.csv?device=Gate")
        .await;
    assert_eq!(status, 200);
    assert_eq!(csv.lines().count(), 6, "{csv}");
    assert!(
        csv.starts_with("id,device,serial,user_id,local_time"),
        "{csv}"
    );

    let refusals = service.json("/api/v1/refusals").await;
    assert_eq!(refusals.as_array().unwrap().len(), 1, "{refusals}");
    assert_eq!(refusals[0]["state"], "unmapped");
    assert_eq!(refusals[0]["punches"], 2);
    assert_eq!(refusals[0]["pins"], json!(["1004", "1005"]));

    service.hire_the_rest();
    let (status, done) = service
        .post(
            &service.admin_token,
            "/api/v1/retry",
            json!({ "sink": "frappe", "unmapped": true }),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["punches"], 2, "{done}");
    let frappe = service
        .frappe_until(|sink| sink["unmapped"] == 0 && sink["pending"] == 0)
        .await;
    assert_eq!(frappe["delivered_today"], 5, "{frappe}");
    assert_eq!(service.frappe.checkins().len(), 5);
    assert_eq!(crate::support::frappe::duplicates(&service.frappe), 0);

    let (status, problem) = service
        .post(
            &service.admin_token,
            "/api/v1/sinks/nowhere/backfill",
            json!({ "since": "2026-01-01" }),
        )
        .await;
    assert_eq!(status, 404, "{problem}");
    let (status, done) = service
        .post(
            &service.admin_token,
            "/api/v1/sinks/frappe/backfill",
            json!({ "since": "2026-01-01" }),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let (status, queued) = service
        .post(
            &service.admin_token,
            "/api/v1/devices/Gate/commands",
            json!({ "command": "info" }),
        )
        .await;
    assert_eq!(status, 202, "{queued}");
    let commands = service.json("/api/v1/devices/Gate/commands").await;
    assert_eq!(commands[0]["command"], "INFO", "{commands}");
    let (status, problem) = service
        .post(&service.admin_token, "/api/v1/devices/Gate/sync", json!({}))
        .await;
    assert_eq!(status, 400, "a pushing terminal is not read: {problem}");

    let cycles = service.json("/api/v1/cycles?limit=3").await;
    assert!(!cycles.as_array().unwrap().is_empty());
    let (_, metrics) = service.get(Some(&service.read_token), "/metrics").await;
    assert!(
        metrics.contains("iclock_sync_punches_read_total{device=\"Gate\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("iclock_sync_punches_delivered_total{sink=\"frappe\"} 5"),
        "{metrics}"
    );
    assert!(
        metrics.contains("iclock_sync_punches_pending{sink=\"frappe\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("iclock_sync_adms_requests_total{endpoint=\"cdata\",status=\"200\"}"),
        "{metrics}"
    );
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_events_stream_live() {
    let service = Service::start().await;
    let (status, body) = service.get(None, "/api/openapi.json").await;
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(document["openapi"], "3.1.0");
    let paths = document["paths"].as_object().unwrap();
    for path in [
        "/api/v1/devices",
        "/api/v1/devices/{name}",
        "/api/v1/devices/{name}/commands",
        "/api/v1/devices/{name}/sync",
        "/api/v1/punches",
        "/api/v1/punches.csv",
        "/api/v1/sinks",
        "/api/v1/refusals",
        "/api/v1/quarantine",
        "/api/v1/cycles",
        "/api/v1/retry",
        "/api/v1/sinks/{name}/backfill",
        "/api/v1/events",
        "/api/v1/terminals/{serial}/approve",
        "/api/v1/terminals/{serial}/reject",
    ] {
        let operations = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not in the document"));
        for (_, operation) in operations.as_object().unwrap() {
            assert!(
                operation["responses"].get("401").is_some(),
                "{path}: 401 documented"
            );
        }
    }
    assert!(document["components"]["schemas"].get("Problem").is_some());

    // The event stream tells of punches as they arrive.
    let mut events = service
        .client
        .get(format!("{}/api/v1/events", service.web))
        .bearer_auth(&service.read_token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    service.push_today().await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !seen.contains("event: punches") {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("an event within 20 s")
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("\"device\":\"Gate\"") && seen.contains("\"new\":5"),
        "{seen}"
    );
    drop(events);
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushing_terminal_coming_into_touch_is_told_at_once() {
    let service =
        Service::start_with("\n[[device]]\nname = \"Hall\"\nkind = \"adms\"\nserial = \"SIM2\"\n")
            .await;
    let mut events = service
        .client
        .get(format!("{}/api/v1/events", service.web))
        .bearer_auth(&service.read_token)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    crate::serve::handshake(&service.client, &service.adms, "SIM2").await;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !seen.contains("\"device\":\"Hall\"") {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .unwrap_or_else(|_| panic!("Hall's event within 10 s; seen: {seen}"))
            .unwrap()
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        seen.contains("event: device") && seen.contains("\"up\":true"),
        "{seen}"
    );
    drop(events);
    // Told after the contact is in the ledger: a page reloaded on the event shows it.
    let hall = service.json("/api/v1/devices/Hall").await;
    assert_eq!(hall["status"], "up", "{hall}");
    let (_, metrics) = service.get(Some(&service.read_token), "/metrics").await;
    assert!(
        metrics.contains("iclock_sync_device_up{device=\"Hall\"} 1"),
        "{metrics}"
    );
    service.stop().await;
}

#[tokio::test]
async fn listening_beyond_this_computer_without_a_credential_is_refused() {
    let workspace = Workspace::new();
    workspace.write(
        "iclock-sync.toml",
        "[serve]\nlisten = \"0.0.0.0:8099\"\n\n[[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM1\"\n",
    );
    let run = workspace.run(&["serve"]).await;
    assert_eq!(run.code, Some(2), "{}", run.all_output());
    let output = run.all_output();
    assert!(
        output.contains("[serve] key `listen`") && output.contains("iclock-sync password"),
        "{output}"
    );
}

/// The version the API is checked with (README says so too).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// `schemathesis` in a virtualenv under target/, installed once.
fn schemathesis() -> std::path::PathBuf {
    crate::support::python::kept_program("schemathesis", SCHEMATHESIS, "schemathesis")
}

/// A property-based run of schemathesis over the API's own OpenAPI document: every
/// operation (but the endless event stream, tested above) with generated requests, as
/// an admin and as a reader. The checks: no server error, and every status, content
/// type, header and body as documented (not whether a request the schema allows is
/// accepted: free-text dates and cursors are refused with a documented 400).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_undocumented_answer() {
    let program = tokio::task::spawn_blocking(schemathesis).await.unwrap();
    let service = Service::start().await;
    service.push_today().await;
    service.frappe_until(|sink| sink["unmapped"] == 2).await;
    for (token, examples) in [(&service.admin_token, "40"), (&service.read_token, "10")] {
        let run = tokio::process::Command::new(&program)
            // It keeps a cache of what it found in the folder it runs in.
            .current_dir(service.workspace.path("."))
            .args(["run", &format!("{}/api/openapi.json", service.web)])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .args(["--checks", "all"])
            .args([
                "--exclude-checks",
                "negative_data_rejection,positive_data_acceptance",
            ])
            .args(["--exclude-path", "/api/v1/events"])
            .args(["--max-examples", examples, "--workers", "1"])
            .args(["--generation-deterministic"])
            .env("NO_COLOR", "1")
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(Duration::from_secs(300), run)
            .await
            .expect("schemathesis finished within 5 minutes")
            .expect("schemathesis ran");
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "schemathesis found problems:\n{text}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(text.contains("Tested: 15"), "{text}");
    }
    let workspace = service.stop().await;
    assert!(!workspace.read("serve.log").contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_terminals_are_approved_or_rejected_and_the_decision_outlives_a_restart() {
    let mut service = Service::start().await;
    let lines = "2001\t2026-09-15 09:00:00\t0\t15\n2002\t2026-09-15 09:00:05\t0\t15\n";
    for serial in ["SIM9", "SIM8"] {
        assert_eq!(
            service.upload(serial, lines).await.0,
            403,
            "{serial} is held"
        );
    }
    // A configured terminal's punches start a cycle, which records who called.
    service.push_today().await;
    let mut held = Vec::new();
    for _ in 0..100 {
        let devices = service.json("/api/v1/devices").await;
        held = devices
            .as_array()
            .unwrap()
            .iter()
            .filter(|device| device["status"] == "awaiting_approval")
            .map(|device| device["serial"].as_str().unwrap().to_owned())
            .collect();
        if held.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    held.sort();
    assert_eq!(held, ["SIM8", "SIM9"]);

    let (status, problem) = service
        .post(
            &service.read_token,
            "/api/v1/terminals/SIM9/approve",
            json!({}),
        )
        .await;
    assert_eq!(status, 403, "{problem}");
    let (status, problem) = service
        .post(
            &service.admin_token,
            "/api/v1/terminals/SIM1/approve",
            json!({}),
        )
        .await;
    assert_eq!(status, 400, "SIM1 is configured: {problem}");
    let (status, problem) = service
        .post(
            &service.admin_token,
            "/api/v1/terminals/SIM9/approve",
            json!({ "timezone": "Mars/Olympus" }),
        )
        .await;
    assert_eq!(status, 400, "{problem}");
    let (status, done) = service
        .post(
            &service.admin_token,
            "/api/v1/terminals/SIM9/approve",
            json!({ "name": "Library", "timezone": "Asia/Kathmandu" }),
        )
        .await;
    assert_eq!(status, 200, "{done}");
    let (status, done) = service
        .post(
            &service.admin_token,
            "/api/v1/terminals/SIM8/reject",
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{done}");

    assert_eq!(
        service.upload("SIM9", lines).await,
        (200, "OK: 2".to_owned())
    );
    assert_eq!(service.upload("SIM8", lines).await.0, 403);
    let library = service.json("/api/v1/punches?device=Library").await;
    assert_eq!(library["punches"].as_array().unwrap().len(), 2, "{library}");
    assert_eq!(library["punches"][0]["timezone"], "Asia/Kathmandu");

    service.restart().await;
    let more = "2003\t2026-09-15 10:00:00\t0\t15\n";
    assert_eq!(
        service.upload("SIM9", more).await,
        (200, "OK: 1".to_owned()),
        "still approved"
    );
    assert_eq!(service.upload("SIM8", more).await.0, 403, "still rejected");
    let devices = service.json("/api/v1/devices").await;
    assert!(
        devices
            .as_array()
            .unwrap()
            .iter()
            .all(|device| device["status"] != "awaiting_approval"),
        "{devices}"
    );
    service.stop().await;
}

/// `serve` with nothing but a pushing terminal and `[serve] listen` (and `extra` keys
/// there): no password, no token.
async fn bare_serve(workspace: &Workspace, extra: &str) -> (tokio::process::Child, u16) {
    let (web_port, adms_port) = (free_port(), free_port());
    workspace.write(
        "iclock-sync.toml",
        &format!(
            "[serve]\nlisten = \"127.0.0.1:{web_port}\"\n{extra}\n\n[adms]\nlisten = \"127.0.0.1:{adms_port}\"\n\n\
             [[device]]\nname = \"Gate\"\nkind = \"adms\"\nserial = \"SIM1\"\n"
        ),
    );
    let child = crate::serve::spawn_serve(workspace);
    let client = reqwest::Client::new();
    crate::serve::handshake(&client, &format!("http://127.0.0.1:{adms_port}"), "SIM1").await;
    (child, web_port)
}

/// The one-time link `serve` printed, once it is in serve.log.
async fn printed_link(workspace: &Workspace) -> String {
    for _ in 0..100 {
        let log = workspace.read("serve.log");
        if let Some(start) = log.find("/login?once=") {
            let rest = &log[start..];
            return rest[..rest.find(char::is_whitespace).unwrap_or(rest.len())].to_owned();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no sign-in link in serve.log:\n{}",
        workspace.read("serve.log")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_credential_the_printed_link_signs_in_once_and_the_api_stays_closed() {
    let workspace = Workspace::new();
    let (mut child, port) = bare_serve(&workspace, "").await;
    let web = format!("http://127.0.0.1:{port}");
    let link = printed_link(&workspace).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(
        client
            .get(format!("{web}/api/v1/devices"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let page = client.get(format!("{web}/")).send().await.unwrap();
    assert_eq!(
        page.status(),
        303,
        "the dashboard sends the browser to sign in"
    );

    let signed = client.get(format!("{web}{link}")).send().await.unwrap();
    assert_eq!(signed.status(), 303);
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let session = cookie.split(';').next().unwrap().to_owned();
    let overview = client
        .get(format!("{web}/"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
    for header in [
        "content-security-policy",
        "x-frame-options",
        "x-content-type-options",
        "referrer-policy",
    ] {
        assert!(overview.headers().contains_key(header), "{header}");
    }
    let page = overview.text().await.unwrap();
    assert!(
        page.contains("Gate") && page.contains("csrf-token"),
        "{page}"
    );
    // The session reads the API; acting needs the page's CSRF token.
    let devices = client
        .get(format!("{web}/api/v1/devices"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(devices.status(), 200);
    let forged = client
        .post(format!("{web}/api/v1/retry"))
        .header("cookie", &session)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "no CSRF token");
    let csrf = page
        .split("name=\"csrf-token\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let retried = client
        .post(format!("{web}/api/v1/retry"))
        .header("cookie", &session)
        .header("x-csrf-token", csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), 200);

    let again = client.get(format!("{web}{link}")).send().await.unwrap();
    assert_eq!(again.status(), 401, "the link works once");
    crate::serve::stop(&mut child, Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_and_api_serve_https_with_secure_cookies() {
    let workspace = Workspace::new();
    let ca = crate::support::tls::TestCa::new();
    workspace.write("tls/server.pem", &ca.server_certificate_pem);
    workspace.write("tls/server.key", &ca.server_key_pem);
    let (mut child, port) = bare_serve(
        &workspace,
        "tls_cert = \"tls/server.pem\"\ntls_key = \"tls/server.key\"",
    )
    .await;
    let link = printed_link(&workspace).await;
    assert!(
        workspace
            .read("serve.log")
            .contains(&format!("https://127.0.0.1:{port}/login?once="))
    );
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let web = format!("https://127.0.0.1:{port}");
    assert_eq!(
        client
            .get(format!("{web}/health"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let signed = client.get(format!("{web}{link}")).send().await.unwrap();
    let cookie = signed.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("Secure"), "{cookie}");
    assert!(signed.headers().contains_key("strict-transport-security"));
    assert!(
        reqwest::get(format!("http://127.0.0.1:{port}/health"))
            .await
            .map(|response| response.status() != 200)
            .unwrap_or(true),
        "plain HTTP on the TLS port gets no answer"
    );
    crate::serve::stop(&mut child, Duration::from_secs(30)).await;
}

/// The status of GET `path` with `header` (a token or a session cookie) once it is
/// `wanted`, within 10 s.
async fn until_status(service: &Service, header: (&str, &str), path: &str, wanted: u16) {
    let mut last = 0;
    for _ in 0..50 {
        last = service
            .client
            .get(format!("{}{path}", service.web))
            .header(header.0, header.1)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16();
        if last == wanted {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("{path} still answers {last}, not {wanted}, after 10 s");
}

/// A dashboard session signed in with `password`: its cookie.
async fn sign_in(service: &Service, password: &str) -> String {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed = client
        .post(format!("{}/login", service.web))
        .form(&[("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303, "signed in with the password");
    let cookie = signed.headers()["set-cookie"].to_str().unwrap();
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_tokens_and_passwords_are_taken_without_a_restart() {
    let service = Service::start().await;
    let session = sign_in(&service, PASSWORD).await;

    let later = new_token(&service.workspace, "admin", "later").await;
    let bearer = format!("Bearer {later}");
    until_status(&service, ("authorization", &bearer), "/api/v1/devices", 200).await;
    let revoked = service.workspace.run(&["token", "revoke", "later"]).await;
    assert_eq!(revoked.code, Some(0), "{}", revoked.all_output());
    until_status(&service, ("authorization", &bearer), "/api/v1/devices", 401).await;

    // A new password signs everyone out; it signs in, the old one no longer does.
    until_status(&service, ("cookie", &session), "/api/v1/devices", 200).await;
    set_password(&service.workspace, "a newer passphrase").await;
    until_status(&service, ("cookie", &session), "/api/v1/devices", 401).await;
    sign_in(&service, "a newer passphrase").await;
    let refused = service
        .client
        .post(format!("{}/login", service.web))
        .form(&[("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);

    // Other tokens were never affected.
    assert_eq!(
        service
            .get(Some(&service.read_token), "/api/v1/devices")
            .await
            .0,
        200
    );
    let log = service.workspace.read("serve.log");
    assert!(log.contains("now take"), "{log}");
    assert!(!log.contains(&later), "no token in the log");
    service.stop().await;
}
