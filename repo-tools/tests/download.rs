//! `repo-tools download` (as `tuftool download`) and `mirror --metadata-only` (as `tuftool clone
//! --metadata-only`) against real signed repositories served over HTTP on 127.0.0.1; files
//! written readable by others under the usual umask.

mod common;

use common::*;
use repo_tools::Outcome;
use repo_tools::download::DownloadReport;
use repo_tools::error::{Error, ExitStatus};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use test_support::http::NobodyServer;
use test_support::http::Server;

async fn download(args: &[&str]) -> repo_tools::Result<DownloadReport> {
    let mut full = vec!["download"];
    full.extend_from_slice(args);
    match cli(&full).await? {
        Outcome::Downloaded(r) => Ok(r),
        other => panic!("{other:?}"),
    }
}

async fn served(dir: &Path) -> (Repo, Server) {
    let repo = Repo::simple(&dir.join("src"));
    repo.add_files(&[
        ("a.bin", &[1u8; 5000]),
        ("b.bin", b"bee"),
        ("c.bin", &[3u8; 70_000]),
    ]);
    repo.publish(1).await;
    let server = Server::serve_dir(&repo.dir);
    (repo, server)
}

/// Entries of `dir` other than ours (a failed run must leave no staging directory).
fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn download_writes_plain_names_verified_over_http() {
    let dir = test_support::tempdir();
    let (repo, server) = served(dir.path()).await;
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());

    // Every target, the brief's spelling.
    let out = dir.path().join("all");
    let r = download(&[
        s(&out),
        "--root",
        s(&repo.root),
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
    ])
    .await
    .unwrap();
    assert_eq!(r.targets.len(), 3);
    assert_eq!(r.bytes, 5000 + 3 + 70_000);
    assert_eq!(entries(&out), ["a.bin", "b.bin", "c.bin"]);
    for name in ["a.bin", "b.bin", "c.bin"] {
        assert_eq!(
            std::fs::read(out.join(name)).unwrap(),
            std::fs::read(repo.inputs().join(name)).unwrap(),
            "{name}"
        );
    }
    // The targets came over HTTP under their consistent names.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/targets/") && r.path.ends_with(".c.bin")),
        "{:?}",
        server.requests()
    );

    // Chosen targets, tuftool's short flags: -r -m -t -n.
    let out = dir.path().join("some");
    let r = download(&[
        "-r",
        s(&repo.root),
        "-m",
        &murl,
        "-t",
        &turl,
        "-n",
        "b.bin",
        "--target",
        "c.bin",
        s(&out),
    ])
    .await
    .unwrap();
    assert_eq!(r.targets.len(), 2);
    assert_eq!(entries(&out), ["b.bin", "c.bin"]);

    // An existing directory is never written into.
    let err = download(&[
        s(&out),
        "--root",
        s(&repo.root),
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, Error::OutputExists { .. }), "{}", chain(&err));
    assert_eq!(err.exit_status(), ExitStatus::Usage);

    // A name the repository does not list: refused before anything is fetched.
    let out = dir.path().join("none");
    let err = download(&[
        s(&out),
        "--root",
        s(&repo.root),
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
        "--target",
        "zzz.bin",
    ])
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::SelectedTargetMissing { ref name } if name == "zzz.bin"),
        "{}",
        chain(&err)
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn a_tampered_target_leaves_nothing_behind() {
    let dir = test_support::tempdir();
    let (repo, server) = served(dir.path()).await;
    let served = files_under(&repo.targets())
        .into_iter()
        .find(|f| f.ends_with(".c.bin"))
        .unwrap();
    let path = repo.targets().join(&served);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[60_000] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let parent = dir.path().join("downloads");
    std::fs::create_dir_all(&parent).unwrap();
    let out = parent.join("out");
    let err = download(&[
        s(&out),
        "--root",
        s(&repo.root),
        "--metadata-url",
        &format!("{}metadata/", server.url()),
        "--targets-url",
        &format!("{}targets/", server.url()),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.exit_status(), ExitStatus::Untrusted, "{}", chain(&err));
    assert!(
        matches!(err, Error::ReadTarget { ref name, .. } if name == "c.bin"),
        "{}",
        chain(&err)
    );
    assert!(entries(&parent).is_empty(), "{:?}", entries(&parent));
}

#[tokio::test]
async fn metadata_only_mirror_copies_metadata_and_no_target() {
    let dir = test_support::tempdir();
    let (repo, server) = served(dir.path()).await;
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());
    let out = dir.path().join("mirror");
    let args = |extra: &[&'static str]| {
        let mut v = vec![
            "mirror".to_owned(),
            "--metadata-url".into(),
            murl.clone(),
            "--targets-url".into(),
            turl.clone(),
            "--root".into(),
            s(&repo.root).into(),
            "--out".into(),
            s(&out).into(),
        ];
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    server.clear_requests();
    let a = args(&["--metadata-only"]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let Outcome::Mirrored(r) = cli(&refs).await.unwrap() else {
        panic!()
    };
    assert_eq!((r.fetched, r.reused), (0, 0));
    assert!(r.targets.is_empty());
    let files = files_under(&out);
    for f in [
        "metadata/1.root.json",
        "metadata/timestamp.json",
        "metadata/1.snapshot.json",
        "metadata/1.targets.json",
    ] {
        assert!(files.contains(&f.to_owned()), "{f} missing from {files:?}");
        assert_eq!(
            std::fs::read(out.join(f)).unwrap(),
            std::fs::read(repo.dir.join(f)).unwrap(),
            "{f} byte-identical"
        );
    }
    assert!(
        !files.iter().any(|f| f.starts_with("targets/")),
        "{files:?}"
    );
    assert!(
        !server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/targets/")),
        "no target requested: {:?}",
        server.requests()
    );
    // The metadata-only mirror verifies, and a later full run fills in the targets.
    let Outcome::MirrorVerified(v) = cli(&["verify-mirror", s(&out), "--root", s(&repo.root)])
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(v.target_files, 0);
    let a = args(&[]);
    let refs: Vec<&str> = a.iter().map(String::as_str).collect();
    let Outcome::Mirrored(r) = cli(&refs).await.unwrap() else {
        panic!()
    };
    assert_eq!(r.fetched, 3);
    // --metadata-only with a filter makes no sense: a usage error.
    let a = args(&["--metadata-only", "--variant", "x", "--arch", "x86_64"]);
    let parsed = <repo_tools::cli::Cli as clap::Parser>::try_parse_from(
        std::iter::once("repo-tools").chain(a.iter().map(String::as_str)),
    );
    assert!(parsed.is_err());
}

/// Runs the repo-tools binary under `umask`.
fn repo_tools_with_umask(umask: &str, args: &[&str]) -> std::process::Output {
    let script = format!("umask {umask}; exec \"$0\" \"$@\"");
    std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg(env!("CARGO_BIN_EXE_repo-tools"))
        .args(args)
        .output()
        .unwrap()
}

/// (relative path, mode) of every file and directory under `dir`.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    fn go(base: &Path, d: &Path, out: &mut Vec<(String, u32)>) {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            out.push((p.strip_prefix(base).unwrap().display().to_string(), m));
            if p.is_dir() {
                go(base, &p, out);
            }
        }
    }
    let mut out = vec![(
        ".".to_owned(),
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
    )];
    go(dir, dir, &mut out);
    out
}

