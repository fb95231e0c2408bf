//! Where Firestore credentials come from. gcp_auth is the one source of Google
//! credentials: a service-account key file (from the config or the variables the
//! Python tool and Google's tools use), else application-default credentials, else the
//! metadata server. Its tokens reach the firestore crate through [`GcpAuthCredentials`].
//! Against the emulator no credentials are used at all, even when a key is found (as
//! with firebase-admin): the emulator's conventional `Bearer owner` token is sent, and
//! the key only names the project.
//!
//! A token that cannot be had reaches the sink only as an opaque gRPC error, so the
//! reason is also kept in a [`TokenTrouble`] the sink reads: a refused key is reported
//! as such and not retried like an outage.
//!
//! Nothing here runs for `--dry-run` or `--help`: sinks are opened only to deliver.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use firestore::gcloud_sdk::GoogleAuthHeaders;
use firestore::gcloud_sdk::google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use firestore::gcloud_sdk::google_cloud_auth::errors::CredentialsError;
use http::header::{AUTHORIZATION, HeaderValue};
use http::{Extensions, HeaderMap};

use super::config::FirestoreConfig;
use crate::sink::SinkContext;

/// The scope Firestore needs.
const SCOPES: &[&str] = &["https://www.googleapis.com/auth/datastore"];
/// Where the Python iclock-sync looked when FIREBASE_KEY was not set.
pub const PYTHON_DEFAULT_KEY: &str = "config/firebase-key.json";
/// The variables a key path is read from, in order.
const KEY_VARIABLES: [&str; 3] = [
    "FIREBASE_KEY",
    "FIREBASE_KEY_PATH",
    "GOOGLE_APPLICATION_CREDENTIALS",
];

/// Credentials ready to hand to the firestore crate.
pub struct Resolved {
    pub headers: GoogleAuthHeaders,
    pub project_id: String,
    /// For messages: "the service-account key config/firebase-key.json", ...
    pub source: String,
    pub trouble: TokenTrouble,
}

/// Why tokens cannot be had right now, when retrying will not help (the token endpoint
/// refused the key, or answered nonsense). Cleared by the next token obtained.
#[derive(Clone, Default)]
pub struct TokenTrouble(Arc<Mutex<Option<String>>>);

impl TokenTrouble {
    pub fn current(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set(&self, trouble: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = trouble;
    }
}

/// Why no credentials could be had; the text names what was tried and the fix.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CredentialsProblem(pub String);

/// Finds the credentials and the project for `config`. Against the emulator no key is
/// used, even when one is found (as firebase-admin does): only its project is read.
pub async fn resolve(
    config: &FirestoreConfig,
    context: &SinkContext<'_>,
    emulator: bool,
) -> Result<Resolved, CredentialsProblem> {
    let tried = format!(
        "tried key_file in [sink.firestore], {}, {PYTHON_DEFAULT_KEY}",
        KEY_VARIABLES.join(", ")
    );
    let configured = key_path(config, context);
    if emulator {
        let project_id = config
            .project_id
            .clone()
            .or_else(|| {
                configured
                    .as_ref()
                    .and_then(|(_, path)| project_of_key(path))
            })
            .unwrap_or_else(|| "demo-iclock-sync".to_owned());
        return Ok(Resolved {
            headers: GoogleAuthHeaders::from(Credentials::from(EmulatorOwner {
                tag: EntityTag::new(),
            })),
            project_id,
            source: "the emulator's owner token".to_owned(),
            trouble: TokenTrouble::default(),
        });
    }
    if let Some((from, path)) = configured {
        let account = gcp_auth::CustomServiceAccount::from_file(&path).map_err(|error| {
            CredentialsProblem(format!(
                "the service-account key {} (from {from}) cannot be used: {error} — point FIREBASE_KEY (or key_file in [sink.firestore]) at the JSON key from the Firebase console (Project settings → Service accounts → Generate new private key); {tried}",
                path.display()
            ))
        })?;
        let project_id = config
            .project_id
            .clone()
            .or_else(|| account.project_id().map(str::to_owned))
            .ok_or_else(|| {
                CredentialsProblem(format!(
                    "the key {} names no project — set project_id in [sink.firestore]",
                    path.display()
                ))
            })?;
        let source = format!("the service-account key {}", path.display());
        let trouble = TokenTrouble::default();
        return Ok(Resolved {
            headers: GcpAuthCredentials::headers(Arc::new(account), &source, &trouble),
            project_id,
            source,
            trouble,
        });
    }
    let provider = gcp_auth::provider().await.map_err(|error| {
        CredentialsProblem(format!(
            "no Google credentials found ({error}) — set FIREBASE_KEY to the service-account JSON from the Firebase console; {tried}, application-default credentials (gcloud auth application-default login) and the metadata server"
        ))
    })?;
    let project_id = match &config.project_id {
        Some(project) => project.clone(),
        None => provider
            .project_id()
            .await
            .map(|id| id.to_string())
            .map_err(|error| {
                CredentialsProblem(format!(
                    "the credentials name no project ({error}) — set project_id in [sink.firestore]"
                ))
            })?,
    };
    let source = "application-default credentials".to_owned();
    let trouble = TokenTrouble::default();
    Ok(Resolved {
        headers: GcpAuthCredentials::headers(provider, &source, &trouble),
        project_id,
        source,
        trouble,
    })
}

/// The key file to use and where its path came from: `key_file`, the variables, then
/// the Python tool's default path. Relative paths start from the configuration's
/// folder (where the Python tool's `.env` and `config/` sit).
fn key_path(config: &FirestoreConfig, context: &SinkContext<'_>) -> Option<(String, PathBuf)> {
    let from_variables = || {
        KEY_VARIABLES.iter().find_map(|variable| {
            context
                .environment
                .get(variable)
                .filter(|value| !value.trim().is_empty())
                .map(|value| ((*variable).to_owned(), context.base_dir.join(value.trim())))
        })
    };
    let python_default = || {
        let path = context.base_dir.join(PYTHON_DEFAULT_KEY);
        path.exists()
            .then(|| ("the Python tool's default".to_owned(), path))
    };
    config
        .key_file
        .clone()
        .map(|path| ("key_file in [sink.firestore]".to_owned(), path))
        .or_else(from_variables)
        .or_else(python_default)
}

/// The `project_id` a key file names, if it can be read.
fn project_of_key(path: &Path) -> Option<String> {
    let text = std::fs::read(path).ok()?;
    let key: serde_json::Value = serde_json::from_slice(&text).ok()?;
    key.get("project_id")?.as_str().map(str::to_owned)
}

/// gcp_auth tokens as the firestore crate's credentials.
#[derive(Clone)]
struct GcpAuthCredentials {
    provider: Arc<dyn gcp_auth::TokenProvider>,
    /// Where the tokens come from, for messages.
    source: String,
    trouble: TokenTrouble,
    /// The token last served and the tag it was served under.
    current: Arc<Mutex<Option<(String, EntityTag)>>>,
}

impl std::fmt::Debug for GcpAuthCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GcpAuthCredentials")
    }
}

