//! The binary's shell: `pubsys manifest show F | true` (stdout a closed pipe) ends quietly with
//! the command's own exit code, and log lines in a redirected stderr carry no ANSI colours.

use std::process::Command;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

fn pubsys(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pubsys"));
    c.args(args);
    c
}

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let dir = test_support::tempdir();
    let f = dir.path().join("manifest.json");
    let f = f.to_str().unwrap();
    let missing = dir.path().join("missing.json");
    let missing = missing.to_str().unwrap();
    let out = pubsys(&["manifest", "init", f]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for args in [
        &["manifest", "show", f][..],
        &["--json", "manifest", "show", f],
        &["manifest", "validate", f],
        // An error whose JSON goes to stdout.
        &["--json", "manifest", "show", missing],
    ] {
        let out = pubsys(args).output().unwrap();
        assert!(!out.stdout.is_empty(), "{args:?} prints nothing");
        let code = out.status.code().unwrap();
        assert_quiet(&args.join(" "), into_closed_pipe(&mut pubsys(args)), code);
    }
}

#[test]
fn stdout_and_stderr_into_one_closed_pipe_is_not_a_panic() {
    // `pubsys … 2>&1 | true`: the error text, progress and the JSON all meet EPIPE.
    let dir = test_support::tempdir();
    let missing = dir.path().join("missing.json");
    let args = [
        "-vv",
        "--json",
        "manifest",
        "show",
        missing.to_str().unwrap(),
    ];
    let want = pubsys(&args).output().unwrap().status.code().unwrap();
    assert_ne!(want, 0);
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let status = pubsys(&args)
        .stdout(writer.try_clone().unwrap())
        .stderr(writer)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(want));
}

#[test]
fn redirected_stderr_has_no_colours() {
    let dir = test_support::tempdir();
    let f = dir.path().join("manifest.json");
    let f = f.to_str().unwrap();
    pubsys(&["manifest", "init", f]).output().unwrap();
    let err = stderr_in_file(&mut pubsys(&["-vv", "manifest", "show", f]), dir.path());
    assert_plain("pubsys -vv manifest show", &err, "pubsys starting");
}

/// `--help`, `pubsys.1` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        std::path::Path::new(env!("CARGO_BIN_EXE_pubsys")),
        "pubsys",
        &abos_shell::exit::rows::<pubsys::ExitStatus>(),
    );
}
