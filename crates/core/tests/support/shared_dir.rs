//! Where the drift checks find the shared folder (the specification and vectors this
//! repository copies), and what they do when it is not there.

use std::io::Write;
use std::path::{Path, PathBuf};

/// `../shared` beside the repository, or `$CHIPI_SHARED_DIR` when that is set. When the
/// folder is not there: `None`, with a note on stderr (shown even when the test passes)
/// that `check` checked nothing; under CI (`CI` set, not empty, `0` or `false`), where
/// the folder is always present, a panic instead: a drift check must not pass by
/// checking nothing.
pub fn shared_dir(check: &str) -> Option<PathBuf> {
    let dir = match std::env::var_os("CHIPI_SHARED_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    };
    if dir.is_dir() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| !matches!(v.as_str(), "" | "0" | "false"));
    assert!(
        !ci,
        "{check}: the shared folder {} is missing, and CI is set: the drift check would check nothing",
        dir.display()
    );
    // Straight to stderr, not through `eprintln!`, which the test harness captures and
    // shows only for a failing test: a skip must be seen in a passing run.
    let _ = writeln!(
        std::io::stderr(),
        "{check}: SKIPPED, checked nothing: the shared folder {} is missing \
         (set CHIPI_SHARED_DIR to where it is)",
        dir.display()
    );
    None
}
