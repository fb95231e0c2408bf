//! Where Firestore credentials come from, tested offline and through the production
//! path: a service-account key whose `token_uri` points at a token endpoint served here
//! over HTTPS (a test CA, trusted through `SSL_CERT_FILE` as a user would) makes
//! gcp_auth perform the real signed-JWT exchange over a real TLS handshake; the endpoint
//! verifies the assertion against the key's public half before handing out the
//! emulator's admin token, and the emulator plays Firestore behind `endpoint`. And the
//! Python tool's `.env`, key and cache carried over unchanged.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::support::firestore::{Emulator, id_of, typed};
use crate::support::tls::{TestCa, serve_https};
use crate::support::zk::{layout, profile, terminal};
use crate::support::{Workspace, options, punches, simulator};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use base64::Engine;
use iclock_sync::punch::PunchId;
use iclock_sync::simulate::zk::ZkSimulator;
use iclock_sync::source::zk::TransportKind;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::{Value, json};

const PRIVATE_KEY: &str = include_str!("fixtures/test-service-account.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("fixtures/test-service-account.pub.der");
const CLIENT_EMAIL: &str = "sync@iclock-credentials-test.iam.gserviceaccount.com";

/// Counts token exchanges whose assertion is signed by the fixture key.
#[derive(Default)]
struct TokenEndpoint {
    verified: AtomicUsize,
    refused: AtomicUsize,
}

/// Answers as Google's endpoint does: a token for a good assertion, 400 invalid_grant
/// for any other.
async fn token(
    State(endpoint): State<Arc<TokenEndpoint>>,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    let form: std::collections::HashMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let assertion = form.get("assertion").cloned().unwrap_or_default();
    let verified = form.get("grant_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        && verify(&assertion);
    if verified {
        endpoint.verified.fetch_add(1, Ordering::SeqCst);
        // The emulator takes "owner" as its administrator's token.
        let token = json!({"access_token": "owner", "token_type": "Bearer", "expires_in": 3600});
        (StatusCode::OK, axum::Json(token))
    } else {
        endpoint.refused.fetch_add(1, Ordering::SeqCst);
        let refusal =
            json!({"error": "invalid_grant", "error_description": "Invalid JWT Signature."});
        (StatusCode::BAD_REQUEST, axum::Json(refusal))
    }
}

/// The JWT is signed by the fixture key and says who and for what. gcp_auth pads its
/// base64 segments, which Google's endpoint accepts, so padding is optional here too.
fn verify(assertion: &str) -> bool {
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::URL_SAFE,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let Some((signed, signature)) = assertion.rsplit_once('.') else {
        return false;
    };
    let Ok(signature) = engine.decode(signature) else {
        return false;
    };
    if UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, PUBLIC_KEY)
        .verify(signed.as_bytes(), &signature)
        .is_err()
    {
        return false;
    }
    let claims: Value = signed
        .split('.')
        .nth(1)
        .and_then(|payload| engine.decode(payload).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    claims["iss"] == CLIENT_EMAIL
        && claims["scope"]
            .as_str()
            .is_some_and(|scope| scope.contains("datastore"))
}

/// The token endpoint over HTTPS; the workspace gets the CA to trust as `ca.pem`.
async fn token_endpoint(workspace: &Workspace) -> (Arc<TokenEndpoint>, String) {
    let endpoint = Arc::new(TokenEndpoint::default());
    let router = axum::Router::new()
        .route("/token", post(token))
        .with_state(Arc::clone(&endpoint));
    let ca = TestCa::new();
    ca.write_to(workspace.dir.path());
    let url = serve_https(&ca, router).await;
    (endpoint, format!("{url}/token"))
}

/// What a user sets to trust a private CA.
const TRUST_TEST_CA: (&str, &str) = ("SSL_CERT_FILE", "ca.pem");

fn service_account_key(token_uri: &str) -> String {
    service_account_key_of(CLIENT_EMAIL, token_uri)
}

fn service_account_key_of(client_email: &str, token_uri: &str) -> String {
    json!({
        "type": "service_account",
        "project_id": "iclock-credentials-test",
        "private_key_id": "test",
        "private_key": PRIVATE_KEY,
        "client_email": client_email,
        "client_id": "1",
        "token_uri": token_uri,
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_account_key_named_by_firebase_key_is_exchanged_for_a_token_over_tls() {
    let emulator = Emulator::start().await;
    let sim = simulator(options(), punches(40, 81)).await;
    let workspace = Workspace::new();
    let (endpoint, token_uri) = token_endpoint(&workspace).await;
    workspace.write("keys/school.json", &service_account_key(&token_uri));
    workspace.configure(
        &[sim.url()],
        "",
        &format!(
            "[sink.firestore]\nendpoint = \"http://{}\"\n",
            emulator.host()
        ),
    );

    let run = workspace
        .run_with_env(
            &["--json"],
            &[("FIREBASE_KEY", "keys/school.json"), TRUST_TEST_CA],
        )
        .await;

    assert_eq!(run.code, Some(0), "{}", run.all_output());
    assert!(
        endpoint.verified.load(Ordering::SeqCst) >= 1,
        "no verified token exchange"
    );
    assert_eq!(endpoint.refused.load(Ordering::SeqCst), 0);
    assert_eq!(
        run.summary()["sinks"][0]["target"],
        format!(
            "project iclock-credentials-test, endpoint http://{}, collection attendancePunches",
            emulator.host()
        )
    );
    let documents = emulator
        .documents("iclock-credentials-test", "attendancePunches")
        .await;
    assert_eq!(documents.len(), 40, "the project comes from the key file");
    assert!(
        !run.all_output().contains("PRIVATE KEY"),
        "the key never appears in output"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_tools_env_key_and_cache_carry_on_unchanged() {
    let emulator = Emulator::start().await;
    let sim: ZkSimulator = terminal(
        TransportKind::Tcp,
        profile("SNPYTHON", layout(40), 0),
        200,
        0,
        82,
    )
    .await;
    let workspace = Workspace::new();
    let (endpoint, token_uri) = token_endpoint(&workspace).await;
    // Exactly what the Python tool's directory holds: its .env (read by python-dotenv,
    // so names may have spaces), its key at the default path, its cache.
    workspace.write(
        ".env",
        &format!(
            "DEVICE_IPS={}\nDEVICE_NAMES=Main Office\nDEVICE_PORT={}\nFIRESTORE_EMULATOR_HOST={}\n",
            sim.address().ip(),
            sim.address().port(),
            emulator.host()
        ),
    );
    workspace.write("config/firebase-key.json", &service_account_key(&token_uri));
    let first = &sim.records()[0];
    let iclock_sync::source::zk::codec::attendance::Identity::Pin(pin) = &first.identity else {
        panic!("40-byte records carry the PIN")
    };
    let uploaded_by_python =
        PunchId::legacy_md5(pin, first.time.to_datetime().unwrap()).into_string();
    workspace.write(
        "cache/uploaded_ids_cache.json",
        &format!("[\n    \"{uploaded_by_python}\"\n]"),
    );

    let run = workspace.sync(&[], 0).await;

    assert_eq!(run.device(0)["name"], "Main Office");
    assert_eq!(
        run.device(0)["already"],
        1,
        "the Python tool's cache is honoured"
    );
    assert_eq!(run.device(0)["delivered"], 199);
    // With FIRESTORE_EMULATOR_HOST set, the emulator is used as firebase-admin uses it:
    // the key names the project, and its token endpoint is never asked.
    assert_eq!(
        endpoint.verified.load(Ordering::SeqCst) + endpoint.refused.load(Ordering::SeqCst),
        0,
        "the key's token endpoint was asked although the emulator is configured"
    );
    let documents = emulator
        .documents("iclock-credentials-test", "staffAttendanceLogs")
        .await;
    assert_eq!(documents.len(), 199);
    assert!(documents.iter().all(|d| id_of(d) != uploaded_by_python));
    assert!(
        documents
            .iter()
            .all(|d| typed(d, "staffId").0 == "stringValue")
    );
    let cache: Vec<String> =
        serde_json::from_str(&workspace.read("cache/uploaded_ids_cache.json")).unwrap();
    assert_eq!(
        cache.len(),
        200,
        "the cache stays in the Python tool's format, now complete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_the_token_endpoint_refuses_is_reported_at_once_and_nothing_is_cached() {
    let emulator = Emulator::start().await;
    let sim = simulator(options(), punches(30, 83)).await;
    let workspace = Workspace::new();
    let (endpoint, token_uri) = token_endpoint(&workspace).await;
    // A key whose account has been deleted: correctly signed, refused all the same.
    workspace.write(
        "keys/school.json",
        &service_account_key_of(
            "deleted@iclock-credentials-test.iam.gserviceaccount.com",
            &token_uri,
        ),
    );
    // Were the refusal taken for an outage, the run would retry for two minutes and
    // then report Firestore unreachable.
    workspace.configure(
        &[sim.url()],
        "",
        &format!(
            "[sink.firestore]\nendpoint = \"http://{}\"\nretry_for = \"2m\"\n",
            emulator.host()
        ),
    );

    let run = workspace
        .run_with_env(
            &["--json"],
            &[("FIREBASE_KEY", "keys/school.json"), TRUST_TEST_CA],
        )
        .await;

    assert_eq!(run.code, Some(1), "{}", run.all_output());
    let output = run.all_output();
    assert!(
        output.contains(
            "cannot get a Google access token with the service-account key keys/school.json"
        ),
        "{output}"
    );
    assert!(
        output.contains("the token endpoint refused the key"),
        "{output}"
    );
    assert!(!output.contains("unreachable"), "{output}");
    assert!(
        !output.contains("PRIVATE KEY"),
        "the key never appears in output"
    );
    assert!(endpoint.refused.load(Ordering::SeqCst) >= 1);
    assert_eq!(endpoint.verified.load(Ordering::SeqCst), 0);
    assert_eq!(run.device(0)["delivered"], 0);
    assert!(
        emulator
            .documents("iclock-credentials-test", "attendancePunches")
            .await
            .is_empty()
    );

    // The key is replaced with a good one: the next run delivers all 30.
    workspace.write("keys/school.json", &service_account_key(&token_uri));
    let again = workspace
        .run_with_env(
            &["--json"],
            &[("FIREBASE_KEY", "keys/school.json"), TRUST_TEST_CA],
        )
        .await;
    assert_eq!(again.code, Some(0), "{}", again.all_output());
    assert_eq!(again.device(0)["delivered"], 30);
    assert_eq!(
        emulator
            .documents("iclock-credentials-test", "attendancePunches")
            .await
            .len(),
        30
    );
}

/// The review's reproduction: the Python tool's `.env` and a real key whose
/// `token_uri` is HTTPS, no emulator. The binary once panicked here (exit 101) because
/// two rustls crypto providers were compiled in and none was chosen; now it sets up TLS
/// and reports, with the fix, that Firestore cannot be reached from this sandbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_key_without_the_emulator_sets_up_tls_instead_of_panicking() {
    let sim: ZkSimulator = terminal(
        TransportKind::Tcp,
        profile("SNTLS", layout(40), 0),
        20,
        0,
        84,
    )
    .await;
    let workspace = Workspace::new();
    let (_endpoint, token_uri) = token_endpoint(&workspace).await;
    workspace.write(
        ".env",
        &format!(
            "DEVICE_IPS={}\nDEVICE_NAMES=Main Office\nDEVICE_PORT={}\n",
            sim.address().ip(),
            sim.address().port(),
        ),
    );
    workspace.write("config/firebase-key.json", &service_account_key(&token_uri));

    let run = workspace.run_with_env(&["--json"], &[TRUST_TEST_CA]).await;

    let output = run.all_output();
    assert!(!output.contains("panicked"), "{output}");
    assert!(!output.contains("CryptoProvider"), "{output}");
    assert_ne!(run.code, Some(101), "{output}");
    assert!(output.contains("firestore"), "{output}");
    assert!(!output.contains("PRIVATE KEY"), "{output}");
}
