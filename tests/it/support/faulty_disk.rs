//! A disk that fails on cue, for the binary under test: a small C library, preloaded
//! with `LD_PRELOAD`, that makes the kernel's answer to writes into one file an I/O
//! error (EIO, or EROFS: a file system remounted read-only) — from the Nth write on, for
//! a number of writes, or while a switch file exists. Everything else (the real SQLite, the real file system) is untouched, so
//! the binary meets the error on its production path, as it would on a failing disk. Root ignores file permissions,
//! so making a file unwritable cannot produce this here.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const SHIM: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static long seen = 0;

/* The error a failing write gets: FAULTY_DISK_ERRNO, else EIO. */
static int failure(void) {
    const char *number = getenv("FAULTY_DISK_ERRNO");
    return number ? atoi(number) : EIO;
}

/* Whether this write into `fd` is to fail: the fd's path ends with
   FAULTY_DISK_SUFFIX, and it is one of FAULTY_DISK_COUNT writes starting with the
   FAULTY_DISK_FROM-th (1-based) into such a file. */
static int should_fail(int fd) {
    const char *suffix = getenv("FAULTY_DISK_SUFFIX");
    if (!suffix) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t length = strlen(suffix);
    if ((size_t)n < length || strcmp(path + n - length, suffix) != 0) return 0;
    const char *switch_file = getenv("FAULTY_DISK_WHILE");
    if (switch_file) return access(switch_file, F_OK) == 0;
    long index = __atomic_add_fetch(&seen, 1, __ATOMIC_SEQ_CST);
    long from = atol(getenv("FAULTY_DISK_FROM") ? getenv("FAULTY_DISK_FROM") : "1");
    long count = atol(getenv("FAULTY_DISK_COUNT") ? getenv("FAULTY_DISK_COUNT") : "1000000000");
    return index >= from && index < from + count;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real) real = dlsym(RTLD_NEXT, "pwrite64");
    if (should_fail(fd)) { errno = failure(); return -1; }
    return real(fd, buf, count, offset);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    return pwrite64(fd, buf, count, offset);
}

ssize_t write(int fd, const void *buf, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = dlsym(RTLD_NEXT, "write");
    if (should_fail(fd)) { errno = failure(); return -1; }
    return real(fd, buf, count);
}
"#;

/// The compiled library (built once per test run with the system's C compiler, which
/// building this crate needs anyway).
pub fn library() -> &'static Path {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("iclock-sync-faulty-disk-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("shim dir");
        let source = dir.join("faulty_disk.c");
        let library = dir.join("faulty_disk.so");
        std::fs::write(&source, SHIM).expect("write the shim");
        let status = std::process::Command::new("cc")
            .args(["-shared", "-fPIC", "-O1", "-o"])
            .arg(&library)
            .arg(&source)
            .arg("-ldl")
            .status()
            .expect("cc runs (a C compiler is needed to build this crate too)");
        assert!(status.success(), "the faulty-disk shim does not compile");
        library
    })
}

/// The environment that makes every write into files whose path ends with `suffix`
/// fail with EIO while the file `switch` exists: a disk failing from a moment the test
/// picks until it deletes the file.
pub fn failing_writes_while(suffix: &str, switch: &Path) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), library().display().to_string()),
        ("FAULTY_DISK_SUFFIX".into(), suffix.into()),
        ("FAULTY_DISK_WHILE".into(), switch.display().to_string()),
    ]
}

/// As [`failing_writes_while`], with the error a file system remounted read-only
/// gives (EROFS).
pub fn read_only_while(suffix: &str, switch: &Path) -> Vec<(String, String)> {
    let mut environment = failing_writes_while(suffix, switch);
    environment.push(("FAULTY_DISK_ERRNO".into(), "30".into()));
    environment
}

/// The environment that makes writes number `from` to `from + count - 1` into files
/// whose path ends with `suffix` fail with EIO.
pub fn failing_writes(suffix: &str, from: u64, count: u64) -> Vec<(String, String)> {
    vec![
        ("LD_PRELOAD".into(), library().display().to_string()),
        ("FAULTY_DISK_SUFFIX".into(), suffix.into()),
        ("FAULTY_DISK_FROM".into(), from.to_string()),
        ("FAULTY_DISK_COUNT".into(), count.to_string()),
    ]
}
