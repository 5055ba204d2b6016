//! Shared test support for the workspace (dev-dependency only).
//!
//! - [`require_tool`]: capability gate that never passes silently.
//! - [`http::Server`]: a static file server on `127.0.0.1:0` with request log and fault injection.
//! - [`tuf`]: test keys and signed roots generated at test time (no committed signed fixtures).
#![deny(missing_docs)]
#![allow(clippy::print_stderr)]

pub mod bench;
pub mod http;
pub mod shell;
pub mod tuf;

use std::path::PathBuf;

/// True if `name` is an executable on `PATH`.
///
/// When it is missing: under `CI=true` this panics (CI installs every tool, so a missing one is a
/// defect); otherwise it prints `SKIP: <reason>` to stderr and returns false, and the caller returns
/// early. The skip is therefore visible in the test output, never silent.
pub fn require_tool(name: &str) -> bool {
    if find_on_path(name).is_some() {
        return true;
    }
    let reason =
        format!("SKIP: required tool `{name}` is not installed (run .ci/run's install step)");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{reason}; CI must have it");
    }
    eprintln!("{reason}");
    false
}

/// Full path of an executable on `PATH` (also searching the sbin directories).
pub fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let extra = ["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from);
    std::env::split_paths(&path)
        .chain(extra)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A fresh temporary directory for one test.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("abos-test-")
        .tempdir()
        .expect("create temp dir")
}
