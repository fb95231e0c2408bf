//! Replace a file so that a crash at any instant leaves either the old or the new
//! content, never a torn mix: write a temp file beside it, fsync, rename over, fsync
//! the directory. The Python tool rewrote its cache in place, and a crash mid-write left
//! an empty file that it then read as "nothing uploaded yet".

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Atomically replaces `path` with `contents`, creating parent directories.
pub fn write(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut temp = TempFile::create_beside(path)?;
    temp.file.write_all(contents)?;
    temp.commit()
}

/// A temp file in the target's directory, renamed over the target on [`TempFile::commit`]
/// and removed if dropped uncommitted.
pub struct TempFile {
    pub file: File,
    temp_path: PathBuf,
    target: PathBuf,
    committed: bool,
}

impl TempFile {
    pub fn create_beside(target: &Path) -> io::Result<TempFile> {
        let dir = parent_dir(target);
        fs::create_dir_all(dir)?;
        let name = target
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".to_owned());
        let temp_path = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp_path)?;
        Ok(TempFile {
            file,
            temp_path,
            target: target.to_path_buf(),
            committed: false,
        })
    }

    /// Flushes to disk and renames over the target.
    pub fn commit(mut self) -> io::Result<()> {
        self.file.flush()?;
        self.file.sync_all()?;
        fs::rename(&self.temp_path, &self.target)?;
        self.committed = true;
        sync_dir(parent_dir(&self.target))
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Removes temp files a killed process left in `dir`. Call only while holding the
/// instance lock, so no live writer owns them.
pub fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// Makes a rename durable. Directories cannot be opened for fsync everywhere; where
/// they cannot, the rename is still atomic, only its durability is up to the OS.
fn sync_dir(dir: &Path) -> io::Result<()> {
    match File::open(dir) {
        Ok(handle) => match handle.sync_all() {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::InvalidInput => Ok(()),
            Err(error) if error.raw_os_error() == Some(22) => Ok(()),
            Err(error) => Err(error),
        },
        Err(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.json");
        write(&path, b"one").unwrap();
        write(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec!["state.json"]);
    }

    #[test]
    fn an_uncommitted_temp_file_is_removed_and_the_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.json");
        write(&path, b"old").unwrap();
        {
            let mut temp = TempFile::create_beside(&path).unwrap();
            temp.file.write_all(b"half").unwrap();
        }
        assert_eq!(fs::read(&path).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