#[tokio::test]
async fn mirror_download_and_import_are_readable_by_others_under_the_umask() {
    let dir = test_support::tempdir();
    let (repo, server) = served(dir.path()).await;
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());
    for (umask, file_mode, dir_mode) in [("022", 0o644, 0o755), ("027", 0o640, 0o750)] {
        let base = dir.path().join(format!("umask-{umask}"));
        std::fs::create_dir_all(&base).unwrap();
        let mirror = base.join("mirror");
        let archive = base.join("mirror.tar");
        let imported = base.join("imported");
        let downloaded = base.join("downloaded");
        for args in [
            vec![
                "mirror",
                "--metadata-url",
                &murl,
                "--targets-url",
                &turl,
                "--root",
                s(&repo.root),
                "--out",
                s(&mirror),
            ],
            vec!["export", s(&mirror), "-o", s(&archive)],
            vec![
                "import",
                s(&archive),
                "--root",
                s(&repo.root),
                "--out",
                s(&imported),
            ],
            vec![
                "download",
                s(&downloaded),
                "--root",
                s(&repo.root),
                "--metadata-url",
                &murl,
                "--targets-url",
                &turl,
            ],
        ] {
            let out = repo_tools_with_umask(umask, &args);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        for tree in [&mirror, &imported, &downloaded] {
            let modes = modes(tree);
            assert!(modes.len() > 3, "{modes:?}");
            for (path, mode) in modes {
                let is_dir = tree.join(&path).is_dir();
                let want = if is_dir { dir_mode } else { file_mode };
                assert_eq!(
                    mode,
                    want,
                    "{}/{path} under umask {umask}: {mode:o}",
                    tree.display()
                );
            }
        }
        let archive_mode = std::fs::metadata(&archive).unwrap().permissions().mode() & 0o777;
        assert_eq!(archive_mode, file_mode);
    }
}

#[tokio::test]
async fn a_web_server_running_as_nobody_serves_a_mirror() {
    let dir = test_support::tempdir();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (repo, server) = served(dir.path()).await;
    let mirror = dir.path().join("mirror");
    let out = repo_tools_with_umask(
        "022",
        &[
            "mirror",
            "--metadata-url",
            &format!("{}metadata/", server.url()),
            "--targets-url",
            &format!("{}targets/", server.url()),
            "--root",
            s(&repo.root),
            "--out",
            s(&mirror),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let Some(nobody) = NobodyServer::start(&mirror) else {
        return;
    };
    assert_eq!(nobody.status("metadata/timestamp.json"), 200);
    // Every target downloads, verified, from the mirror as served by the unprivileged server.
    let got = dir.path().join("got");
    let out = repo_tools_with_umask(
        "022",
        &[
            "download",
            s(&got),
            "--root",
            s(&repo.root),
            "--metadata-url",
            &format!("{}metadata/", nobody.url),
            "--targets-url",
            &format!("{}targets/", nobody.url),
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(entries(&got), ["a.bin", "b.bin", "c.bin"]);
}
