//! The one way HTTP clients to BioTime servers and Frappe sites are built, and how
//! their answers are read: timeouts, trust (system roots, `SSL_CERT_FILE`, a `ca_file`),
//! a redirect policy that never carries credentials to another address, and bodies read
//! with a ceiling — a hostile or broken server can send an endless page or a small
//! gzip body that inflates to gigabytes, and neither may cost more than the ceiling.

use std::path::Path;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::header::LOCATION;
use reqwest::{Response, redirect};

/// A JSON page or document: far above any real page (10,000 BioTime rows are ~5 MB).
pub const BODY_LIMIT: usize = 32 * 1024 * 1024;
/// An error answer or a login: only an excerpt is ever shown.
pub const SMALL_BODY_LIMIT: usize = 256 * 1024;

/// Which redirects a client follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redirects {
    /// Only to the same scheme, host and port (a trailing-slash fix), at most five; a
    /// redirect elsewhere is returned as it is, for the caller to report.
    SameOrigin,
    /// None: for requests that carry a password in their body.
    Never,
}

/// How to build a client.
#[derive(Debug, Clone)]
pub struct ClientOptions<'a> {
    /// Per request.
    pub timeout: Duration,
    pub accept_invalid_certs: bool,
    /// Certificates to trust besides the system's (PEM).
    pub ca_file: Option<&'a Path>,
    pub redirects: Redirects,
}

/// Builds a client; the error says what is wrong (an unreadable `ca_file`, say).
pub fn build(options: &ClientOptions<'_>) -> Result<reqwest::Client, String> {
    let policy = match options.redirects {
        Redirects::Never => redirect::Policy::none(),
        Redirects::SameOrigin => redirect::Policy::custom(|attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if !same_origin || attempt.previous().len() > 5 {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }),
    };
    let mut builder = reqwest::Client::builder()
        .timeout(options.timeout)
        .connect_timeout(options.timeout.min(Duration::from_secs(10)))
        .danger_accept_invalid_certs(options.accept_invalid_certs)
        .redirect(policy)
        .user_agent(concat!("iclock-sync/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = options.ca_file {
        builder = builder.tls_certs_merge(crate::tls::trusted_certificates(path)?);
    }
    builder
        .build()
        .map_err(|error| format!("cannot set up HTTP: {error}"))
}

/// Where a redirect answer points, if `response` is one.
pub fn redirect_target(response: &Response) -> Option<String> {
    if !response.status().is_redirection() {
        return None;
    }
    Some(
        response
            .headers()
            .get(LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("an address it does not name")
            .to_owned(),
    )
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the answer is larger than {} MB; stopped reading it", .0 / (1024 * 1024))]
    TooLarge(usize),
    #[error(transparent)]
    Transport(#[from] reqwest::Error),
}

/// The body, decompressed, but never more than `limit` bytes of it.
pub async fn read_body(mut response: Response, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A short, single-line excerpt of an error answer's body, for messages (only its
/// start is read).
pub async fn excerpt(mut response: Response) -> String {
    let mut head = BytesMut::new();
    while head.len() < SMALL_BODY_LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => head.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&head);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}…", one_line.chars().take(200).collect::<String>())
    } else if one_line.is_empty() {
        "empty body".to_owned()
    } else {
        one_line
    }
}
