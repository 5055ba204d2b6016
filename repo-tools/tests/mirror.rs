//! Mirroring real signed repositories over HTTP (127.0.0.1, port 0) and file://: complete and
//! filtered copies, incremental runs checked against the server's request log, tamper and
//! rollback refusals, and tough reading the result over file:// and HTTP.

mod common;

use common::*;
use repo_tools::Outcome;
use repo_tools::error::{Error, ExitStatus};
use repo_tools::mirror::{MirrorReport, TargetAction};
use test_support::http::{Fault, Server};

async fn mirror(args: &[&str]) -> repo_tools::Result<MirrorReport> {
    let mut full = vec!["mirror"];
    full.extend_from_slice(args);
    match cli(&full).await? {
        Outcome::Mirrored(r) => Ok(r),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn http_mirror_is_complete_incremental_and_readable_by_tough() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[
        ("a.bin", &[1u8; 5000]),
        ("b.bin", &[2u8; 7000]),
        ("c.bin", b"three"),
    ]);
    repo.publish(1).await;
    let server = Server::serve_dir(&repo.dir);
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());
    let out = dir.path().join("mirror");
    let args = [
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ];

    let first = mirror(&args).await.unwrap();
    assert_eq!((first.fetched, first.reused), (3, 0));
    assert_eq!(first.bytes_fetched, 5000 + 7000 + 5);
    let files = files_under(&out);
    for f in [
        "metadata/1.root.json",
        "metadata/timestamp.json",
        "metadata/1.snapshot.json",
        "metadata/1.targets.json",
        "mirror.json",
    ] {
        assert!(files.contains(&f.to_owned()), "{f} missing from {files:?}");
    }
    assert_eq!(
        files.iter().filter(|f| f.starts_with("targets/")).count(),
        3
    );
    // Metadata is byte-identical to the source (signatures stay valid for every client).
    for f in [
        "timestamp.json",
        "1.snapshot.json",
        "1.targets.json",
        "1.root.json",
    ] {
        assert_eq!(
            std::fs::read(out.join("metadata").join(f)).unwrap(),
            std::fs::read(repo.metadata().join(f)).unwrap(),
            "{f}"
        );
    }

    // Second run: nothing new, and no target is requested from the server. A temp file an
    // interrupted run left behind is cleaned up.
    std::fs::write(out.join("targets/.partial-abc123"), b"half").unwrap();
    server.clear_requests();
    let second = mirror(&args).await.unwrap();
    assert_eq!((second.fetched, second.reused), (0, 3));
    let target_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/targets/"))
        .collect();
    assert!(
        target_requests.is_empty(),
        "targets re-fetched: {target_requests:?}"
    );

    // A new release: only the new target is fetched; the superseded snapshot/targets go.
    repo.add_files(&[("d.bin", b"four")]);
    repo.publish(2).await;
    server.clear_requests();
    let third = mirror(&args).await.unwrap();
    assert_eq!((third.fetched, third.reused), (1, 3));
    assert_eq!(
        third
            .targets
            .iter()
            .find(|t| t.action == TargetAction::Fetched)
            .unwrap()
            .name,
        "d.bin"
    );
    let target_requests: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.path.contains("/targets/"))
        .collect();
    assert_eq!(target_requests.len(), 1, "{target_requests:?}");
    assert_eq!(third.metadata_pruned, 2);
    assert!(!out.join("metadata/1.snapshot.json").exists());
    assert!(out.join("metadata/2.snapshot.json").exists());

    // tough reads the mirror over file:// and over a static HTTP server.
    let want = vec!["a.bin", "b.bin", "c.bin", "d.bin"];
    let m = url::Url::from_directory_path(out.join("metadata")).unwrap();
    let t = url::Url::from_directory_path(out.join("targets")).unwrap();
    assert_eq!(load_all(&repo.root, m, t).await, want);
    let mirror_server = Server::serve_dir(&out);
    let m = format!("{}metadata/", mirror_server.url()).parse().unwrap();
    let t = format!("{}targets/", mirror_server.url()).parse().unwrap();
    assert_eq!(load_all(&repo.root, m, t).await, want);

    // And the mirror verifies as a whole.
    match cli(&["verify-mirror", s(&out), "--root", s(&repo.root)])
        .await
        .unwrap()
    {
        Outcome::MirrorVerified(r) => assert_eq!(r.target_files, 4),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn file_url_mirror_into_a_subdirectory() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("a.bin", b"alpha")]);
    repo.publish(1).await;
    let out = dir.path().join("mirror");
    let r = mirror(&[
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
        "--metadata-subdir",
        "aws-dev/x86_64",
    ])
    .await
    .unwrap();
    assert_eq!(r.fetched, 1);
    assert!(out.join("metadata/aws-dev/x86_64/timestamp.json").exists());
    let m = url::Url::from_directory_path(out.join("metadata/aws-dev/x86_64")).unwrap();
    let t = url::Url::from_directory_path(out.join("targets")).unwrap();
    assert_eq!(load_all(&repo.root, m, t).await, vec!["a.bin"]);
    // A subdirectory that would escape the mirror is refused when the arguments are parsed.
    use clap::Parser;
    let parsed = repo_tools::cli::Cli::try_parse_from([
        "repo-tools",
        "mirror",
        "--metadata-url",
        "file:///m/",
        "--targets-url",
        "file:///t/",
        "--root",
        "r",
        "--out",
        "o",
        "--metadata-subdir",
        "../escape",
    ]);
    assert!(parsed.is_err());
    assert!(repo_tools::layout::MetadataSubdir::new("../escape").is_err());
}

