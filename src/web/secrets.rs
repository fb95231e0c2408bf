//! The secrets the dashboard and API deal in, made and checked in one place: random
//! tokens (API tokens, session IDs, the one-time sign-in link, CSRF tokens), their
//! stored form, and the dashboard password's argon2 hash.
//!
//! API tokens are 32 random bytes, so SHA-256 is all their stored form needs (nothing
//! to guess that a slow hash would protect) and checking one costs nothing per
//! request; a password is chosen by a person, so it gets argon2.

use base64::Engine;
use sha2::{Digest, Sha256};

/// The prefix of API tokens, so that one pasted somewhere is recognisable.
pub const TOKEN_PREFIX: &str = "icsk_";

/// 32 random bytes, URL-safe text. Fails only when the OS has no randomness to give.
pub fn random_text() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| format!("no random numbers from the system: {error}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// A new API token.
pub fn new_token() -> Result<String, String> {
    Ok(format!("{TOKEN_PREFIX}{}", random_text()?))
}

/// How a token is stored: `sha256:` and the hex digest.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut text = String::with_capacity(7 + 64);
    text.push_str("sha256:");
    for byte in digest {
        text.push_str(&format!("{byte:02x}"));
    }
    text
}

/// Equal, in time that does not depend on where they differ.
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The argon2id hash (PHC string) of a password, with a fresh salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|hash| hash.to_string())
        .map_err(|error| format!("cannot hash the password: {error}"))
}

/// Whether `password` matches the stored `hash` (slow on purpose: run it off the
/// async threads).
pub fn password_matches(password: &str, hash: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::PasswordHash::new(hash).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_stored_as_their_digest() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX) && a.len() == TOKEN_PREFIX.len() + 43);
        let hash = token_hash(&a);
        assert!(hash.starts_with("sha256:") && hash.len() == 71);
        assert!(!hash.contains(&a[TOKEN_PREFIX.len()..]));
        assert_eq!(token_hash(&a), hash);
    }

    #[test]
    fn passwords_are_checked_against_their_argon2_hash() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(password_matches("correct horse", &hash));
        assert!(!password_matches("correct hors", &hash));
        assert!(!password_matches("correct horse", "not a hash"));
    }

    #[test]
    fn same_compares_whole_values() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"ab"));
    }
}
