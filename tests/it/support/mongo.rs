//! A MongoDB-wire server for the MongoDB sink: SecantusDB (PyPI `secantusdb`, GPL,
//! WiredTiger underneath), run as an outside process — never linked — one per test on
//! a free port with its own data directory. No MongoDB server installs on these
//! machines; SecantusDB does, into a virtualenv under `target/` made on first use.
//! Without Python or PyPI the tests fail loudly, never skip.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use mongodb::bson::Document;

use crate::support::firestore::free_port;

/// The version the sink is tested against (README says so too).
pub const SECANTUSDB: &str = "secantusdb==0.7.0b3";

/// `secantusd-py` in the shared virtualenv, installed once.
fn server_program() -> PathBuf {
    crate::support::python::kept_program("secantusdb", SECANTUSDB, "secantusd-py")
}

pub struct MongoServer {
    child: Option<tokio::process::Child>,
    pub port: u16,
    data: tempfile::TempDir,
    /// Extra arguments (TLS).
    arguments: Vec<String>,
}

impl MongoServer {
    pub async fn start() -> MongoServer {
        MongoServer::start_with(Vec::new()).await
    }

    /// A server that speaks only TLS, with a certificate `ca` signed for 127.0.0.1.
    pub async fn start_tls(ca: &crate::support::tls::TestCa) -> MongoServer {
        let files = tempfile::tempdir().expect("a directory").keep();
        let certificate = files.join("server.pem");
        let key = files.join("server.key");
        std::fs::write(&certificate, &ca.server_certificate_pem).expect("write");
        std::fs::write(&key, &ca.server_key_pem).expect("write");
        MongoServer::start_with(vec![
            "--tls-cert-file".into(),
            certificate.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
        ])
        .await
    }

    async fn start_with(arguments: Vec<String>) -> MongoServer {
        let data = tempfile::tempdir().expect("a data directory");
        let mut server = MongoServer {
            child: None,
            port: free_port(),
            data,
            arguments,
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let child = tokio::process::Command::new(server_program())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .arg("--storage-path")
            .arg(self.data.path())
            .args(["--sync-on-commit", "--log-level", "WARNING"])
            .args(&self.arguments)
            .current_dir(self.data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("secantusd-py starts");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "SecantusDB did not listen on port {} within 10 s",
            self.port
        );
    }

    /// `mongodb://127.0.0.1:PORT/DATABASE`.
    pub fn url(&self, database: &str) -> String {
        format!("mongodb://127.0.0.1:{}/{database}", self.port)
    }

    /// Kills the server outright (SIGKILL) and starts it again on the same port and
    /// data: a crash and restart.
    pub async fn restart(&mut self) {
        self.kill().await;
        self.launch().await;
    }

    pub async fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Every document of `collection`, by `_id`.
    pub async fn documents(&self, database: &str, collection: &str) -> Vec<Document> {
        use futures::TryStreamExt;
        let client = mongodb::Client::with_uri_str(self.url(database))
            .await
            .expect("connect");
        let found = client
            .database(database)
            .collection::<Document>(collection)
            .find(mongodb::bson::doc! {})
            .sort(mongodb::bson::doc! { "_id": 1 })
            .await
            .expect("find")
            .try_collect()
            .await
            .expect("documents");
        client.shutdown().await;
        found
    }
}
