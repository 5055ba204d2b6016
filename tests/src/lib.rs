//! Shared test support for the workspace (dev-dependency only).
//!
//! - [`require_tool`]: capability gate that never passes silently.
//! - [`http::Server`]: a static file server on `127.0.0.1:0` with request log and fault injection.
//! - [`tuf`]: test keys and signed roots generated at test time (no committed signed fixtures).
#![deny(missing_docs)]
#![allow(clippy::print_stderr)]

pub mod bench;
pub mod http;
pub mod loopdev;
/// S3 servers for the object-storage tests (issue 15).
pub mod s3;
pub mod shell;
pub mod tuf;

use std::path::PathBuf;

/// True if `name` is an executable on `PATH`.
///
/// When it is missing: under `CI=true` this panics (CI installs every tool, so a missing one is a
/// defect); otherwise it records a skip with [`skip`] and returns false, and the caller returns
/// early. The skip is therefore visible, never silent.
pub fn require_tool(name: &str) -> bool {
    if find_on_path(name).is_some() {
        return true;
    }
    let reason = format!("required tool `{name}` is not installed (run scripts/setup.sh)");
    if in_ci() {
        panic!("{reason}; CI must have it");
    }
    skip(&reason);
    false
}

/// True under `CI=true` (or `CI=1`), where a test may not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Environment variable naming the file where [`skip`] records skipped tests.
pub const SKIP_LOG_ENV: &str = "ABOS_SKIP_LOG";

/// Records that the calling test is skipping (the caller then returns early): prints
/// `SKIP: <reason>` on stderr and, when `ABOS_SKIP_LOG` names a file, appends the line
/// `<test binary>::<test name>: <reason>` to it. `cargo test` hides the stderr of passing tests,
/// so `scripts/test.sh` sets `ABOS_SKIP_LOG` and prints every recorded skip after the run.
/// The test name is the libtest thread's name (`?` when called off the test's thread).
pub fn skip(reason: &str) {
    eprintln!("SKIP: {reason}");
    let Some(path) = std::env::var_os(SKIP_LOG_ENV).filter(|p| !p.is_empty()) else {
        return;
    };
    let path = PathBuf::from(path);
    if let Err(e) = record_skip(&path, &test_id(), reason) {
        eprintln!(
            "SKIP not recorded in {} ({SKIP_LOG_ENV}): {e}",
            path.display()
        );
    }
}

/// Appends `<test>: <reason>` as one line to `log`: one short `O_APPEND` write, so lines from
/// parallel tests and test binaries do not mix.
fn record_skip(log: &std::path::Path, test: &str, reason: &str) -> std::io::Result<()> {
    let line = format!("{test}: {}\n", reason.replace(['\n', '\r'], " "));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)?;
    std::io::Write::write_all(&mut f, line.as_bytes())
}

/// `<test binary>::<test name>`, e.g. `crash::kill_9_at_chosen_steps` (cargo's hash suffix removed).
fn test_id() -> String {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .map(|n| match n.rsplit_once('-') {
            Some((stem, hash)) if hash.chars().all(|c| c.is_ascii_hexdigit()) => stem.to_owned(),
            _ => n,
        })
        .unwrap_or_else(|| "?".to_owned());
    let thread = std::thread::current();
    let test = thread.name().filter(|n| *n != "main").unwrap_or("?");
    format!("{binary}::{test}")
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

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn skips_are_appended_one_line_each() {
        let dir = tempdir();
        let log = dir.path().join("skipped.log");
        record_skip(&log, "crash::a", "required tool `x` is not installed").unwrap();
        record_skip(&log, "vm::b", "two\nlines").unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "crash::a: required tool `x` is not installed\nvm::b: two lines\n"
        );
    }

    #[test]
    fn the_test_id_names_this_test() {
        let id = test_id();
        assert!(id.ends_with("::test::the_test_id_names_this_test"), "{id}");
        assert!(!id.contains('/'), "{id}");
    }
}
