//! The ADMS receiver over a real socket with a real ledger: the handshake, uploads
//! journaled before `OK: n`, re-sends answered without a second punch, bad lines
//! quarantined, unknown terminals not acknowledged, hostile bodies refused.

use std::sync::Arc;

use futures::StreamExt;
use std::time::Duration;

use iclock_sync::adms::receiver::{Receiver, Terminal};
use iclock_sync::ledger::{Ledger, SinkId, SinkRegistration, SqliteLedger};
use iclock_sync::normalize::Normalizer;
use iclock_sync::punch::{DeviceLabel, IdScheme};
use tempfile::TempDir;

struct Server {
    url: String,
    receiver: Arc<Receiver>,
    ledger: Arc<SqliteLedger>,
    sink: SinkId,
    client: reqwest::Client,
    _dir: TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(
        SqliteLedger::open(&dir.path().join("ledger.db"), false)
            .await
            .unwrap(),
    );
    let registered = ledger
        .register_sinks(
            &[SinkRegistration {
                name: "store".into(),
                target: "test".into(),
                identity: None,
            }],
            None,
        )
        .await
        .unwrap();
    let sink = registered[0].id;
    let receiver = Receiver::new(
        Arc::clone(&ledger) as Arc<dyn Ledger>,
        Normalizer {
            scheme: IdScheme::Native,
            max_future_skew: Duration::from_secs(600),
        },
        [Terminal {
            serial: "CQZ7224460246".into(),
            label: Arc::new(DeviceLabel {
                name: "Gate".into(),
                timezone: "Asia/Kolkata".parse().unwrap(),
            }),
            location: "main gate".into(),
        }],
    );
    receiver.set_sinks(vec![sink]);
    let mut receiver = receiver;
    receiver.body_limit = 64 * 1024;
    let receiver = Arc::new(receiver);
    let router = Arc::clone(&receiver).router();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        url,
        receiver,
        ledger,
        sink,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Server {
    async fn get(&self, path: &str) -> (u16, String, reqwest::header::HeaderMap) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (status, response.text().await.unwrap(), headers)
    }

