//! Independent TUF clients read what repo-tools produces: a root rotated 1 → 2 (ed25519 to an
//! ECDSA + RSA pair with threshold 2), made with `repo-tools root`, then mirrored; python-tuf's
//! ngclient and `tuftool download` load the mirror over HTTP trusting only root 1.
#![allow(clippy::print_stderr)] // the SKIP line of a capability gate

mod common;

use common::*;
use std::path::Path;
use test_support::http::Server;

/// True if python-tuf is importable; otherwise SKIP (or panic under CI, like `require_tool`).
fn python_tuf_available() -> bool {
    if !test_support::require_tool("python3") {
        return false;
    }
    let ok = std::process::Command::new("python3")
        .args(["-c", "import tuf.ngclient"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let reason = "python-tuf is not installed (pip install tuf 'securesystemslib[crypto]')";
        assert!(std::env::var("CI").is_err(), "{reason}; CI must have it");
        test_support::skip(reason);
    }
    ok
}

/// A repository rotated from root 1 (ed25519) to root 2 (ECDSA + RSA, threshold 2), mirrored.
/// Returns (root 1 path, mirror dir).
async fn rotated_mirror(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let old = d.join("old.pk8");
    let ec = d.join("ec.pk8");
    let rsa = d.join("rsa.pem");
    cli(&["root", "gen-key", s(&old)]).await.unwrap();
    cli(&["root", "gen-key", s(&ec), "--type", "ecdsa-p256"])
        .await
        .unwrap();
    cli(&["root", "gen-key", s(&rsa), "--type", "rsa"])
        .await
        .unwrap();
    let all = [
        "--role",
        "root",
        "--role",
        "snapshot",
        "--role",
        "targets",
        "--role",
        "timestamp",
    ];

    let root1 = d.join("root1.json");
    cli(&["root", "init", s(&root1)]).await.unwrap();
    let mut args = vec!["root", "add-key", s(&root1), "--key", s(&old)];
    args.extend_from_slice(&all);
    cli(&args).await.unwrap();
    cli(&["root", "sign", s(&root1), "--key", s(&old)])
        .await
        .unwrap();
    let repo = Repo {
        dir: d.join("src"),
        root: root1.clone(),
        keys: vec![old.clone()],
    };
    repo.add_files(&[("first.txt", b"one")]);
    repo.publish(1).await;

    let root2 = d.join("root2.json");
    std::fs::copy(&root1, &root2).unwrap();
    cli(&["root", "bump-version", s(&root2)]).await.unwrap();
    let mut args = vec![
        "root",
        "add-key",
        s(&root2),
        "--key",
        s(&ec),
        "--key",
        s(&rsa),
    ];
    args.extend_from_slice(&all);
    cli(&args).await.unwrap();
    let old_id =
        repo_tools::keys::key_id_hex(&repo_tools::keys::load_signer(&old).unwrap().public).unwrap();
    cli(&["root", "remove-key", s(&root2), &old_id])
        .await
        .unwrap();
    for role in ["root", "snapshot", "targets", "timestamp"] {
        cli(&["root", "set-threshold", s(&root2), role, "2"])
            .await
            .unwrap();
    }
    cli(&[
        "root",
        "sign",
        s(&root2),
        "--key",
        s(&ec),
        "--key",
        s(&rsa),
        "--key",
        s(&old),
        "--cross-sign",
        s(&root1),
    ])
    .await
    .unwrap();
    let repo2 = Repo {
        dir: repo.dir.clone(),
        root: root2,
        keys: vec![ec, rsa],
    };
    repo2.add_files(&[("second.txt", b"two")]);
    repo2.publish(2).await;
    std::fs::copy(&root1, repo.metadata().join("1.root.json")).unwrap();

    let mirror = d.join("mirror");
    cli(&[
        "mirror",
        "--metadata-url",
        repo.metadata_url().as_str(),
        "--targets-url",
        repo.targets_url().as_str(),
        "--root",
        s(&root1),
        "--out",
        s(&mirror),
    ])
    .await
    .unwrap();
    (root1, mirror)
}

const NGCLIENT: &str = r#"
import sys, tempfile
from tuf.ngclient import Updater
root, base, outdir = sys.argv[1], sys.argv[2], sys.argv[3]
with tempfile.TemporaryDirectory() as md:
    u = Updater(metadata_dir=md, metadata_base_url=base + "metadata/",
                target_base_url=base + "targets/", target_dir=outdir,
                bootstrap=open(root, "rb").read())
    u.refresh()
    for name in ["first.txt", "second.txt"]:
        info = u.get_targetinfo(name)
        assert info is not None, name
        path = u.download_target(info)
        print(name, open(path).read())
"#;

#[tokio::test]
async fn python_tuf_reads_a_rotated_mirror_trusting_only_root_one() {
    if !python_tuf_available() {
        return;
    }
    let dir = test_support::tempdir();
    let (root1, mirror) = rotated_mirror(dir.path()).await;
    let server = Server::serve_dir(&mirror);
    let out = dir.path().join("py-out");
    std::fs::create_dir_all(&out).unwrap();
    let url = server.url();
    let result = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", NGCLIENT, s(&root1), &url, s(&out)])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert!(
        result.status.success(),
        "python-tuf failed: {}\n{stdout}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert!(
        stdout.contains("first.txt one") && stdout.contains("second.txt two"),
        "{stdout}"
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/2.root.json"))
    );
}

