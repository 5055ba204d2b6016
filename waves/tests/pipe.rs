//! The binary's shell: a closed stdout pipe (`waves schedule … | true`) ends quietly with exit
//! 0, and log lines in a redirected stderr carry no ANSI colours.

use std::path::Path;
use std::process::{Command, Stdio};

fn waves(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_waves"));
    c.args(args);
    c
}

const START: &str = "2025-08-25T17:00:00Z";

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    for args in [
        &["schedule", "default", "--start", START][..],
        &["--json", "schedule", "default", "--start", START],
        &["seed", "default", "--start", START, "--seed", "7"],
    ] {
        assert_quiet(&args.join(" "), into_closed_pipe(&mut waves(args)), 0);
    }
}

#[test]
fn redirected_stderr_has_no_colours() {
    let dir = tempfile::tempdir().unwrap();
    let err = stderr_in_file(
        &mut waves(&["-vv", "schedule", "default", "--start", START]),
        dir.path(),
    );
    assert_plain("waves -vv schedule", &err, "waves starting");
}

/// Runs `cmd` with stdout the write end of a pipe whose read end is already closed (as in
/// `cmd | true` once `true` has exited), so its first write to stdout fails with EPIPE.
/// Returns the exit code and stderr.
/// Then runs it again with stderr into the same closed pipe (`cmd 2>&1 | true`) and checks the
/// exit code is the same.
fn into_closed_pipe(cmd: &mut Command) -> (Option<i32>, String) {
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
fn assert_quiet(what: &str, (code, stderr): (Option<i32>, String), want: i32) {
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert_eq!(code, Some(want), "{what}: {stderr}");
}

/// Runs `cmd` with stderr redirected to a file (not a terminal) and NO_COLOR unset; returns
/// what it wrote there.
fn stderr_in_file(cmd: &mut Command, dir: &Path) -> Vec<u8> {
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
fn assert_plain(what: &str, stderr: &[u8], expect: &str) {
    let text = String::from_utf8_lossy(stderr);
    assert!(text.contains(expect), "{what}: no log line in {text:?}");
    assert!(!stderr.contains(&0x1b), "{what}: ANSI escape in {text:?}");
}