    async fn post(&self, path: &str, body: impl Into<reqwest::Body>) -> (u16, String) {
        let response = self
            .client
            .post(format!("{}{path}", self.url))
            .body(body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// The punches queued for the sink: (PIN, local time, state).
    async fn queued(&self) -> Vec<(String, String, i32)> {
        self.ledger
            .due(self.sink, 0, 1000, None)
            .await
            .unwrap()
            .into_iter()
            .map(|queued| {
                (
                    queued.punch.user_id.clone(),
                    queued.punch.local_time_text(),
                    queued.punch.state,
                )
            })
            .collect()
    }
}

const UPLOAD: &str = "/iclock/cdata?SN=CQZ7224460246&table=ATTLOG&Stamp=120";

#[tokio::test]
async fn the_handshake_tells_the_terminal_its_zone_in_minutes_and_an_accurate_date() {
    let server = server().await;
    let (status, body, headers) = server
        .get("/iclock/cdata?SN=CQZ7224460246&options=all&pushver=2.4.1&language=69")
        .await;
    assert_eq!(status, 200);
    assert!(
        body.starts_with("GET OPTION FROM: CQZ7224460246\n"),
        "{body}"
    );
    assert!(body.contains("\nTimeZone=330\n"), "{body}");
    assert!(body.contains("\nATTLOGStamp=None\n"), "{body}");
    assert!(
        body.contains("\nTransFlag=TransData AttLog\tOpLog"),
        "{body}"
    );
    let content_type = headers[reqwest::header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let date = headers[reqwest::header::DATE].to_str().unwrap();
    let date = chrono::DateTime::parse_from_rfc2822(&date.replace("GMT", "+0000")).unwrap();
    let skew = (chrono::Utc::now() - date.with_timezone(&chrono::Utc)).num_seconds();
    assert!(skew.abs() <= 2, "Date header {date} is {skew} s off");
}

#[tokio::test]
async fn an_upload_is_journaled_before_ok_and_a_resend_adds_nothing() {
    let server = server().await;
    let body = "1383\t2026-09-15 09:00:00\t0\t15\t0\t0\t0\r\n\
                0042 2026-09-15 09:01:00 1 1 0 0 0\r\n\
                ATTLOG\t7\t1789443000\t0\t4\t0\n\
                7\tnot a time\t0\t1\n\
                \n";
    let (status, answer) = server.post(UPLOAD, body).await;
    assert_eq!((status, answer.as_str()), (200, "OK: 4"));
    assert_eq!(
        server.queued().await,
        vec![
            ("1383".into(), "2026-09-15 09:00:00".into(), 0),
            ("0042".into(), "2026-09-15 09:01:00".into(), 1),
            // Unix seconds 03:30 UTC, read in Asia/Kolkata.
            ("7".into(), "2026-09-15 09:00:00".into(), 0),
        ]
    );
    assert_eq!(server.ledger.quarantine_count().await.unwrap(), 1);

    // The terminal did not get the answer and sends the batch again, through another
    // spelling of the path.
    let (status, answer) = server
        .post(
            "/iclock/cdata.aspx?sn=CQZ7224460246&table=ATTLOG&Stamp=120",
            body,
        )
        .await;
    assert_eq!((status, answer.as_str()), (200, "OK: 4"));
    assert_eq!(server.queued().await.len(), 3);
    assert_eq!(server.ledger.quarantine_count().await.unwrap(), 1);

    // The next handshake resumes from the stamp acknowledged.
    let (_, options, _) = server
        .get("/iclock/cdata?SN=CQZ7224460246&options=all")
        .await;
    assert!(options.contains("\nATTLOGStamp=120\n"), "{options}");
    assert!(options.contains("\nStamp=120\n"), "{options}");
}

#[tokio::test]
async fn unknown_terminals_keep_their_data_and_other_paths_are_acknowledged() {
    let server = server().await;
    let (status, _) = server
        .post(
            "/iclock/cdata?SN=STRANGER&table=ATTLOG",
            "1\t2026-09-15 09:00:00\t0\t1",
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = server.post("/iclock/cdata?table=ATTLOG", "1").await;
    assert_eq!(status, 400);
    assert!(server.queued().await.is_empty());
    for path in [
        "/iclock/getrequest?SN=CQZ7224460246",
        "/iclock/getrequest.aspx?SN=CQZ7224460246&INFO=Ver%202.0.12,0,0,0,10.0.0.5",
        "/iclock/ping?SN=CQZ7224460246",
        "/iclock/registry?SN=CQZ7224460246",
        "/iclock/cdata?SN=CQZ7224460246&table=BIODATA&Stamp=5",
    ] {
        let (status, body) = server.post(path, "").await;
        assert_eq!((status, body.as_str()), (200, "OK"), "{path}");
    }
}

/// Bad percent-encoding, absurd serials and thousands of made-up ones: answered (never
/// a server error), the made-up ones noted up to a bound, and the real terminal's upload
/// goes through as ever.
#[tokio::test]
async fn hostile_queries_and_made_up_serials_leave_the_real_terminal_unaffected() {
    let server = server().await;
    let long_serial = "9".repeat(10_000);
    for path in [
        "/iclock/cdata?SN=CQZ7224460246%ZZ&table=ATTLOG%".to_owned(),
        "/iclock/cdata?SN=%FF%FE%00&options=all".to_owned(),
        "/iclock/cdata?SN=&&&==&table=%".to_owned(),
        format!("/iclock/cdata?SN={long_serial}&options=all"),
        "/iclock/%E0%A4%A/getrequest?SN=%%%".to_owned(),
    ] {
        let (status, _, _) = server.get(&path).await;
        assert!(status < 500, "{status} for {}", &path[..path.len().min(80)]);
    }
    let made_up = futures::stream::iter(0..3_000)
        .map(|index| {
            let server = &server;
            async move {
                server
                    .get(&format!("/iclock/cdata?SN=FAKE{index:05}&options=all"))
                    .await
                    .0
            }
        })
        .buffer_unordered(50)
        .collect::<Vec<u16>>()
        .await;
    assert!(made_up.iter().all(|status| *status < 500), "{made_up:?}");
    server.receiver.record_contacts().await;
    let held = server
        .ledger
        .device_standings()
        .await
        .unwrap()
        .into_iter()
        .filter(|device| device.name.starts_with("ADMS FAKE"))
        .count();
    assert!(
        (1..=1_000).contains(&held),
        "{held} made-up terminals noted"
    );

    let (status, answer) = server
        .post(UPLOAD, "1383\t2026-09-15 09:00:00\t0\t15\n")
        .await;
    assert_eq!((status, answer.as_str()), (200, "OK: 1"));
    assert_eq!(server.queued().await.len(), 1);
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused_and_bad_bytes_are_quarantined() {
    let server = server().await;
    let huge = vec![b'1'; 1024 * 1024];
    let (status, _) = server.post(UPLOAD, huge).await;
    assert_eq!(status, 413);
    let mut garbage = b"1383\t2026-09-15 09:00:00\t0\t15\n".to_vec();
    garbage.extend_from_slice(&[0xff, 0xfe, b'\t', 0x00, b'\n']);
    garbage.extend_from_slice(b"%zz\t\t\t\n");
    let (status, answer) = server.post(UPLOAD, garbage).await;
    assert_eq!((status, answer.as_str()), (200, "OK: 3"));
    assert_eq!(server.queued().await.len(), 1);
    assert_eq!(server.ledger.quarantine_count().await.unwrap(), 2);
}

#[tokio::test]
async fn names_come_from_user_lines_and_the_operation_logs_stamp_is_echoed() {
    let server = server().await;
    let operlog = "OPLOG 4\t0\t2026-09-15 09:00:00\t0\t0\t0\t0\n\
                   USER PIN=1001\tName=Aishath Shifa\tPri=0\tPasswd=\tCard=\tGrp=1\n\
                   FP PIN=1001\tFID=6\tSize=4\tValid=1\tTMP=AAAA\n";
    let (status, answer) = server
        .post(
            "/iclock/cdata?SN=CQZ7224460246&table=OPERLOG&OpStamp=77",
            operlog,
        )
        .await;
    assert_eq!((status, answer.as_str()), (200, "OK: 3"));
    let (status, answer) = server
        .post(
            "/iclock/cdata?SN=CQZ7224460246&table=USERINFO",
            "PIN=0042\tName=Mohamed\tPri=14\nPIN=1001\tName=Aishath S.\n",
        )
        .await;
    assert_eq!((status, answer.as_str()), (200, "OK: 2"));
    // A Chinese-language terminal writes names in GBK.
    let (status, _) = server
        .post(
            "/iclock/cdata?SN=CQZ7224460246&table=USERINFO",
            b"PIN=2002\tName=\xd5\xc5\xc8\xfd\n".to_vec(),
        )
        .await;
    assert_eq!(status, 200);
    let users: Vec<(String, String)> = server
        .ledger
        .terminal_users("CQZ7224460246")
        .await
        .unwrap()
        .into_iter()
        .map(|user| (user.pin, user.name))
        .collect();
    assert_eq!(
        users,
        [
            ("0042".to_owned(), "Mohamed".to_owned()),
            ("1001".to_owned(), "Aishath S.".to_owned()),
            ("2002".to_owned(), "张三".to_owned())
        ]
    );
    let (_, options, _) = server
        .get("/iclock/cdata?SN=CQZ7224460246&options=all")
        .await;
    assert!(options.contains("\nOPERLOGStamp=77\n"), "{options}");
    assert!(server.queued().await.is_empty());
}