#[tokio::test]
async fn filtered_mirror_copies_one_version_its_images_and_migrations() {
    let dir = test_support::tempdir();
    let repo = manifest_repo(&dir.path().join("src")).await;
    let server = Server::serve_dir(&repo.dir);
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());
    let out = dir.path().join("mirror");
    let r = mirror(&[
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "1.1.0",
    ])
    .await
    .unwrap();
    let mut names: Vec<&str> = r.targets.iter().map(|t| t.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "bottlerocket-aws-dev-x86_64-1.1.0-abcdef01-boot.ext4.lz4",
            "bottlerocket-aws-dev-x86_64-1.1.0-abcdef01-root.ext4.lz4",
            "bottlerocket-aws-dev-x86_64-1.1.0-abcdef01-root.verity.lz4",
            "manifest.json",
            "migrate_v1.1.0_a.lz4",
            "migrate_v1.2.0_b.lz4",
        ]
    );
    assert_eq!(r.versions, vec!["1.1.0"]);
    assert_eq!(files_under(&out.join("targets")).len(), 6);
    // Only the selected targets were requested.
    let fetched: Vec<String> = server
        .requests()
        .into_iter()
        .filter(|q| q.path.contains("/targets/"))
        .map(|q| q.path)
        .collect();
    assert_eq!(fetched.len(), 6, "{fetched:?}");
    assert!(
        fetched
            .iter()
            .all(|p| !p.contains("other") && !p.contains("1.0.0-abcdef01")),
        "{fetched:?}"
    );
    // The filtered mirror verifies (its record says which targets it should hold).
    match cli(&["verify-mirror", s(&out), "--root", s(&repo.root)])
        .await
        .unwrap()
    {
        Outcome::MirrorVerified(v) => assert_eq!(v.repositories[0].targets_present, 6),
        other => panic!("{other:?}"),
    }
    // A filtered mirror survives export/import: the record says which targets it must hold.
    let archive = dir.path().join("filtered.tar");
    cli(&["export", s(&out), "-o", s(&archive)]).await.unwrap();
    let far = dir.path().join("far");
    match cli(&[
        "import",
        s(&archive),
        "--root",
        s(&repo.root),
        "--out",
        s(&far),
    ])
    .await
    .unwrap()
    {
        Outcome::Imported(r) => assert_eq!(r.verified.target_files, 6),
        other => panic!("{other:?}"),
    }
    // Every version of the variant: 9 images + 2 migrations + manifest.
    let all = mirror(&[
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ])
    .await
    .unwrap();
    assert_eq!((all.fetched, all.reused), (6, 6));
    // A version the manifest does not have.
    let err = mirror(&[
        "--metadata-url",
        &murl,
        "--targets-url",
        &turl,
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
        "--version",
        "9.9.9",
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, Error::NothingMatches { .. }), "{err}");
    assert!(err.to_string().contains("aws-dev/x86_64/9.9.9"), "{err}");
}

#[tokio::test]
async fn tampered_source_target_is_refused_and_never_lands() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("a.bin", &[1u8; 4096]), ("b.bin", b"fine")]);
    repo.publish(1).await;
    // Flip one byte of a.bin as served.
    let served = files_under(&repo.targets())
        .into_iter()
        .find(|f| f.ends_with(".a.bin"))
        .unwrap();
    let path = repo.targets().join(&served);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let server = Server::serve_dir(&repo.dir);
    let out = dir.path().join("mirror");
    let err = mirror(&[
        "--metadata-url",
        &format!("{}metadata/", server.url()),
        "--targets-url",
        &format!("{}targets/", server.url()),
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
        "--jobs",
        "1",
    ])
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::ReadTarget { ref name, .. } if name == "a.bin"),
        "{}",
        chain(&err)
    );
    assert_eq!(err.exit_status(), ExitStatus::Untrusted);
    assert!(
        chain(&err).to_lowercase().contains("hash mismatch"),
        "{}",
        chain(&err)
    );
    assert!(
        !out.join("targets").join(&served).exists(),
        "tampered target was written"
    );
    assert!(
        !out.join("metadata/timestamp.json").exists(),
        "metadata written despite failure"
    );
}

