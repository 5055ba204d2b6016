//! The binary's shell: `repo-tools root verify R | true` (stdout a closed pipe) ends quietly
//! with the command's own exit code, and log lines in a redirected stderr carry no ANSI
//! colours.

use std::process::Command;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

fn repo_tools(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_repo-tools"));
    c.args(args);
    c
}

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let dir = test_support::tempdir();
    let (signed, _key) = test_support::tuf::simple_root(dir.path());
    let signed = signed.to_str().unwrap();
    let unsigned = dir.path().join("unsigned.json");
    let unsigned = unsigned.to_str().unwrap();
    let out = repo_tools(&["root", "init", unsigned]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    for (args, want) in [
        (&["root", "verify", signed][..], 0),
        (&["--json", "root", "verify", signed], 0),
        // A negative answer (no keys, no signatures): exit 1 either way.
        (&["root", "verify", unsigned], 1),
    ] {
        let out = repo_tools(args).output().unwrap();
        assert!(!out.stdout.is_empty(), "{args:?} prints nothing");
        assert_eq!(out.status.code(), Some(want), "{args:?}");
        assert_quiet(
            &args.join(" "),
            into_closed_pipe(&mut repo_tools(args)),
            want,
        );
    }
}

#[test]
fn redirected_stderr_has_no_colours() {
    let dir = test_support::tempdir();
    let (root, _key) = test_support::tuf::simple_root(dir.path());
    let err = stderr_in_file(
        &mut repo_tools(&["-vv", "root", "verify", root.to_str().unwrap()]),
        dir.path(),
    );
    assert_plain("repo-tools -vv root verify", &err, "repo-tools starting");
}

/// `--help`, `repo-tools.1` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        std::path::Path::new(env!("CARGO_BIN_EXE_repo-tools")),
        "repo-tools",
        &abos_shell::exit::rows::<repo_tools::ExitStatus>(),
    );
}
