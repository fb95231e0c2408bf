//! The dedup cache: the IDs of every punch all sinks have acknowledged.
//!
//! The file is the Python iclock-sync's `cache/uploaded_ids_cache.json`, byte-compatible
//! both ways: a JSON array of ID strings, 4-space indented. It is an accelerator that
//! saves re-sending history to the sinks each cycle; the sinks' own idempotent writes
//! are the real guard against duplicates. So a lost cache costs time, never correctness
//! — but a *corrupt* cache is reported rather than silently treated as empty, because
//! the Python tool's habit of doing so is what made fresh starts stall.
//!
//! IDs of both schemes are 32 lowercase hex digits, held as `u128` (a quarter of the
//! memory of a `String` each); anything else found in a file is kept verbatim.

use std::collections::HashSet;
use std::fs;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::atomic_file::TempFile;
use crate::punch::PunchId;

pub const CACHE_FILE_NAME: &str = "uploaded_ids_cache.json";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "the dedup cache {path} is corrupt ({detail}) — run `iclock-sync build-cache` to rebuild it from output/logs_*.json, or delete it (the sinks skip what they already hold, so nothing is duplicated)"
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error("cannot read the dedup cache {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error(
        "cannot write the dedup cache {path}: {source} — check free disk space and permissions"
    )]
    Write { path: PathBuf, source: io::Error },
}

#[derive(Debug, Default, PartialEq, Eq)]
struct IdSet {
    hex: HashSet<u128>,
    other: HashSet<String>,
}

impl IdSet {
    fn contains(&self, id: &str) -> bool {
        match hex_id(id) {
            Some(number) => self.hex.contains(&number),
            None => self.other.contains(id),
        }
    }

    fn insert(&mut self, id: String) -> bool {
        match hex_id(&id) {
            Some(number) => self.hex.insert(number),
            None => self.other.insert(id),
        }
    }

    fn len(&self) -> usize {
        self.hex.len() + self.other.len()
    }

    fn extend(&mut self, more: IdSet) {
        self.hex.extend(more.hex);
        self.other.extend(more.other);
    }
}

/// A 32-digit lowercase hex ID as a number (uppercase would not round-trip exactly).
fn hex_id(id: &str) -> Option<u128> {
    let is_hex = id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    is_hex.then(|| u128::from_str_radix(id, 16).ok()).flatten()
}

/// The saved IDs, plus those acknowledged since the last save. A cycle whose results
/// cannot be recorded drops the latter ([`DedupCache::forget_unsaved`]), so that a
/// long-running loop does not go on trusting acknowledgements it never recorded.
#[derive(Debug)]
pub struct DedupCache {
    path: PathBuf,
    ids: IdSet,
    unsaved: IdSet,
    /// The file must be written even with nothing unsaved (a rebuilt cache).
    dirty: bool,
}

