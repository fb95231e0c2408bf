//! Google's Firestore emulator (the jar installed on these machines), one per test on a
//! free port, and its REST API for reading back what the binary wrote. Without the jar
//! the tests fail, loudly, rather than skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};

pub const JAR: &str =
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar";

pub struct Emulator {
    child: tokio::process::Child,
    pub port: u16,
    http: reqwest::Client,
}

impl Emulator {
    pub async fn start() -> Emulator {
        Emulator::start_from(None).await
    }

    /// Starts an emulator, loaded from a snapshot taken by [`Emulator::snapshot`].
    pub async fn start_from(snapshot: Option<&Path>) -> Emulator {
        Emulator::start_with(snapshot, free_port()).await
    }

    /// Starts an emulator on `port` (one the tool was told about while it was down).
    pub async fn start_on(port: u16) -> Emulator {
        Emulator::start_with(None, port).await
    }

    async fn start_with(snapshot: Option<&Path>, port: u16) -> Emulator {
        assert!(
            Path::new(JAR).exists(),
            "the Firestore emulator jar is missing at {JAR}: install the Debian package google-cloud-cli-firestore-emulator"
        );
        let mut command = tokio::process::Command::new("java");
        command
            .args(["-Xmx512m", "-Duser.language=en", "-cp", JAR])
            .arg("com.google.cloud.datastore.emulator.firestore.CloudFirestore")
            .arg("--host=127.0.0.1")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        if let Some(snapshot) = snapshot {
            command.arg(format!("--import-data={}", snapshot.display()));
        }
        let child = command.spawn().expect("java starts the Firestore emulator");
        let emulator = Emulator {
            child,
            port,
            http: reqwest::Client::new(),
        };
        // A JVM starting while the rest of the suite keeps both CPUs busy can take a
        // minute.
        for _ in 0..720 {
            let ready = emulator.http.get(emulator.url("/")).send().await;
            if let Ok(response) = ready
                && response.text().await.is_ok_and(|text| text.trim() == "Ok")
            {
                return emulator;
            }
            tokio::time::sleep(Duration::from_millis(125)).await;
        }
        panic!("the Firestore emulator did not answer on port {port} within 90 s");
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn documents_url(&self, project: &str) -> String {
        self.url(&format!(
            "/v1/projects/{project}/databases/(default)/documents"
        ))
    }

    /// Every document of `collection`, as the REST API returns them.
    pub async fn documents(&self, project: &str, collection: &str) -> Vec<Value> {
        let mut documents = Vec::new();
        let mut page_token = String::new();
        loop {
            let page: Value = self
                .http
                .get(format!("{}/{collection}", self.documents_url(project)))
                .query(&[("pageSize", "1000"), ("pageToken", page_token.as_str())])
                .bearer_auth("owner")
                .send()
                .await
                .expect("list documents")
                .json()
                .await
                .expect("documents as JSON");
            documents.extend(page["documents"].as_array().cloned().unwrap_or_default());
            match page["nextPageToken"].as_str() {
                Some(token) if !token.is_empty() => page_token = token.to_owned(),
                _ => return documents,
            }
        }
    }

    pub async fn document(&self, project: &str, collection: &str, id: &str) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}/{collection}/{id}", self.documents_url(project)))
            .bearer_auth("owner")
            .send()
            .await
            .expect("get document");
        response
            .status()
            .is_success()
            .then_some(response.json().await.expect("document as JSON"))
    }

    /// Creates a document as another writer would.
    pub async fn create(&self, project: &str, collection: &str, id: &str, fields: Value) {
        let response = self
            .http
            .post(format!("{}/{collection}", self.documents_url(project)))
            .query(&[("documentId", id)])
            .bearer_auth("owner")
            .json(&json!({ "fields": fields }))
            .send()
            .await
            .expect("create document");
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Exports `project` into `directory`; returns the file to start from again.
    pub async fn snapshot(&self, project: &str, directory: &Path) -> PathBuf {
        std::fs::create_dir_all(directory).expect("snapshot directory");
        let response = self
            .http
            .post(self.url(&format!("/emulator/v1/projects/{project}:export")))
            .json(&json!({
                "database": format!("projects/{project}/databases/(default)"),
                "export_directory": directory,
            }))
            .send()
            .await
            .expect("export");
        assert!(
            response.status().is_success(),
            "{}",
            response.text().await.unwrap_or_default()
        );
        find_metadata(directory).expect("an export metadata file")
    }

    /// Kills the emulator outright (SIGKILL).
    pub async fn kill(mut self) {
        self.child.kill().await.expect("kill the emulator");
    }
}

fn find_metadata(directory: &Path) -> Option<PathBuf> {
    for entry in std::fs::read_dir(directory).ok()?.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if let Some(found) = find_metadata(&path) {
                return Some(found);
            }
        } else if path.to_string_lossy().ends_with(".overall_export_metadata") {
            return Some(path);
        }
    }
    None
}

/// A loopback port nothing listens on (now).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A `[sink.firestore]` section writing to `emulator`.
pub fn sink(emulator: &Emulator, project: &str, extra: &str) -> String {
    format!(
        "[sink.firestore]\nproject_id = \"{project}\"\nemulator_host = \"{}\"\n{extra}\n",
        emulator.host()
    )
}

/// The value of `field` in a REST document, with its type: `("stringValue", "1001")`.
pub fn typed(document: &Value, field: &str) -> (String, Value) {
    let value = document["fields"][field]
        .as_object()
        .unwrap_or_else(|| panic!("no field {field} in {document}"));
    let (kind, value) = value.iter().next().expect("a typed value");
    (kind.clone(), value.clone())
}

/// The document ID from its resource name.
pub fn id_of(document: &Value) -> String {
    document["name"]
        .as_str()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}
