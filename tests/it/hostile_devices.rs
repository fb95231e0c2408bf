//! Devices and servers that are broken or hostile (a terminal or a server on the LAN can
//! be either): whatever they send, a read is bounded in time and memory, the device is
//! named with what went wrong, what was read is delivered, and a terminal is enabled
//! again afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use iclock_sync::simulate::zk::ChunkFault;
use iclock_sync::source::zk::TransportKind;
use serde_json::json;

use crate::support::Workspace;
use crate::support::zk::{device, layout, profile, terminal};

/// A ZK terminal that answers every chunk read with `fault`; its read ends within the
/// bounds, names the terminal, and leaves it enabled.
async fn misbehaving_terminal(fault: ChunkFault, device_keys: &str) -> (String, bool, Duration) {
    let mut hostile = profile("SNHOSTILE", layout(40), 0);
    hostile.chunk_fault = Some(fault);
    let sim = terminal(TransportKind::Tcp, hostile, 3_000, 0, 5).await;
    let workspace = Workspace::new();
    workspace.write("iclock-sync.toml", &device("Gate", &sim, device_keys));

    let started = Instant::now();
    let run = workspace.run(&["--json"]).await;
    let took = started.elapsed();

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    let message = run.device(0)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("device 'Gate'"), "{message}");
    (message, sim.is_enabled(), took)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_flooding_data_after_a_chunk_read_is_cut_off_at_the_chunk() {
    let (message, enabled, took) =
        misbehaving_terminal(ChunkFault::Flood, "timeout = \"3s\"").await;
    assert!(message.contains("than the"), "{message}");
    assert!(message.contains("bytes asked for"), "{message}");
    assert!(enabled, "the terminal is enabled again");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_terminal_dripping_a_packet_every_two_seconds_is_stopped_at_its_deadline() {
    let (message, enabled, took) = misbehaving_terminal(
        ChunkFault::Drip(Duration::from_secs(2)),
        "timeout = \"3s\"\nmax_read_time = \"6s\"",
    )
    .await;
    assert!(
        message.contains("no answer within") || message.contains("max_read_time (6.0 s)"),
        "{message}"
    );
    assert!(enabled, "the terminal is enabled again");
    assert!(took < Duration::from_secs(30), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_megabyte_serial_number_is_refused_not_copied_into_every_punch() {
    let serial = "S".repeat(3 * 1024 * 1024);
    let sim = terminal(
        TransportKind::Tcp,
        profile(&serial, layout(40), 0),
        100,
        0,
        6,
    )
    .await;
    let workspace = Workspace::new();
    workspace.write("iclock-sync.toml", &device("Gate", &sim, ""));

    let run = workspace.run(&["--json"]).await;

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    let message = run.device(0)["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("serial number is 3145728 characters long"),
        "{message}"
    );
    assert!(
        message.len() < 1_000,
        "the serial is not repeated in the message"
    );
    assert_eq!(workspace.stored_punches().await.len(), 0);
}

/// What a hostile BioTime server does.
#[derive(Clone, Copy)]
enum Hostility {
    /// Logs in with a token that lives for ever, its `Date` in 1970.
    EternalToken,
    /// `next` links that count on for ever, every page the same rows.
    EndlessPages,
    /// A transactions page that never ends.
    EndlessBody,
    /// A small gzip body that inflates to 100 MB.
    GzipBomb,
    /// A page whose rows hold a 3 MB PIN and a PIN with a right-to-left override.
    PoisonedRows,
}

fn token(claims: serde_json::Value) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.signature",
        engine.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
        engine.encode(claims.to_string())
    )
}

fn rows(pins: &[&str]) -> Vec<serde_json::Value> {
    let now = chrono::Local::now().naive_local() - chrono::Duration::minutes(10);
    pins.iter()
        .enumerate()
        .map(|(index, pin)| {
            json!({
                "id": index + 1,
                "emp_code": pin,
                "punch_time": (now + chrono::Duration::seconds(index as i64)).format("%Y-%m-%d %H:%M:%S").to_string(),
                "punch_state": "0",
                "verify_type": 1,
                "terminal_sn": "SNBIO",
                "upload_time": now.format("%Y-%m-%d %H:%M:%S").to_string(),
            })
        })
        .collect()
}

/// A hostile BioTime on a free port; returns its URL and how many pages it served.
async fn hostile_biotime(hostility: Hostility) -> (String, Arc<AtomicUsize>) {
    let pages = Arc::new(AtomicUsize::new(0));
    let served = Arc::clone(&pages);
    let login = move || async move {
        let (exp, date) = match hostility {
            Hostility::EternalToken => (json!(1e19), "Thu, 01 Jan 1970 00:00:00 GMT"),
            _ => (
                json!(chrono::Utc::now().timestamp() + 300),
                "Mon, 01 Jan 2024 00:00:00 GMT",
            ),
        };
        let mut headers = HeaderMap::new();
        headers.insert(header::DATE, date.parse().unwrap());
        (
            headers,
            axum::Json(json!({ "token": token(json!({ "exp": exp })) })),
        )
    };
    let transactions = move |uri: axum::http::Uri| {
        let served = Arc::clone(&served);
        async move {
            let page = served.fetch_add(1, Ordering::SeqCst) + 1;
            page_of(hostility, page, &uri)
        }
    };
    let router = axum::Router::new()
        .route("/jwt-api-token-auth/", post(login))
        .route("/iclock/api/transactions/", get(transactions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, pages)
}

fn page_of(hostility: Hostility, page: usize, uri: &axum::http::Uri) -> Response {
    let json_page = |data: Vec<serde_json::Value>, next: Option<String>| {
        axum::Json(json!({ "count": data.len(), "next": next, "previous": null, "data": data }))
            .into_response()
    };
    match hostility {
        Hostility::EternalToken => json_page(rows(&["1001", "1002", "1003"]), None),
        Hostility::EndlessPages => {
            let next = format!("http://10.0.0.1/iclock/api/transactions/?page={}", page + 1);
            let _ = uri;
            json_page(rows(&["1001", "1002", "1003"]), Some(next))
        }
        Hostility::EndlessBody => {
            let start = futures::stream::once(async {
                Ok::<_, std::io::Error>(Bytes::from_static(b"{\"count\": 1, \"data\": ["))
            });
            let filler = futures::stream::repeat_with(|| Ok(Bytes::from(vec![b' '; 64 * 1024])));
            let body = Body::from_stream(futures::StreamExt::chain(start, filler));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Hostility::GzipBomb => {
            use std::io::Write;
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            encoder.write_all(b"{\"count\": 1, \"data\": [").unwrap();
            let spaces = vec![b' '; 1024 * 1024];
            for _ in 0..100 {
                encoder.write_all(&spaces).unwrap();
            }
            let compressed = encoder.finish().unwrap();
            (
                [
                    (header::CONTENT_TYPE, "application/json"),
                    (header::CONTENT_ENCODING, "gzip"),
                ],
                compressed,
            )
                .into_response()
        }
        Hostility::PoisonedRows => {
            let long = "9".repeat(3 * 1024 * 1024);
            json_page(rows(&["1001", &long, "\u{202E}1003", "1004"]), None)
        }
    }
}

fn configured(url: &str) -> Workspace {
    let workspace = Workspace::new();
    workspace.configure(&[url.to_owned()], "timeout = \"10s\"", "");
    workspace
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_claims_to_live_for_ever_is_used_without_overflow() {
    let (url, _) = hostile_biotime(Hostility::EternalToken).await;
    let workspace = configured(&url);

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["delivered"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn next_links_that_count_on_with_the_same_rows_stop_at_the_first_repeat() {
    let (url, pages) = hostile_biotime(Hostility::EndlessPages).await;
    let workspace = configured(&url);

    let run = workspace.run(&["--json"]).await;

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    let message = run.device(0)["error"]["message"].to_string();
    assert!(
        message.contains("sent rows it had already sent"),
        "{message}"
    );
    assert_eq!(pages.load(Ordering::SeqCst), 2);
    assert_eq!(run.device(0)["delivered"], 3, "what was read is delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_page_and_a_gzip_bomb_are_read_only_to_the_ceiling() {
    for hostility in [Hostility::EndlessBody, Hostility::GzipBomb] {
        let (url, _) = hostile_biotime(hostility).await;
        let workspace = configured(&url);
        let started = Instant::now();

        let run = workspace.run(&["--json"]).await;

        assert_eq!(run.code, Some(1), "{}", run.all_output());
        let message = run.device(0)["error"]["message"].to_string();
        assert!(message.contains("larger than 32 MB"), "{message}");
        assert!(started.elapsed() < Duration::from_secs(60));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_pin_and_a_reordering_pin_are_quarantined_and_the_rest_delivered() {
    let (url, _) = hostile_biotime(Hostility::PoisonedRows).await;
    let workspace = configured(&url);

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["delivered"], 2);
    assert_eq!(run.device(0)["quarantined"], 2);
    let quarantine = workspace.read("output/quarantine.jsonl");
    assert!(
        quarantine.contains("the PIN is 3145728 characters long"),
        "{quarantine}"
    );
    assert!(quarantine.contains("U+202E"), "{quarantine}");
    assert!(
        quarantine.len() < 20_000,
        "the quarantine keeps an excerpt, not megabytes"
    );
    let _ = StatusCode::OK;
}
