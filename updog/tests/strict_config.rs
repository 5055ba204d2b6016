//! Issues 11 and 14: updog.toml is parsed strictly (updog-config). A misspelt key or a URL updog
//! cannot fetch is a configuration error (exit 2) naming the file, the line and the key, found
//! before anything is fetched or written.

mod common;

use common::*;
use test_support::http::Server;

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn misspelt_keys_and_foreign_urls_are_configuration_errors() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let repo = Repo::new(dir.path());
    let server = Server::serve_dir(&repo.dir);
    let rel = [
        make_release(dir.path(), "1.0.0", MIB, &[]),
        make_release(dir.path(), "1.1.0", MIB, &[]),
    ];
    let files: Vec<_> = rel.iter().flat_map(|r| r.target_files()).collect();
    repo.publish(&manifest(&[&rel[0], &rel[1]]), &files, RoleVersions::all(1));
    let host = Host::new(dir.path(), &repo, &server.url(), &rel[0], 4, "");
    let config = host.root.join("etc/updog.toml");
    let before = std::fs::read(&host.disk).unwrap();

    // `seeed = 5` used to pass silently (the test default seed stayed in force).
    host.set_config(&server.url(), "seeed = 5\n");
    for args in [&["check-update"][..], &["update", "--now"][..]] {
        let out = host.updog(args);
        assert_eq!(code(&out), 2, "{args:?}: {}", show(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "error: {}:3: unknown key `seeed`; did you mean `seed`?",
                config.display()
            )),
            "{}",
            show(&out)
        );
    }

    // An ftp:// repository used to fail as a network error (15).
    host.set_config("ftp://mirror.example/", "");
    let out = host.updog(&["check-update"]);
    assert_eq!(code(&out), 2, "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:1: `metadata_base_url` = \"ftp://mirror.example/metadata/\" uses the scheme \"ftp\"",
            config.display()
        )),
        "{}",
        show(&out)
    );
    assert!(
        std::fs::read(&host.disk).unwrap() == before,
        "the disk changed"
    );

    // A correct file works (and the same host updates).
    host.set_config(&server.url(), "seed = 5\n");
    let out = host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
}
