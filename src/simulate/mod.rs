//! Device simulators: real servers on local ports that behave as the protocol notes in
//! `docs/` record, used by `demo`, the integration tests and the benchmarks.
//! They share no parsing code with the connectors, so a connector bug is not mirrored
//! by the simulator and hidden.

pub mod adms;
pub mod biotime;
pub mod frappe;
pub mod random;
pub mod zk;

use std::path::PathBuf;

use crate::tls::ServerTls;

/// `--tls-cert` / `--tls-key`: serve HTTPS, to try a setup with certificates.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl TlsArgs {
    pub fn server_tls(&self) -> Result<Option<ServerTls>, String> {
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => ServerTls::from_files(cert, key).map(Some),
            _ => Ok(None),
        }
    }
}
