//! BioTime and Frappe over HTTPS, through real TLS handshakes: the simulators serve a
//! certificate from a test CA, which the binary trusts the two ways a user can make it
//! trust a private CA — `ca_file` in the configuration, or `SSL_CERT_FILE`. And
//! credentials never follow a redirect to another address.

use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::any;
use iclock_sync::simulate::biotime::BiotimeSimulator;
use iclock_sync::simulate::frappe::FrappeSimulator;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::frappe::{SECRET, site};
use crate::support::tls::TestCa;
use crate::support::{Workspace, options, punches, row, simulator, wall_time_ago};

async fn biotime_over_https(ca: &TestCa, count: u64) -> BiotimeSimulator {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    BiotimeSimulator::start_with_tls(
        listener,
        Some(ca.server.clone()),
        options(),
        punches(count, 61),
    )
    .await
    .expect("the BioTime simulator starts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn biotime_over_https_is_read_when_its_ca_is_trusted_through_ca_file() {
    let ca = TestCa::new();
    let sim = biotime_over_https(&ca, 120).await;
    assert!(sim.url().starts_with("https://"));
    let workspace = Workspace::new();
    ca.write_to(workspace.dir.path());

    workspace.configure(&[sim.url()], "", "");
    let untrusted = workspace.run(&["--json"]).await;
    assert_eq!(untrusted.code, Some(1), "{}", untrusted.all_output());
    let message = untrusted.device(0)["error"]["message"].to_string();
    assert!(message.contains("certificate"), "{message}");

    workspace.configure(&[sim.url()], "ca_file = \"ca.pem\"", "");
    let run = workspace.sync(&[], 0).await;
    assert_eq!(run.device(0)["delivered"], 120);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frappe_over_https_is_written_when_its_ca_is_trusted_through_ssl_cert_file() {
    let ca = TestCa::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let frappe = FrappeSimulator::start_with_tls(
        listener,
        Some(ca.server.clone()),
        site(),
        Default::default(),
    )
    .await
    .expect("the Frappe simulator starts");
    let now = wall_time_ago(chrono::Duration::minutes(5));
    let sim = simulator(options(), Vec::new()).await;
    sim.upload(vec![row("1001", &now, 0), row("1002", &now, 1)]);
    let workspace = Workspace::new();
    ca.write_to(workspace.dir.path());
    workspace.configure(&[sim.url()], "", &crate::support::frappe::sink(&frappe, ""));

    let run = workspace
        .run_with_env(
            &["--json"],
            &[("FRAPPE_SECRET", SECRET), ("SSL_CERT_FILE", "ca.pem")],
        )
        .await;

    assert_eq!(run.code, Some(0), "{}", run.all_output());
    assert_eq!(frappe.checkins().len(), 2);
}

/// Counts requests, and answers every one with a redirect to `target`.
async fn redirecting_server(status: StatusCode, target: String) -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let router = axum::Router::new().fallback(any(move || {
        let target = target.clone();
        counted.fetch_add(1, Ordering::SeqCst);
        async move { (status, [("location", target)]).into_response() }
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, hits)
}

/// A BioTime address that answers the login with 307 to another host: the password
/// must not be sent there, and the error names the target.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_redirected_to_another_host_is_not_followed_and_names_the_target() {
    let (collector, collected) = redirecting_server(StatusCode::OK, String::new()).await;
    let (url, hits) =
        redirecting_server(StatusCode::TEMPORARY_REDIRECT, format!("{collector}/steal")).await;
    let workspace = Workspace::new();
    workspace.configure(&[url], "", "");

    let run = workspace.run(&["--json"]).await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    let message = run.device(0)["error"]["message"].to_string();
    assert!(message.contains("redirected to"), "{message}");
    assert!(message.contains(&format!("{collector}/steal")), "{message}");
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one login attempt");
    assert_eq!(
        collected.load(Ordering::SeqCst),
        0,
        "the password went to the redirect's target"
    );
}

/// A Frappe site that redirects its API to another host: the key is not sent there,
/// and the sink stops with the target named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frappe_redirecting_to_another_host_gets_no_api_key() {
    let (collector, collected) = redirecting_server(StatusCode::OK, String::new()).await;
    let (url, _) =
        redirecting_server(StatusCode::MOVED_PERMANENTLY, format!("{collector}/api")).await;
    let now = wall_time_ago(chrono::Duration::minutes(5));
    let sim = simulator(options(), Vec::new()).await;
    sim.upload(vec![row("1001", &now, 0)]);
    let workspace = Workspace::new();
    workspace.configure(
        &[sim.url()],
        "",
        &format!(
            "[sink.frappe]\nurl = \"{url}\"\napi_key = \"sync-key\"\napi_secret = \"${{FRAPPE_SECRET}}\"\n"
        ),
    );

    let run = workspace
        .run_with_env(&["--json"], &[("FRAPPE_SECRET", SECRET)])
        .await;

    assert_eq!(run.code, Some(2), "{}", run.all_output());
    assert!(
        run.stderr
            .contains(&format!("redirected to {collector}/api")),
        "{}",
        run.stderr
    );
    assert_eq!(collected.load(Ordering::SeqCst), 0);
}