impl DedupCache {
    /// Loads the cache; a missing file is an empty cache.
    pub fn load(path: &Path) -> Result<DedupCache, CacheError> {
        let ids = match fs::read(path) {
            Ok(bytes) => parse(&bytes).map_err(|detail| CacheError::Corrupt {
                path: path.to_path_buf(),
                detail,
            })?,
            Err(error) if error.kind() == io::ErrorKind::NotFound => IdSet::default(),
            Err(source) => {
                return Err(CacheError::Read {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        Ok(DedupCache {
            path: path.to_path_buf(),
            ids,
            unsaved: IdSet::default(),
            dirty: false,
        })
    }

    /// An empty cache that will be written to `path` (used to rebuild a corrupt one).
    pub fn empty(path: &Path) -> DedupCache {
        DedupCache {
            path: path.to_path_buf(),
            ids: IdSet::default(),
            unsaved: IdSet::default(),
            dirty: true,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.ids.len() + self.unsaved.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn contains(&self, id: &PunchId) -> bool {
        self.ids.contains(id.as_str()) || self.unsaved.contains(id.as_str())
    }

    /// Records an ID; returns whether it was new.
    pub fn insert(&mut self, id: PunchId) -> bool {
        !self.ids.contains(id.as_str()) && self.unsaved.insert(id.into_string())
    }

    /// Drops the IDs inserted since the last save.
    pub fn forget_unsaved(&mut self) {
        self.unsaved = IdSet::default();
    }

    /// Writes the cache atomically if anything changed since it was loaded or saved.
    pub fn save(&mut self) -> Result<(), CacheError> {
        if !self.dirty && self.unsaved.len() == 0 {
            return Ok(());
        }
        let write = || -> io::Result<()> {
            let mut temp = TempFile::create_beside(&self.path)?;
            let mut out = BufWriter::with_capacity(64 * 1024, &mut temp.file);
            render(&self.ids, &self.unsaved, &mut out)?;
            out.flush()?;
            drop(out);
            temp.commit()
        };
        write().map_err(|source| CacheError::Write {
            path: self.path.clone(),
            source,
        })?;
        self.ids.extend(std::mem::take(&mut self.unsaved));
        self.dirty = false;
        Ok(())
    }
}

impl DedupCache {
    /// Every ID, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = String> + '_ {
        let set = |ids: &'_ IdSet| {
            ids.hex
                .iter()
                .map(|number| format!("{number:032x}"))
                .chain(ids.other.iter().cloned())
                .collect::<Vec<_>>()
        };
        set(&self.ids).into_iter().chain(set(&self.unsaved))
    }
}

/// Adds IDs to a cache file in place, in the Python tool's layout, so that recording
/// a cycle costs what the cycle delivered and not what the file holds: the file is cut
/// back to where this tool left it and the new IDs go before its closing bracket.
pub struct CacheAppend {
    path: PathBuf,
    file: fs::File,
    buffer: Vec<u8>,
    /// The array has no ID before the ones being added.
    empty: bool,
    length: u64,
    added: u64,
}

impl CacheAppend {
    /// Where IDs appended to `path`, as this tool left it `length` bytes long, begin:
    /// just after its last ID (or its `[`), before the closing bracket.
    pub fn append_point(path: &Path, length: u64) -> Result<u64, CacheError> {
        let tail = read_before(path, length)?;
        let content = tail.bytes.trim_ascii_end();
        let Some(before_bracket) = content.strip_suffix(b"]") else {
            return Err(CacheError::Corrupt {
                path: path.to_path_buf(),
                detail: "it does not end with ]".into(),
            });
        };
        Ok(tail.start + before_bracket.trim_ascii_end().len() as u64)
    }

    /// Opens `path` to add IDs at `at` (from [`Self::append_point`]; `None`: start a
    /// new file). Whatever follows `at` goes: the closing bracket, or what an
    /// interrupted append left.
    pub fn open(path: &Path, at: Option<u64>) -> Result<CacheAppend, CacheError> {
        let write_error = |source: io::Error| CacheError::Write {
            path: path.to_path_buf(),
            source,
        };
        let empty = match at {
            None => true,
            Some(at) => {
                let tail = read_before(path, at)?;
                let kept = tail.bytes.trim_ascii_end();
                if !(kept.ends_with(b"\"") || kept.ends_with(b"[")) {
                    return Err(CacheError::Corrupt {
                        path: path.to_path_buf(),
                        detail: format!("byte {at}, where this tool left its last ID, is not"),
                    });
                }
                kept.ends_with(b"[")
            }
        };
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(write_error)?;
        let start = at.unwrap_or(0);
        file.set_len(start).map_err(write_error)?;
        file.seek(SeekFrom::Start(start)).map_err(write_error)?;
        let mut buffer = Vec::with_capacity(64 * 1024);
        if at.is_none() {
            buffer.push(b'[');
        }
        Ok(CacheAppend {
            path: path.to_path_buf(),
            file,
            buffer,
            empty,
            length: start,
            added: 0,
        })
    }

    pub fn push(&mut self, id: &str) -> Result<(), CacheError> {
        self.buffer
            .extend_from_slice(if self.empty { b"\n    " } else { b",\n    " });
        // serde_json escapes exactly what JSON requires; IDs are hex in practice.
        let _ = serde_json::to_writer(&mut self.buffer, id);
        self.empty = false;
        self.added += 1;
        if self.buffer.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), CacheError> {
        self.file
            .write_all(&self.buffer)
            .map_err(|source| CacheError::Write {
                path: self.path.clone(),
                source,
            })?;
        self.length += self.buffer.len() as u64;
        self.buffer.clear();
        Ok(())
    }

    /// Closes the array and makes the file durable; returns its length and how many
    /// IDs were added.
    pub fn finish(mut self) -> Result<(u64, u64), CacheError> {
        self.buffer
            .extend_from_slice(if self.empty { b"]" } else { b"\n]" });
        self.flush()?;
        self.file.sync_all().map_err(|source| CacheError::Write {
            path: self.path.clone(),
            source,
        })?;
        Ok((self.length, self.added))
    }
}

/// Up to 256 bytes of `path` before `end`, and where they start.
struct Tail {
    start: u64,
    bytes: Vec<u8>,
}

fn read_before(path: &Path, end: u64) -> Result<Tail, CacheError> {
    let read_error = |source: io::Error| CacheError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::open(path).map_err(read_error)?;
    let on_disk = file.metadata().map_err(read_error)?.len();
    if on_disk < end {
        return Err(CacheError::Corrupt {
            path: path.to_path_buf(),
            detail: format!("it is {on_disk} bytes, shorter than the {end} this tool left"),
        });
    }
    let start = end.saturating_sub(256);
    let mut bytes = vec![0; (end - start) as usize];
    file.seek(SeekFrom::Start(start)).map_err(read_error)?;
    file.read_exact(&mut bytes).map_err(read_error)?;
    Ok(Tail { start, bytes })
}

fn parse(bytes: &[u8]) -> Result<IdSet, String> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err("the file is empty; a crash during a non-atomic write leaves it so".into());
    }
    let ids: Vec<String> = serde_json::from_slice(bytes)
        .map_err(|error| format!("expected a JSON array of ID strings: {error}"))?;
    let mut set = IdSet::default();
    for id in ids {
        set.insert(id);
    }
    Ok(set)
}

/// Writes the exact layout Python's `json.dump(ids, f, indent=4)` produces, sorted so
/// that successive versions diff cleanly, of the IDs in `saved` and `unsaved` (which
/// are disjoint). Hex IDs sort as numbers (the same order as their fixed-width text)
/// and are formatted one at a time, so saving a large cache needs little more memory
/// than the cache itself.
fn render(saved: &IdSet, unsaved: &IdSet, out: &mut impl Write) -> io::Result<()> {
    if saved.len() + unsaved.len() == 0 {
        return out.write_all(b"[]");
    }
    let mut hex: Vec<u128> = saved.hex.iter().chain(&unsaved.hex).copied().collect();
    hex.sort_unstable();
    let mut other: Vec<&String> = saved.other.iter().chain(&unsaved.other).collect();
    other.sort_unstable();
    let mut hex = hex
        .into_iter()
        .map(|number| format!("{number:032x}"))
        .peekable();
    let mut other = other.into_iter().peekable();
    out.write_all(b"[\n")?;
    let mut first = true;
    loop {
        let take_hex = match (hex.peek(), other.peek()) {
            (Some(hex), Some(other)) => hex.as_str() <= other.as_str(),
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        let id = if take_hex {
            hex.next()
        } else {
            other.next().cloned()
        };
        if let Some(id) = id {
            out.write_all(if first { b"    " } else { b",\n    " })?;
            // serde_json escapes exactly what JSON requires; IDs are hex in practice.
            serde_json::to_writer(&mut *out, &id)?;
            first = false;
        }
    }
    out.write_all(b"\n]")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PYTHON_CACHE: &str =
        "[\n    \"c45d4288f29e9feb6751b7973c1625b7\",\n    \"00003e2c00a363fff3a25881ccb3e36e\"\n]";

    #[test]
    fn ids_are_appended_in_place_in_the_python_layout() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        std::fs::write(&path, PYTHON_CACHE).unwrap();
        let at = CacheAppend::append_point(&path, PYTHON_CACHE.len() as u64).unwrap();
        let mut append = CacheAppend::open(&path, Some(at)).unwrap();
        append.push("0123456789abcdef0123456789abcdef").unwrap();
        let (length, added) = append.finish().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            PYTHON_CACHE.replace("\n]", ",\n    \"0123456789abcdef0123456789abcdef\"\n]")
        );
        assert_eq!((length, added), (text.len() as u64, 1));

        // An append a crash interrupted has overwritten the closing bracket; opened at
        // the same point again, what it left goes.
        let at = CacheAppend::append_point(&path, length).unwrap();
        let mut interrupted = CacheAppend::open(&path, Some(at)).unwrap();
        for _ in 0..3000 {
            interrupted
                .push("eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee")
                .unwrap();
        }
        drop(interrupted);
        assert!(!std::fs::read_to_string(&path).unwrap().ends_with(']'));
        let mut append = CacheAppend::open(&path, Some(at)).unwrap();
        append.push("ffffffffffffffffffffffffffffffff").unwrap();
        append.finish().unwrap();
        let ids: Vec<String> = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(ids.len(), 4);
    }

    #[test]
    fn a_new_or_empty_file_takes_its_first_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let (length, _) = CacheAppend::open(&path, None).unwrap().finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[]");
        let at = CacheAppend::append_point(&path, length).unwrap();
        let mut append = CacheAppend::open(&path, Some(at)).unwrap();
        append.push("c45d4288f29e9feb6751b7973c1625b7").unwrap();
        append.push("00003e2c00a363fff3a25881ccb3e36e").unwrap();
        append.finish().unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), PYTHON_CACHE);
        assert!(
            CacheAppend::append_point(&path, 10_000).is_err()
                && CacheAppend::open(&path, Some(10_000)).is_err(),
            "a file shorter than this tool left it is not appended to"
        );
    }

    #[test]
    fn what_was_never_saved_can_be_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let mut cache = DedupCache::load(&path).unwrap();
        let saved = PunchId::from_stored("c45d4288f29e9feb6751b7973c1625b7".into());
        let unsaved = PunchId::from_stored("00003e2c00a363fff3a25881ccb3e36e".into());
        assert!(cache.insert(saved.clone()));
        cache.save().unwrap();
        assert!(cache.insert(unsaved.clone()));
        assert!(!cache.insert(saved.clone()));
        assert!(cache.contains(&unsaved) && cache.len() == 2);
        cache.forget_unsaved();
        assert!(cache.contains(&saved) && !cache.contains(&unsaved));
        assert_eq!(DedupCache::load(&path).unwrap().len(), 1);
    }

    #[test]
    fn reads_the_python_tools_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        fs::write(&path, PYTHON_CACHE).unwrap();
        let cache = DedupCache::load(&path).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(cache.contains(&PunchId::from_stored(
            "c45d4288f29e9feb6751b7973c1625b7".into()
        )));
    }

    #[test]
    fn writes_what_python_json_load_reads_back_identically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let mut cache = DedupCache::load(&path).unwrap();
        cache.insert(PunchId::from_stored(
            "c45d4288f29e9feb6751b7973c1625b7".into(),
        ));
        cache.insert(PunchId::from_stored(
            "00003e2c00a363fff3a25881ccb3e36e".into(),
        ));
        cache.save().unwrap();
        // Sorted, and laid out exactly as json.dump(indent=4) would write that list.
        let expected = "[\n    \"00003e2c00a363fff3a25881ccb3e36e\",\n    \"c45d4288f29e9feb6751b7973c1625b7\"\n]";
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }

    #[test]
    fn corrupt_or_empty_files_are_errors_that_name_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        for content in ["", "[\"abc\", ", "{\"ids\": []}", "[1, 2]"] {
            fs::write(&path, content).unwrap();
            let message = DedupCache::load(&path).unwrap_err().to_string();
            assert!(message.contains("build-cache"), "{message}");
            assert!(message.contains(CACHE_FILE_NAME), "{message}");
        }
    }

    #[test]
    fn ids_that_are_not_lowercase_hex_survive_a_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let ids = [
            "00000000000000000000000000000001",
            "C45D4288F29E9FEB6751B7973C1625B7",
            "custom-id",
        ];
        fs::write(&path, serde_json::to_string(&ids).unwrap()).unwrap();
        let mut cache = DedupCache::load(&path).unwrap();
        for id in ids {
            assert!(cache.contains(&PunchId::from_stored(id.into())), "{id}");
        }
        assert!(!cache.contains(&PunchId::from_stored(
            "c45d4288f29e9feb6751b7973c1625b7".into()
        )));
        cache.insert(PunchId::from_stored(
            "ffffffffffffffffffffffffffffffff".into(),
        ));
        cache.save().unwrap();
        let written: Vec<String> =
            serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(
            written,
            vec![
                "00000000000000000000000000000001",
                "C45D4288F29E9FEB6751B7973C1625B7",
                "custom-id",
                "ffffffffffffffffffffffffffffffff",
            ]
        );
    }

    #[test]
    fn saving_an_unchanged_cache_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(CACHE_FILE_NAME);
        let mut cache = DedupCache::load(&path).unwrap();
        cache.save().unwrap();
        assert!(!path.exists());
    }
}