#[tokio::test]
async fn tuftool_downloads_from_the_mirror() {
    if !test_support::require_tool("tuftool") {
        return;
    }
    let dir = test_support::tempdir();
    let (root1, mirror) = rotated_mirror(dir.path()).await;
    let server = Server::serve_dir(&mirror);
    let out = dir.path().join("tuftool-out");
    let url = server.url();
    let result = tokio::task::spawn_blocking(move || {
        std::process::Command::new("tuftool")
            .args([
                "download",
                s(&out),
                "-r",
                s(&root1),
                "-m",
                &format!("{url}metadata/"),
                "-t",
                &format!("{url}targets/"),
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        result.status.success(),
        "tuftool failed: {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let out = dir.path().join("tuftool-out");
    assert_eq!(std::fs::read(out.join("second.txt")).unwrap(), b"two");
    assert_eq!(std::fs::read(out.join("first.txt")).unwrap(), b"one");
}

#[tokio::test]
async fn a_tuftool_repository_and_root_work_with_repo_tools() {
    if !test_support::require_tool("tuftool") {
        return;
    }
    let dir = test_support::tempdir();
    let d = dir.path().to_owned();
    let root = d.join("root.json");
    let key = d.join("key.pem");
    let inputs = d.join("inputs");
    std::fs::create_dir_all(&inputs).unwrap();
    std::fs::write(inputs.join("hello.txt"), b"hello from tuftool").unwrap();
    let repo = d.join("repo");
    let (root_c, key_c, inputs_c, repo_c) =
        (root.clone(), key.clone(), inputs.clone(), repo.clone());
    tokio::task::spawn_blocking(move || {
        let tuftool = |args: &[&str]| {
            let out = std::process::Command::new("tuftool")
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "tuftool {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let (r, k) = (s(&root_c), s(&key_c));
        tuftool(&["root", "init", r]);
        tuftool(&["root", "expire", r, "2099-01-01T00:00:00Z"]);
        for role in ["root", "snapshot", "targets", "timestamp"] {
            tuftool(&["root", "set-threshold", r, role, "1"]);
        }
        tuftool(&[
            "root",
            "gen-rsa-key",
            r,
            k,
            "-r",
            "root",
            "-r",
            "snapshot",
            "-r",
            "targets",
            "-r",
            "timestamp",
        ]);
        tuftool(&["root", "sign", r, "-k", k]);
        tuftool(&[
            "create",
            "-r",
            r,
            "-k",
            k,
            "-t",
            s(&inputs_c),
            "-o",
            s(&repo_c),
            "--targets-expires",
            "2099-01-01T00:00:00Z",
            "--targets-version",
            "1",
            "--snapshot-expires",
            "2099-01-01T00:00:00Z",
            "--snapshot-version",
            "1",
            "--timestamp-expires",
            "2099-01-01T00:00:00Z",
            "--timestamp-version",
            "1",
        ]);
    })
    .await
    .unwrap();

    // repo-tools accepts tuftool's root ...
    let outcome = cli(&["root", "verify", s(&root)]).await.unwrap();
    assert_eq!(
        outcome.exit_status(),
        repo_tools::ExitStatus::Success,
        "{outcome:?}"
    );
    // ... and mirrors its repository (targets written as symlinks by tuftool).
    let murl = url::Url::from_directory_path(repo.join("metadata")).unwrap();
    let turl = url::Url::from_directory_path(repo.join("targets")).unwrap();
    let mirror = d.join("mirror");
    let repo_tools::Outcome::Mirrored(r) = cli(&[
        "mirror",
        "--metadata-url",
        murl.as_str(),
        "--targets-url",
        turl.as_str(),
        "--root",
        s(&root),
        "--out",
        s(&mirror),
    ])
    .await
    .unwrap() else {
        panic!()
    };
    assert_eq!(r.fetched, 1);
    let m = url::Url::from_directory_path(mirror.join("metadata")).unwrap();
    let t = url::Url::from_directory_path(mirror.join("targets")).unwrap();
    assert_eq!(load_all(&root, m, t).await, vec!["hello.txt"]);
}
