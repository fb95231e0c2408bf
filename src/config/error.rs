//! A configuration problem: where (file, line, section, key), what, and how to fix it.
//! The binary reports it with exit code 2.

/// A configuration problem: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}: {problem} — {fix}")]
pub struct ConfigError {
    /// `iclock-sync.toml line 14: [[device]] 'Gate' key `comm_key``, `.env`, ...
    pub origin: String,
    pub problem: String,
    pub fix: String,
}

impl ConfigError {
    pub fn new(
        origin: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> ConfigError {
        ConfigError {
            origin: origin.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}