impl GcpAuthCredentials {
    fn headers(
        provider: Arc<dyn gcp_auth::TokenProvider>,
        source: &str,
        trouble: &TokenTrouble,
    ) -> GoogleAuthHeaders {
        GoogleAuthHeaders::from(Credentials::from(GcpAuthCredentials {
            provider,
            source: source.to_owned(),
            trouble: trouble.clone(),
            current: Arc::new(Mutex::new(None)),
        }))
    }
}

impl CredentialsProvider for GcpAuthCredentials {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        // gcp_auth caches the token, renews it near expiry and retries a failed
        // exchange a few times itself.
        let token = match self.provider.token(SCOPES).await {
            Ok(token) => {
                self.trouble.set(None);
                token
            }
            Err(error) => {
                // Connection trouble may pass; an answer refusing the key will not.
                let transient = matches!(
                    error,
                    gcp_auth::Error::Http(..)
                        | gcp_auth::Error::Io(..)
                        | gcp_auth::Error::Other(..)
                );
                let problem = format!(
                    "cannot get a Google access token with {}: {error}",
                    self.source
                );
                if !transient {
                    self.trouble.set(Some(problem.clone()));
                }
                return Err(CredentialsError::from_msg(transient, problem));
            }
        };
        let mut current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((served, tag)) = current.as_ref()
            && served == token.as_str()
        {
            if extensions.get::<EntityTag>() == Some(tag) {
                return Ok(CacheableResource::NotModified);
            }
            return Ok(CacheableResource::New {
                entity_tag: tag.clone(),
                data: bearer(token.as_str())?,
            });
        }
        let tag = EntityTag::new();
        *current = Some((token.as_str().to_owned(), tag.clone()));
        Ok(CacheableResource::New {
            entity_tag: tag,
            data: bearer(token.as_str())?,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}

fn bearer(token: &str) -> Result<HeaderMap, CredentialsError> {
    let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| CredentialsError::from_msg(false, "the access token is not a valid header"))?;
    value.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, value);
    Ok(headers)
}

/// The emulator's admin token.
#[derive(Debug)]
struct EmulatorOwner {
    tag: EntityTag,
}

impl CredentialsProvider for EmulatorOwner {
    async fn headers(
        &self,
        extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        if extensions.get::<EntityTag>() == Some(&self.tag) {
            return Ok(CacheableResource::NotModified);
        }
        Ok(CacheableResource::New {
            entity_tag: self.tag.clone(),
            data: bearer("owner")?,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        None
    }
}
