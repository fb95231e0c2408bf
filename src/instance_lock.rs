//! One iclock-sync per cache directory. Two instances on one cache would each upload
//! what the other has not yet recorded; the sinks would absorb the duplicates, but the
//! cache and cursors would race. An OS file lock (released by the kernel even when the
//! process is killed) guards the directory; the holder's PID is written in the file so
//! the refusal can say who holds it.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::exit::Exit;

pub const LOCK_FILE_NAME: &str = "iclock-sync.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "another iclock-sync{holder} is already running on {path} — wait for it to finish or stop it; two instances on one cache would race"
    )]
    Held { path: PathBuf, holder: String },
    #[error("cannot create the lock file {path}: {source} — check that the directory is writable")]
    Io { path: PathBuf, source: io::Error },
}

impl LockError {
    pub fn exit(&self) -> Exit {
        match self {
            LockError::Held { .. } => Exit::AlreadyRunning,
            LockError::Io { .. } => Exit::Configuration,
        }
    }
}

/// Held for as long as the process syncs; dropping it releases the lock.
#[derive(Debug)]
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    pub fn acquire(cache_dir: &Path) -> Result<InstanceLock, LockError> {
        let path = cache_dir.join(LOCK_FILE_NAME);
        let io_error = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(cache_dir).map_err(io_error)?;
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                let holder = if pid.is_empty() {
                    String::new()
                } else {
                    format!(" (pid {pid})")
                };
                return Err(LockError::Held { path, holder });
            }
            Err(TryLockError::Error(error)) => return Err(io_error(error)),
        }
        file.set_len(0).map_err(io_error)?;
        file.rewind().map_err(io_error)?;
        write!(file, "{}", std::process::id()).map_err(io_error)?;
        Ok(InstanceLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_holders_pid() {
        let dir = tempfile::tempdir().unwrap();
        let first = InstanceLock::acquire(dir.path()).unwrap();
        let error = InstanceLock::acquire(dir.path()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("already running"), "{message}");
        assert!(
            message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        drop(first);
        InstanceLock::acquire(dir.path()).unwrap();
    }
}