#[tokio::test]
async fn rolled_back_source_is_refused() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("a.bin", b"one")]);
    repo.publish(1).await;
    // Keep a copy of the v1 repository, then publish v2.
    let old = dir.path().join("old");
    copy_dir(&repo.dir, &old);
    repo.add_files(&[("b.bin", b"two")]);
    repo.publish(2).await;
    let out = dir.path().join("mirror");
    let args = |src: &std::path::Path| {
        vec![
            url::Url::from_directory_path(src.join("metadata"))
                .unwrap()
                .to_string(),
            url::Url::from_directory_path(src.join("targets"))
                .unwrap()
                .to_string(),
        ]
    };
    let new_urls = args(&repo.dir);
    mirror(&[
        "--metadata-url",
        &new_urls[0],
        "--targets-url",
        &new_urls[1],
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ])
    .await
    .unwrap();
    let old_urls = args(&old);
    let err = mirror(&[
        "--metadata-url",
        &old_urls[0],
        "--targets-url",
        &old_urls[1],
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ])
    .await
    .unwrap_err();
    assert!(matches!(err, Error::Rollback { .. }), "{err}");
    assert!(err.to_string().contains("timestamp version 2"), "{err}");
}

#[tokio::test]
async fn wrong_root_is_refused() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("a.bin", b"one")]);
    repo.publish(1).await;
    let other = Repo::simple(&dir.path().join("other"));
    let out = dir.path().join("mirror");
    let err = mirror(&[
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&other.root),
        "--out",
        s(&out),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.exit_status(), ExitStatus::Untrusted, "{}", chain(&err));
    assert!(
        chain(&err).contains("timestamp") || chain(&err).contains("root"),
        "{}",
        chain(&err)
    );
}

#[tokio::test]
async fn unreachable_source_is_a_transport_error() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let server = Server::serve_dir(&empty);
    let err = mirror(&[
        "--metadata-url",
        &format!("{}metadata/", server.url()),
        "--targets-url",
        &format!("{}targets/", server.url()),
        "--root",
        s(&repo.root),
        "--out",
        s(&dir.path().join("m")),
    ])
    .await
    .unwrap_err();
    assert_eq!(err.exit_status(), ExitStatus::Transport, "{}", chain(&err));
    assert!(chain(&err).contains("timestamp.json"), "{}", chain(&err));
}

#[tokio::test]
async fn expired_repository_is_refused_unless_allowed() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("a.bin", b"one")]);
    repo.publish_expiring(1, "2020-01-01T00:00:00Z".parse().unwrap())
        .await;
    let out = dir.path().join("mirror");
    let base = [
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = base.iter().map(String::as_str).collect();
    let err = mirror(&args).await.unwrap_err();
    assert_eq!(err.exit_status(), ExitStatus::Untrusted, "{}", chain(&err));
    assert!(
        chain(&err).contains("timestamp") && chain(&err).to_lowercase().contains("expired"),
        "{}",
        chain(&err)
    );
    assert!(
        err.hint().is_some_and(|h| h.contains("--allow-expired")),
        "{:?}",
        err.hint()
    );
    assert!(!out.join("metadata/timestamp.json").exists());
    let mut allowed = args.clone();
    allowed.push("--allow-expired");
    assert_eq!(mirror(&allowed).await.unwrap().fetched, 1);
    // The same applies on import of that mirror.
    let archive = dir.path().join("old.tar");
    cli(&["export", s(&out), "-o", s(&archive)]).await.unwrap();
    let far = dir.path().join("far");
    let err = cli(&[
        "import",
        s(&archive),
        "--root",
        s(&repo.root),
        "--out",
        s(&far),
    ])
    .await
    .unwrap_err();
    assert!(
        chain(&err).to_lowercase().contains("expired"),
        "{}",
        chain(&err)
    );
    assert!(!far.exists());
    cli(&[
        "import",
        s(&archive),
        "--root",
        s(&repo.root),
        "--out",
        s(&far),
        "--allow-expired",
    ])
    .await
    .unwrap();
}

