//! A throwaway certificate authority for tests that go through real TLS handshakes:
//! servers here present a certificate it signed for 127.0.0.1 and localhost, and the
//! binary trusts it the way a user would make it trust a private CA — through
//! `SSL_CERT_FILE` or a `ca_file` key.

use std::path::{Path, PathBuf};

use iclock_sync::tls::ServerTls;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};

pub struct TestCa {
    /// The CA's certificate as PEM, what a client must trust.
    pub pem: String,
    /// The server identity it signed for 127.0.0.1 and localhost.
    pub server: ServerTls,
    /// The same, as PEM files' contents, for servers run as their own process.
    pub server_certificate_pem: String,
    pub server_key_pem: String,
}

impl TestCa {
    pub fn new() -> TestCa {
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "iclock-sync test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer =
            CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("CA key")).expect("CA");
        let mut leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server params");
        leaf.distinguished_name
            .push(DnType::CommonName, "iclock-sync test server");
        let leaf_key = KeyPair::generate().expect("server key");
        let certificate = leaf
            .signed_by(&leaf_key, &issuer)
            .expect("server certificate");
        let server = ServerTls::from_pem(
            certificate.pem().as_bytes(),
            leaf_key.serialize_pem().as_bytes(),
        )
        .expect("server TLS");
        TestCa {
            pem: issuer.pem(),
            server,
            server_certificate_pem: certificate.pem(),
            server_key_pem: leaf_key.serialize_pem(),
        }
    }

    /// Writes the CA certificate to `dir/ca.pem` and returns its path.
    pub fn write_to(&self, dir: &Path) -> PathBuf {
        let path = dir.join("ca.pem");
        std::fs::write(&path, &self.pem).expect("write ca.pem");
        path
    }
}

/// Serves `router` over HTTPS with the CA's server certificate on a free loopback
/// port; returns `https://127.0.0.1:PORT`.
pub async fn serve_https(ca: &TestCa, router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(iclock_sync::tls::serve(
        listener,
        router,
        Some(ca.server.clone()),
    ));
    format!("https://{address}")
}
