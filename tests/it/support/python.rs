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
