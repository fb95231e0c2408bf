//! A database's connection URL, which usually holds a password: usable where the
//! driver needs it, and only ever shown with the password replaced by `****`.
//!
//! The drivers' own messages do not repeat the URL, but a message may quote a value
//! from it; [`DatabaseUrl::scrub`] takes the password out of any text before it is
//! shown or logged.

use std::borrow::Cow;

use crate::config::secret::Secret;

/// Query parameters that carry secrets (PostgreSQL's `password`/`sslpassword`,
/// MySQL's `password`, MongoDB's `authMechanismProperties` may hold tokens).
const SECRET_PARAMETERS: &[&str] = &["password", "sslpassword", "pass", "authmechanismproperties"];

#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    full: Secret,
    redacted: String,
    /// The secret parts as written and percent-decoded, to take out of messages.
    secrets: Vec<String>,
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", self.redacted)
    }
}

impl DatabaseUrl {
    /// `text` must start with one of `schemes` (`postgres`, ...) and `://`; the error
    /// says what is wrong, without repeating the URL.
    pub fn parse(text: &str, schemes: &[&str]) -> Result<DatabaseUrl, String> {
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(format!(
                "is not a URL (it should start with {}://)",
                schemes[0]
            ));
        };
        if !schemes
            .iter()
            .any(|known| known.eq_ignore_ascii_case(scheme))
        {
            return Err(format!(
                "starts with {scheme}:// where this sink expects {}",
                schemes
                    .iter()
                    .map(|scheme| format!("{scheme}://"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ));
        }
        let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(authority_end);
        let mut secrets = Vec::new();
        let authority = match authority.rsplit_once('@') {
            Some((user_info, hosts)) => match user_info.split_once(':') {
                Some((user, password)) => {
                    secrets.push(password.to_owned());
                    format!("{user}:****@{hosts}")
                }
                None => authority.to_owned(),
            },
            None => authority.to_owned(),
        };
        let tail = match tail.split_once('?') {
            Some((path, query)) => {
                let parameters: Vec<String> = query
                    .split('&')
                    .map(|parameter| match parameter.split_once('=') {
                        Some((key, value))
                            if SECRET_PARAMETERS.contains(&key.to_ascii_lowercase().as_str()) =>
                        {
                            secrets.push(value.to_owned());
                            format!("{key}=****")
                        }
                        _ => parameter.to_owned(),
                    })
                    .collect();
                format!("{path}?{}", parameters.join("&"))
            }
            None => tail.to_owned(),
        };
        let decoded: Vec<String> = secrets
            .iter()
            .map(|secret| percent_decode(secret).into_owned())
            .collect();
        secrets.extend(decoded);
        secrets.retain(|secret| !secret.is_empty());
        secrets.sort_by_key(|secret| std::cmp::Reverse(secret.len()));
        secrets.dedup();
        Ok(DatabaseUrl {
            full: Secret::new(text),
            redacted: format!("{scheme}://{authority}{tail}"),
            secrets,
        })
    }

    /// The URL itself; only for the driver.
    pub fn expose(&self) -> &str {
        self.full.expose()
    }

    /// The URL with its password replaced by `****`.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    /// `message` with any secret of this URL replaced by `****`.
    pub fn scrub(&self, message: &str) -> String {
        let mut message = message.to_owned();
        for secret in &self.secrets {
            message = message.replace(secret.as_str(), "****");
        }
        message
    }

    /// The user name in the URL, if it has one.
    pub fn user(&self) -> Option<&str> {
        let rest = self.expose().split_once("://")?.1;
        let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
        let user_info = authority.rsplit_once('@')?.0;
        let user = user_info
            .split_once(':')
            .map_or(user_info, |(user, _)| user);
        (!user.is_empty()).then_some(user)
    }

    /// The path after the host (the database name), if there is one.
    pub fn database(&self) -> Option<String> {
        let rest = self.expose().split_once("://")?.1;
        let path = &rest[rest.find('/')? + 1..];
        let name = path.split('?').next().unwrap_or_default();
        (!name.is_empty()).then(|| percent_decode(name).into_owned())
    }
}

fn percent_decode(text: &str) -> Cow<'_, str> {
    if !text.contains('%') {
        return Cow::Borrowed(text);
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |at: usize| {
            bytes
                .get(at)
                .and_then(|byte| (*byte as char).to_digit(16))
                .map(|digit| digit as u8)
        };
        match (bytes[index], hex(index + 1), hex(index + 2)) {
            (b'%', Some(high), Some(low)) => {
                out.push(high * 16 + low);
                index += 3;
            }
            (byte, _, _) => {
                out.push(byte);
                index += 1;
            }
        }
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        let url = DatabaseUrl::parse(
            "postgres://sync:s%40cret@db.example:5432/hr?sslmode=verify-full&password=other",
            &["postgres", "postgresql"],
        )
        .unwrap();
        assert_eq!(
            url.redacted(),
            "postgres://sync:****@db.example:5432/hr?sslmode=verify-full&password=****"
        );
        assert!(!format!("{url:?}").contains("cret"));
        assert_eq!(
            url.scrub("login failed for s@cret and s%40cret and other"),
            "login failed for **** and **** and ****"
        );
        assert_eq!(url.user(), Some("sync"));
        assert_eq!(url.database().as_deref(), Some("hr"));
    }

    #[test]
    fn mongodb_urls_with_several_hosts_and_no_password() {
        let url = DatabaseUrl::parse(
            "mongodb://a.example,b.example/attendance?replicaSet=rs0",
            &["mongodb", "mongodb+srv"],
        )
        .unwrap();
        assert_eq!(url.redacted(), url.expose());
        assert_eq!(url.user(), None);
        assert_eq!(url.database().as_deref(), Some("attendance"));
    }

    #[test]
    fn a_wrong_scheme_is_named_without_the_url() {
        let error = DatabaseUrl::parse("mysql://u:pw@h/db", &["postgres"]).unwrap_err();
        assert_eq!(
            error,
            "starts with mysql:// where this sink expects postgres://"
        );
        assert!(DatabaseUrl::parse("h/db", &["postgres"]).is_err());
    }
}
