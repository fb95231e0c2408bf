//! TLS for the whole binary: one crypto provider, extra trusted CAs for clients, and
//! HTTPS for what we serve (the simulators, later the service's listeners).
//!
//! Several libraries we link (reqwest, gcp_auth, tonic through the firestore crate) use
//! rustls, and between them they compile in more than one crypto backend. rustls then
//! refuses to guess which is the process default and panics the first time a TLS
//! client is built without one — which a real Firestore key did at start, while every
//! emulator test (plain HTTP) passed. So [`install_crypto_provider`] installs aws-lc-rs
//! (reqwest's own choice) before anything else runs.
//!
//! Trust: certificates are checked against the system's roots, which honour
//! `SSL_CERT_FILE` / `SSL_CERT_DIR`, plus any `ca_file` a device or sink names.

use std::path::Path;
use std::sync::Arc;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;

/// Makes aws-lc-rs the process's rustls crypto provider. Call first thing in `main`
/// (and in tests that build TLS clients or servers in-process); later calls do nothing.
pub fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The certificates in a PEM file (a `ca_file`), for an HTTP client to trust besides
/// the system's roots. The error says what is wrong with the file.
pub fn trusted_certificates(path: &Path) -> Result<Vec<reqwest::Certificate>, String> {
    let text = std::fs::read(path)
        .map_err(|error| format!("cannot read the CA file {}: {error}", path.display()))?;
    let certificates = reqwest::Certificate::from_pem_bundle(&text).map_err(|error| {
        format!(
            "the CA file {} is not PEM certificates: {error}",
            path.display()
        )
    })?;
    if certificates.is_empty() {
        return Err(format!(
            "the CA file {} holds no certificate (expected -----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certificates)
}

/// A certificate and key to serve HTTPS with.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// From PEM files: the certificate chain (server first) and its private key.
    pub fn from_files(certificate: &Path, key: &Path) -> Result<ServerTls, String> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
        };
        ServerTls::from_pem(&read(certificate)?, &read(key)?)
    }

    /// HTTPS as a section of the configuration asks (`files`: its `tls_cert`, `tls_key`),
    /// or what is wrong, naming `section` of the file `origin`.
    pub fn configured(
        files: Option<&(std::path::PathBuf, std::path::PathBuf)>,
        origin: &str,
        section: &str,
    ) -> Result<Option<ServerTls>, String> {
        files
            .map(|(cert, key)| {
                ServerTls::from_files(cert, key).map_err(|problem| {
                    format!(
                        "{origin}: {section} tls_cert / tls_key: {problem} — give the PEM certificate chain and its private key"
                    )
                })
            })
            .transpose()
    }

    /// The TLS handshake on an accepted connection.
    pub async fn accept(
        &self,
        stream: tokio::net::TcpStream,
    ) -> std::io::Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>> {
        self.acceptor.accept(stream).await
    }

    pub fn from_pem(certificate: &[u8], key: &[u8]) -> Result<ServerTls, String> {
        install_crypto_provider();
        let chain = CertificateDer::pem_slice_iter(certificate)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| format!("the certificate is not PEM: {error}"))?;
        if chain.is_empty() {
            return Err("the certificate file holds no certificate".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key)
            .map_err(|error| format!("the key is not a PEM private key: {error}"))?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|error| {
                format!("the certificate and key do not make a TLS identity: {error}")
            })?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }
}

/// Serves `router` on `listener`, over TLS when `tls` is given; runs until dropped.
/// Without TLS it ends only if axum's server fails.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<ServerTls>,
) -> std::io::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, router).await;
    };
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors and the like: wait, then go on accepting.
            Err(error) => {
                tracing::warn!("cannot accept a connection: {error}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = tls.acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        tokio::spawn(async move {
            // A client that fails the handshake (an untrusting one, a port scan)
            // affects only its own connection.
            let Ok(stream) = acceptor.accept(stream).await else {
                return;
            };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