#[test]
fn binary_mirror_json_and_exit_codes() {
    let dir = test_support::tempdir();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("a.bin", b"one"), ("b.bin", b"two")]);
    rt.block_on(repo.publish(1));
    let bin = env!("CARGO_BIN_EXE_repo-tools");
    let out = dir.path().join("mirror");
    let run = || {
        std::process::Command::new(bin)
            .args([
                "--json",
                "mirror",
                "--metadata-url",
                repo.metadata_url().as_str(),
                "--targets-url",
                repo.targets_url().as_str(),
                "--root",
                s(&repo.root),
                "--out",
                s(&out),
            ])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["outcome"], "mirrored");
    assert_eq!(
        (v["fetched"].as_u64(), v["reused"].as_u64()),
        (Some(2), Some(0))
    );
    // Progress events are JSON lines on stderr.
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&first.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"] == "target-fetched")
            .count(),
        2,
        "{events:?}"
    );
    let second: serde_json::Value = serde_json::from_slice(&run().stdout).unwrap();
    assert_eq!(
        (second["fetched"].as_u64(), second["reused"].as_u64()),
        (Some(0), Some(2))
    );
    // A tampered source target: exit 3 and an error naming it.
    let served = files_under(&repo.targets())
        .into_iter()
        .find(|f| f.ends_with(".b.bin"))
        .unwrap();
    std::fs::write(repo.targets().join(&served), b"TWO").unwrap();
    std::fs::remove_file(out.join("targets").join(&served)).unwrap();
    let bad = run();
    assert_eq!(
        bad.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        // With --json the error is one JSON line on stderr (abos-shell's renderer).
        stderr.lines().any(|l| {
            serde_json::from_str::<serde_json::Value>(l).is_ok_and(|v| {
                v["outcome"] == "error"
                    && v["error"] == "failed to fetch and verify target 'b.bin'"
                    && v["exit_code"] == 3
                    && v["causes"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c.as_str().is_some_and(|c| c.contains("Hash mismatch")))
                    })
            })
        }),
        "{stderr}"
    );
}

#[tokio::test]
async fn interrupted_downloads_resume_and_server_errors_leave_nothing_behind() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("big.bin", &[9u8; 200_000]), ("small.bin", b"s")]);
    repo.publish(1).await;
    let server = Server::serve_dir(&repo.dir);
    let out = dir.path().join("mirror");
    let murl = format!("{}metadata/", server.url());
    let turl = format!("{}targets/", server.url());
    let args = [
        "--metadata-url",
        murl.as_str(),
        "--targets-url",
        turl.as_str(),
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ];

    // The connection drops mid-body once: the target is fetched again and the copy verifies.
    server.set_fault(Fault::CutAfter {
        suffix: ".big.bin".into(),
        bytes: 50_000,
        times: 1,
    });
    let r = mirror(&args).await.unwrap();
    assert_eq!(r.fetched, 2);
    let big: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|q| q.path.ends_with(".big.bin"))
        .collect();
    assert_eq!(big.len(), 2, "{big:?}");
    assert_eq!(big[0].bytes_sent, 50_000);

    // A server that keeps failing a target: exit 4, no partial file, metadata untouched.
    server.set_fault(Fault::Status {
        suffix: ".new.bin".into(),
        status: 503,
    });
    repo.add_files(&[("new.bin", b"new")]);
    repo.publish(2).await;
    let mut once = args.to_vec();
    once.extend(["--attempts", "1"]);
    let err = mirror(&once).await.unwrap_err();
    assert_eq!(err.exit_status(), ExitStatus::Transport, "{}", chain(&err));
    assert!(err.to_string().contains("new.bin"), "{err}");
    let leftovers: Vec<String> = files_under(&out.join("targets"))
        .into_iter()
        .filter(|f| f.contains("new.bin") || f.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert!(
        out.join("metadata/1.snapshot.json").exists()
            && !out.join("metadata/2.snapshot.json").exists()
    );
    server.set_fault(Fault::None);
    assert_eq!(mirror(&args).await.unwrap().fetched, 1);
}

#[tokio::test]
async fn targets_removed_at_the_source_are_pruned_from_the_mirror() {
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    repo.add_files(&[("keep.bin", b"keep"), ("yanked.bin", b"bad release")]);
    repo.publish(1).await;
    let out = dir.path().join("mirror");
    let args = [
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&repo.root),
        "--out",
        s(&out),
    ]
    .map(str::to_owned);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    assert_eq!(mirror(&args).await.unwrap().fetched, 2);
    std::fs::remove_file(repo.inputs().join("yanked.bin")).unwrap();
    repo.publish(2).await;
    let r = mirror(&args).await.unwrap();
    assert_eq!((r.fetched, r.reused, r.targets_pruned), (0, 1, 1));
    assert!(
        !files_under(&out.join("targets"))
            .iter()
            .any(|f| f.ends_with(".yanked.bin"))
    );
    cli(&["verify-mirror", s(&out), "--root", s(&repo.root)])
        .await
        .unwrap();
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    for f in files_under(from) {
        let dest = to.join(&f);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&f), dest).unwrap();
    }
}
