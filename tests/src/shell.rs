//! The binaries' shell as a user meets it: a closed stdout pipe (`cmd | true`) and a
//! redirected stderr (no ANSI colours). One copy of these checks for every binary's tests.

use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `cmd` with stdout the write end of a pipe whose read end is already closed (as in
/// `cmd | true` once `true` has exited), so its first write to stdout fails with EPIPE.
/// Returns the exit code and stderr.
/// Then runs it again with stderr into the same closed pipe (`cmd 2>&1 | true`) and checks the
/// exit code is the same.
pub fn into_closed_pipe(cmd: &mut Command) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = cmd
        .stdout(writer.try_clone().unwrap())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let both = cmd
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(
        both.code(),
        out.status.code(),
        "with stderr into the closed pipe too: {cmd:?}"
    );
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Asserts a run into a closed pipe ended quietly with `want` (not 101, no panic message).
pub fn assert_quiet(what: &str, (code, stderr): (Option<i32>, String), want: i32) {
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(code, Some(want), "{what}: {stderr}");
}

/// Runs `cmd` with stderr redirected to a file (not a terminal) and NO_COLOR unset; returns
/// what it wrote there.
pub fn stderr_in_file(cmd: &mut Command, dir: &Path) -> Vec<u8> {
    let path = dir.join("stderr.txt");
    let file = std::fs::File::create(&path).unwrap();
    cmd.env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    std::fs::read(&path).unwrap()
}

/// Asserts log lines were written and none carries an ANSI escape.
pub fn assert_plain(what: &str, stderr: &[u8], expect: &str) {
    let text = String::from_utf8_lossy(stderr);
    assert!(text.contains(expect), "{what}: no log line in {text:?}");
    assert!(!stderr.contains(&0x1b), "{what}: ANSI escape in {text:?}");
}
