//! `[serve]`: where `iclock-sync serve` offers its dashboard and HTTP API, and who may
//! use them. On by default, on 127.0.0.1:8080 only.
//!
//! The API can change data (retry, backfill, queue terminal commands), so it is never
//! open: the dashboard's password (`password_hash`, argon2) and API tokens
//! (`[[serve.token]]`, each with a scope) are stored here as hashes only — `iclock-sync
//! password` and `iclock-sync token new` write them. With neither, `serve` prints a
//! one-time sign-in link at start, and refuses to listen anywhere but the loopback.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use super::error::ConfigError;
use super::section::Section;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeSettings {
    /// `None`: no dashboard and API (`listen = "off"`).
    pub listen: Option<SocketAddr>,
    /// HTTPS: the certificate chain and its key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The dashboard's password, as an argon2 PHC string.
    pub password_hash: Option<String>,
    pub tokens: Vec<ApiToken>,
}

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scope {
    /// Look: every GET.
    Read,
    /// Look and act: retry, backfill, sync now, approve terminals, queue commands.
    Admin,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Scope> {
        match text.trim() {
            "read" => Some(Scope::Read),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

/// An API token as configured: only its SHA-256 (tokens are long random strings, so a
/// fast hash is as safe as a slow one and costs nothing per request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub name: String,
    pub scope: Scope,
    /// `sha256:` and 64 hex digits.
    pub hash: String,
}

impl ServeSettings {
    /// Whether a password or a token is set (else the one-time link is the only way in).
    pub fn has_credentials(&self) -> bool {
        self.password_hash.is_some() || !self.tokens.is_empty()
    }
}

impl Default for ServeSettings {
    fn default() -> ServeSettings {
        ServeSettings {
            listen: DEFAULT_LISTEN.parse().ok(),
            tls: None,
            password_hash: None,
            tokens: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawServe {
    listen: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    password_hash: Option<String>,
    token: Option<Vec<RawToken>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    scope: String,
    hash: String,
}

/// Reads `[serve]`; the defaults when it is absent.
pub fn parse(section: &Section, value: Option<toml::Value>) -> Result<ServeSettings, ConfigError> {
    let Some(value) = value else {
        return Ok(ServeSettings::default());
    };
    let raw: RawServe = section.read(section.table(value)?)?;
    let listen = match raw.listen.as_deref().map(str::trim) {
        None => DEFAULT_LISTEN.parse().ok(),
        Some("off") => None,
        Some(text) => Some(text.parse::<SocketAddr>().map_err(|_| {
            section.error(
                Some("listen"),
                format!("'{text}' is not an address and port"),
                format!("write listen = \"{DEFAULT_LISTEN}\" (this computer only), \"0.0.0.0:8080\" (every address, needs a password or token) or \"off\""),
            )
        })?),
    };
    let password_hash = match raw.password_hash {
        Some(hash) if argon2::PasswordHash::new(hash.trim()).is_err() => {
            return Err(section.error(
                Some("password_hash"),
                "is not a password hash",
                "set it with `iclock-sync password`, which writes the hash (never the password) here",
            ));
        }
        hash => hash.map(|hash| hash.trim().to_owned()),
    };
    let mut tokens = Vec::new();
    for raw in raw.token.unwrap_or_default() {
        let scope = Scope::parse(&raw.scope).ok_or_else(|| {
            section.error(
                Some("token"),
                format!(
                    "token '{}': scope '{}' is not read or admin",
                    raw.name, raw.scope
                ),
                "write scope = \"read\" (look only) or \"admin\" (look and act)",
            )
        })?;
        let hash = raw.hash.trim().to_ascii_lowercase();
        let digits = hash.strip_prefix("sha256:").unwrap_or_default();
        if digits.len() != 64 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return Err(section.error(
                Some("token"),
                format!("token '{}': hash is not sha256: and 64 hex digits", raw.name),
                "make tokens with `iclock-sync token new --scope read|admin`, which writes the hash (never the token) here",
            ));
        }
        tokens.push(ApiToken {
            name: raw.name,
            scope,
            hash,
        });
    }
    let tls = section.tls_files(raw.tls_cert, raw.tls_key)?;
    let settings = ServeSettings {
        listen,
        tls,
        password_hash,
        tokens,
    };
    if let Some(address) = settings.listen
        && !address.ip().is_loopback()
        && !settings.has_credentials()
    {
        return Err(section.error(
            Some("listen"),
            format!("{address} lets other computers reach the dashboard and API, and no password or token is set"),
            "set a password first with `iclock-sync password` (and tokens with `iclock-sync token new --scope read`), or listen on 127.0.0.1",
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::section::Document;

    fn read(text: &str) -> Result<ServeSettings, ConfigError> {
        let document = Document::new("iclock-sync.toml", text, std::path::Path::new("."));
        let mut table: toml::Table = toml::from_str(text).unwrap();
        parse(
            &document.section("[serve]", 0, "[serve]"),
            table.remove("serve"),
        )
    }

    #[test]
    fn loopback_by_default_and_elsewhere_only_with_a_credential() {
        let settings = read("").unwrap();
        assert_eq!(settings.listen, Some("127.0.0.1:8080".parse().unwrap()));
        assert_eq!(read("[serve]\nlisten = \"off\"\n").unwrap().listen, None);
        let refused = read("[serve]\nlisten = \"0.0.0.0:8080\"\n").unwrap_err();
        assert!(refused.origin.contains("[serve] key `listen`"), "{refused}");
        assert!(refused.fix.contains("iclock-sync password"), "{refused}");
        let hash = format!("sha256:{}", "ab".repeat(32));
        let open = read(&format!(
            "[serve]\nlisten = \"0.0.0.0:8080\"\n[[serve.token]]\nname = \"payroll\"\nscope = \"read\"\nhash = \"{hash}\"\n"
        ))
        .unwrap();
        assert_eq!(open.tokens[0].scope, Scope::Read);
    }

    #[test]
    fn malformed_credentials_are_refused_with_the_command_that_makes_them() {
        let error = read("[serve]\npassword_hash = \"hunter2\"\n").unwrap_err();
        assert!(error.fix.contains("iclock-sync password"), "{error}");
        let error = read(
            "[serve]\n[[serve.token]]\nname = \"x\"\nscope = \"root\"\nhash = \"sha256:00\"\n",
        )
        .unwrap_err();
        assert!(error.problem.contains("not read or admin"), "{error}");
        let error = read(
            "[serve]\n[[serve.token]]\nname = \"x\"\nscope = \"read\"\nhash = \"sha256:00\"\n",
        )
        .unwrap_err();
        assert!(error.fix.contains("token new"), "{error}");
    }
}
