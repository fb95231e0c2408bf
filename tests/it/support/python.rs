//! Reference Python clients (pyzk, firebase-admin) in a throwaway virtualenv. Without
//! Python or network access to PyPI the tests that use them fail loudly, never skip.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Creates a virtualenv in `dir` with `packages` (pip requirement specs) installed and
/// returns its interpreter.
pub fn venv_with(dir: &Path, packages: &[&str]) -> PathBuf {
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(dir)
        .status()
        .expect("python3 runs (the cross-checks against the Python clients need it)");
    assert!(created.success(), "python3 -m venv failed");
    let python = dir.join("bin").join("python");
    let installed = Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .status()
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip could not install {packages:?} from PyPI"
    );
    python
}

/// A script of ours in `scripts/`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(name)
}

/// `program` from a virtualenv kept in target/`name` with `requirement` installed: made
/// once (again when the requirement changes), shared by the tests and their runs.
pub fn kept_program(name: &str, requirement: &str, program: &str) -> PathBuf {
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _once = INSTALL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let venv = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(name);
    let path = venv.join("bin").join(program);
    let marker = venv.join(requirement);
    if !marker.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        venv_with(&venv, &[requirement]);
        assert!(path.exists(), "{requirement} installed no {program}");
        std::fs::write(&marker, "").expect("mark the virtualenv");
    }
    path
}
