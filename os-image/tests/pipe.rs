//! The binary's shell: a closed stdout pipe (`os-image … | true`) ends quietly with exit 0,
//! and log lines in a redirected stderr carry no ANSI colours.

use std::path::Path;
use std::process::Command;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

fn os_image(args: &[&str], out: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_os-image"));
    c.args(args).arg("generate-docs").arg("--out").arg(out);
    c
}

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let dir = test_support::tempdir();
    let docs = dir.path().join("docs");
    assert_quiet(
        "generate-docs",
        into_closed_pipe(&mut os_image(&[], &docs)),
        0,
    );
    assert_quiet(
        "--json generate-docs",
        into_closed_pipe(&mut os_image(&["--json"], &docs)),
        0,
    );
    assert!(docs.join("os-image.1").is_file());
}

#[test]
fn redirected_stderr_has_no_colours() {
    let dir = test_support::tempdir();
    let err = stderr_in_file(
        &mut os_image(&["-vv"], &dir.path().join("docs")),
        dir.path(),
    );
    assert_plain("os-image -vv generate-docs", &err, "os-image starting");
}

/// `--help`, `os-image.1` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        Path::new(env!("CARGO_BIN_EXE_os-image")),
        "os-image",
        &abos_shell::exit::rows::<os_image::ExitStatus>(),
    );
}
