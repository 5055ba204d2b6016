//! The binary's shell: a closed stdout pipe (`waves schedule … | true`) ends quietly with exit
//! 0, and log lines in a redirected stderr carry no ANSI colours.

use std::process::Command;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

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

/// `--help`, `waves.1` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        std::path::Path::new(env!("CARGO_BIN_EXE_waves")),
        "waves",
        &abos_shell::exit::rows::<waves::ExitStatus>(),
    );
}
