//! The MongoDB sink against a real MongoDB-wire server (SecantusDB, see
//! `support::mongo`): the exact documents, field by field and BSON type by type, for
//! devices in two time zones across a DST change; nothing written twice; the server
//! killed and restarted mid-run.

use mongodb::bson::{Bson, DateTime};

use crate::database_sinks::{EXPECTED, id_of, one_punch_into, sink_report, two_sites_synced_twice};
use crate::support::mongo::MongoServer;
use crate::support::wall;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_gets_each_punch_once_field_by_field_across_time_zones_and_dst() {
    let server = MongoServer::start().await;
    two_sites_synced_twice(
        &format!("[sink.mongodb]\nurl = \"{}\"\n", server.url("attendance")),
        "mongodb",
    )
    .await;

    let mut documents = server.documents("attendance", "punches").await;
    assert_eq!(documents.len(), EXPECTED.len());
    documents.sort_by_key(|document| {
        (
            document.get_str("user_id").unwrap_or_default().to_owned(),
            document
                .get_str("device_serial")
                .unwrap_or_default()
                .to_owned(),
            document
                .get_datetime("utc_time")
                .map(|date| date.timestamp_millis())
                .unwrap_or(0),
        )
    });
    let now = chrono::Utc::now().timestamp_millis();
    for (document, (pin, serial, local, utc, zone, state)) in documents.iter().zip(EXPECTED) {
        let text = |key: &str| match document.get(key) {
            Some(Bson::String(text)) => text.clone(),
            other => panic!("{key} is not a string: {other:?} in {document}"),
        };
        let date = |key: &str| match document.get(key) {
            Some(Bson::DateTime(date)) => *date,
            other => panic!("{key} is not a BSON date: {other:?} in {document}"),
        };
        let int = |key: &str| match document.get(key) {
            Some(Bson::Int32(number)) => *number,
            other => panic!("{key} is not a 32-bit integer: {other:?} in {document}"),
        };
        assert_eq!(text("_id"), id_of(serial, pin, local, *state));
        assert_eq!(text("user_id"), *pin);
        assert_eq!(text("device_serial"), *serial);
        assert_eq!(
            text("device_name"),
            if zone.starts_with("Asia") {
                "Delhi"
            } else {
                "New York"
            }
        );
        assert_eq!(text("local_time"), *local);
        assert_eq!(
            date("utc_time"),
            DateTime::from_millis(wall(utc).and_utc().timestamp_millis()),
            "UTC instant of {pin} {local} in {zone}"
        );
        assert_eq!(text("timezone"), *zone);
        assert_eq!(int("punch_state"), *state);
        assert_eq!(int("verify_mode"), 15);
        assert_eq!(text("work_code"), "7");
        assert_eq!(text("source"), "biotime");
        assert!(text("source_key").starts_with("biotime:"));
        let received = date("received_at").timestamp_millis();
        let delivered = date("delivered_at").timestamp_millis();
        assert!(received <= delivered && delivered <= now, "{document}");
        assert!(now - received < 5 * 60 * 1000);
        assert_eq!(document.len(), 14, "no other fields: {document}");
    }
}

/// TLS through a real handshake: the server's certificate is signed by a test CA that
/// the URL names (`tlsCAFile`); with another CA the handshake fails, clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongodb_over_tls_trusts_the_ca_the_url_names_and_no_other() {
    let ca = crate::support::tls::TestCa::new();
    let server = MongoServer::start_tls(&ca).await;
    // One punch waiting; the sink is configured below, once the CA files are written.
    let (workspace, site) = one_punch_into("").await;
    let trusted = ca.write_to(&workspace.path(""));
    let other = crate::support::tls::TestCa::new();
    let untrusted = workspace.path("other-ca.pem");
    std::fs::write(&untrusted, &other.pem).expect("write");
    let sink = |ca: &std::path::Path| {
        format!(
            "[sink.mongodb]\nurl = \"mongodb://127.0.0.1:{}/attendance?tls=true&tlsCAFile={}&serverSelectionTimeoutMS=3000\"\n",
            server.port,
            ca.display()
        )
    };
    workspace.configure(&[site.url()], "", &sink(&untrusted));
    let refused = workspace.sync(&[], 1).await;
    let report = sink_report(&refused.summary(), "mongodb");
    assert_eq!(report["pending"], 1, "{report}");
    assert!(
        report["down"]
            .as_str()
            .unwrap_or_default()
            .to_lowercase()
            .contains("certificate"),
        "the handshake failure is named: {report}"
    );

    workspace.configure(&[site.url()], "", &sink(&trusted));
    let run = workspace.sync(&[], 0).await;
    assert_eq!(sink_report(&run.summary(), "mongodb")["delivered"], 1);
}
