//! The binary's shell: `updog check-update --all | true` (stdout a closed pipe) ends quietly
//! with the command's own exit code, and log lines in a redirected stderr carry no ANSI
//! colours.

mod common;

use common::*;
use test_support::http::Server;
use test_support::shell::{assert_plain, assert_quiet, into_closed_pipe, stderr_in_file};

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
