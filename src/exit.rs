//! The documented exit codes. Scripts and schedulers act on these, so they are a
//! contract: 0 all delivered, 1 something not delivered (retried next run), 2 a
//! configuration problem a person must fix, 3 another instance holds the cache.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Exit {
    /// Every punch read was delivered to every sink (or was already there).
    Success,
    /// Some punches were not delivered, or a device could not be read.
    Incomplete,
    /// Configuration error: bad file or key, wrong credentials, missing licence.
    Configuration,
    /// Another iclock-sync is running on the same cache directory.
    AlreadyRunning,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Incomplete => 1,
            Exit::Configuration => 2,
            Exit::AlreadyRunning => 3,
        }
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> std::process::ExitCode {
        std::process::ExitCode::from(exit.code())
    }
}
