//! The binary's shell: a closed stdout pipe (`signpost status | true`) ends quietly with the
//! command's own exit code, and log lines in a redirected stderr carry no ANSI colours.

mod common;

use common::{Sets, native_image};
use std::path::Path;
use std::process::Command;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

fn signpost(disk: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_signpost"));
    c.arg("--disk").arg(disk).args(["--active", "a"]).args(args);
    c
}

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let dir = test_support::tempdir();
    let disk = native_image(dir.path(), Sets::Dual, 512);
    assert_quiet(
        "status",
        into_closed_pipe(&mut signpost(&disk, &["status"])),
        0,
    );
    assert_quiet(
        "status --json",
        into_closed_pipe(&mut signpost(&disk, &["status", "--json"])),
        0,
    );
}

#[test]
fn redirected_stderr_has_no_colours() {
    let dir = test_support::tempdir();
    let disk = native_image(dir.path(), Sets::Dual, 512);
    let err = stderr_in_file(&mut signpost(&disk, &["-vv", "status"]), dir.path());
    assert_plain("signpost -vv status", &err, "signpost starting");
}

/// `--help`, `signpost.1` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        Path::new(env!("CARGO_BIN_EXE_signpost")),
        "signpost",
        &abos_shell::exit::rows::<signpost::ExitStatus>(),
    );
}
