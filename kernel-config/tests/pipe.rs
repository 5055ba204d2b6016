//! The binary's shell: a closed stdout pipe (`kernel-config check … | true`) ends quietly with
//! the command's own exit code, and log lines in a redirected stderr carry no ANSI colours.

use std::path::Path;
use std::process::Command;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

fn check(config: &Path, json: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kernel-config"));
    if json {
        c.arg("--json");
    }
    c.arg("check").arg("--config").arg(config);
    c
}

#[test]
fn closed_stdout_pipe_is_not_a_panic() {
    let dir = test_support::tempdir();
    let config = dir.path().join(".config");
    // Nothing the image needs: a long report, and exit 1 (the image cannot boot).
    std::fs::write(&config, "CONFIG_FOO=y\n").unwrap();
    assert_quiet("check", into_closed_pipe(&mut check(&config, false)), 1);
    assert_quiet(
        "check --json",
        into_closed_pipe(&mut check(&config, true)),
        1,
    );
}

#[test]
fn redirected_stderr_has_no_colours() {
    let dir = test_support::tempdir();
    let config = dir.path().join(".config");
    std::fs::write(&config, "CONFIG_FOO=y\n").unwrap();
    let mut c = check(&config, false);
    c.env("KERNEL_CONFIG_LOG", "debug");
    let err = stderr_in_file(&mut c, dir.path());
    assert_plain("kernel-config check", &err, "kernel-config starting");
}

/// `--help`, `kernel-config.1` and README's exit-code row are the same table, from `ExitStatus`.
#[test]
fn exit_table_agrees_in_help_man_page_and_readme() {
    test_support::shell::assert_exit_table_agrees(
        Path::new(env!("CARGO_BIN_EXE_kernel-config")),
        "kernel-config",
        &abos_shell::exit::rows::<kernel_config::ExitStatus>(),
    );
}
