//! The binary's shell: `updog check-update --all | true` (stdout a closed pipe) ends quietly
//! with the command's own exit code, and log lines in a redirected stderr carry no ANSI
//! colours.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use test_support::http::Server;

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let repo = Repo::new(dir.path());
    let server = Server::serve_dir(&repo.dir);
    let rel: Vec<Release> = ["1.0.0", "1.1.0"]
        .iter()
        .map(|v| make_release(dir.path(), v, MIB, &[]))
        .collect();
    let files: Vec<_> = rel.iter().flat_map(|r| r.target_files()).collect();
    repo.publish(&manifest(&[&rel[0], &rel[1]]), &files, RoleVersions::all(1));
    let host = Host::new(dir.path(), &repo, &server.url(), &rel[0], 4, "");
    // Each command as a reader that stays would see it, then into a closed pipe: the same
    // exit code, no panic. The last one is an error whose JSON goes to stdout.
    for args in [
        &["check-update", "--all"][..],
        &["check-update", "--all", "--json"],
        &["check-update"],
        &["check-update", "--json"],
        &["check-update", "--image", "9.9.9", "--json"],
    ] {
        let out = host.updog(args);
        assert!(
            !out.stdout.is_empty(),
            "{args:?} prints nothing: {}",
            show(&out)
        );
        let code = out.status.code().unwrap();
        assert_quiet(
            &args.join(" "),
            into_closed_pipe(&mut host.command(args)),
            code,
        );
    }

    let err = stderr_in_file(
        &mut host.command(&["--log-level", "debug", "check-update"]),
        dir.path(),
    );
    assert_plain(
        "updog --log-level debug check-update",
        &err,
        "updog starting",
    );
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
