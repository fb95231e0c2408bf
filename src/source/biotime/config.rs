//! The `[[device]]` keys of a BioTime server (`kind = "biotime"`).

use std::any::Any;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use super::BiotimeSource;
use crate::config::error::ConfigError;
use crate::config::secret::Secret;
use crate::config::section::Section;
use crate::duration;
use crate::punch::DeviceLabel;
use crate::source::{DeviceKind, Source, SourceConfig, SourceError};

/// `kind = "biotime"` in the configuration's table of kinds.
pub const KIND: DeviceKind = DeviceKind {
    name: "biotime",
    describes: "a BioTime / ZKBioTime server",
    parse,
};

fn parse(table: toml::Table, section: &Section) -> Result<Arc<dyn SourceConfig>, ConfigError> {
    let mut config: BiotimeConfig = section.read(table)?;
    let url = config.url.trim().trim_end_matches('/').to_owned();
    let parsed = reqwest::Url::parse(&url).ok().filter(|parsed| {
        matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some()
    });
    if parsed.is_none() {
        return Err(section.error(
            Some("url"),
            format!("'{}' is not an http(s) URL", config.url),
            "write the BioTime address as http://HOST:PORT, e.g. url = \"http://192.168.1.20:8081\"",
        ));
    }
    config.url = url;
    if config.username.trim().is_empty() {
        return Err(section.error(
            Some("username"),
            "is empty",
            "set the BioTime user the API should log in as",
        ));
    }
    if config.password.is_empty() {
        return Err(section.error(
            Some("password"),
            "is empty",
            "set password = \"${BIOTIME_PASSWORD}\" and put BIOTIME_PASSWORD in .env",
        ));
    }
    if !(1..=10_000).contains(&config.page_size) {
        return Err(section.error(
            Some("page_size"),
            format!("{} is out of range", config.page_size),
            "use a value between 1 and 10000 (1000 is a good choice)",
        ));
    }
    config.ca_file = config.ca_file.map(|path| section.path(&path));
    Ok(Arc::new(config))
}

impl SourceConfig for BiotimeConfig {
    fn kind(&self) -> &'static str {
        KIND.name
    }

    fn location(&self) -> String {
        self.url.clone()
    }

    fn open(
        &self,
        label: Arc<DeviceLabel>,
        cursor: Option<&Value>,
    ) -> Result<Box<dyn Source>, SourceError> {
        Ok(Box::new(BiotimeSource::new(label, self, cursor)?))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// Which login route and `Authorization` scheme to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthScheme {
    /// `POST /jwt-api-token-auth/`, header `JWT <token>`; the token expires.
    #[default]
    Jwt,
    /// `POST /api-token-auth/`, header `Token <token>`; the token does not expire.
    Token,
}

impl AuthScheme {
    pub fn login_path(self) -> &'static str {
        match self {
            AuthScheme::Jwt => "/jwt-api-token-auth/",
            AuthScheme::Token => "/api-token-auth/",
        }
    }

    pub fn header_prefix(self) -> &'static str {
        match self {
            AuthScheme::Jwt => "JWT",
            AuthScheme::Token => "Token",
        }
    }

    pub fn other(self) -> AuthScheme {
        match self {
            AuthScheme::Jwt => AuthScheme::Token,
            AuthScheme::Token => AuthScheme::Jwt,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BiotimeConfig {
    /// Base URL of the BioTime web server, e.g. `http://192.168.1.20:8081`.
    pub url: String,
    pub username: String,
    pub password: Secret,
    #[serde(default)]
    pub auth: AuthScheme,
    /// Rows per page (sent as both `page_size` and `limit`).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Per-request timeout.
    #[serde(default = "default_timeout", with = "duration::serde_text")]
    pub timeout: Duration,
    /// How far below the upload-time watermark each cycle looks again, so punches that
    /// arrive with equal or slightly older upload times are not missed.
    #[serde(default = "default_overlap", with = "duration::serde_text")]
    pub overlap: Duration,
    /// Accept a self-signed HTTPS certificate (many BioTime installs use one).
    #[serde(default)]
    pub accept_invalid_certs: bool,
    /// A PEM file of certificates to trust besides the system's (a private CA).
    pub ca_file: Option<PathBuf>,
}

impl BiotimeConfig {
    /// A server at `url` with these credentials and every other key at its default.
    pub fn at(
        url: impl Into<String>,
        username: impl Into<String>,
        password: Secret,
    ) -> BiotimeConfig {
        BiotimeConfig {
            url: url.into(),
            username: username.into(),
            password,
            auth: AuthScheme::default(),
            page_size: default_page_size(),
            timeout: default_timeout(),
            overlap: default_overlap(),
            accept_invalid_certs: false,
            ca_file: None,
        }
    }
}

fn default_page_size() -> u32 {
    1000
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}

fn default_overlap() -> Duration {
    Duration::from_secs(30 * 60)
}
