//! Interoperability with independent TUF implementations:
//! - repositories pubsys writes are read by `tuftool download` (file:// and HTTP) and by
//!   python-tuf's ngclient (HTTP);
//! - a repository written by `tuftool create` (plus a manifest) is validated by pubsys, and
//!   pubsys can add a release to it.
//!
//! Gated on the tools being installed: `test_support::require_tool("tuftool")` and a python-tuf
//! import check; both print `SKIP:` when missing and panic under `CI=true`.

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use pubsys::NoReporter;
use pubsys::repo::LoadOptions;
use pubsys::store::LocalStore;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use test_support::http::Server;

fn python_tuf_available() -> bool {
    if !test_support::require_tool("python3") {
        return false;
    }
    let ok = Command::new("python3")
        .args(["-c", "import tuf.ngclient, securesystemslib"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let reason = "python-tuf is not installed (pip install tuf \"securesystemslib[crypto]\")";
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("{reason}; CI must have it");
        }
        test_support::skip(reason);
    }
    ok
}

fn sha256_hex(path: &Path) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        &std::fs::read(path).unwrap(),
    ))
}

/// Two releases published with pubsys; returns the image names and their sha256.
fn two_releases(fx: &Fixture) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for v in ["1.0.0", "1.1.0"] {
        let out = fx.publish(&fx.request(v, now())).unwrap();
        all.extend(
            out.targets
                .iter()
                .filter(|t| t.name != "manifest.json")
                .map(|t| (t.name.clone(), t.sha256.clone())),
        );
    }
    all
}

fn tuftool_download(fx: &Fixture, metadata_url: &str, targets_url: &str, out: &Path) {
    let o = Command::new("tuftool")
        .args(["download", "-r"])
        .arg(&fx.root)
        .args(["-m", metadata_url, "-t", targets_url])
        .arg(out)
        .output()
        .expect("run tuftool");
    assert!(
        o.status.success(),
        "tuftool download failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn tuftool_downloads_repositories_pubsys_writes() {
    if !test_support::require_tool("tuftool") {
        return;
    }
    let fx = Fixture::new();
    let images = two_releases(&fx);
    let source = fx.source();

    // file://
    let out = fx.dir.path().join("dl-file");
    tuftool_download(
        &fx,
        source.metadata_url.as_str(),
        source.targets_url.as_str(),
        &out,
    );
    for (name, sha) in &images {
        assert_eq!(&sha256_hex(&out.join(name)), sha, "{name} over file://");
    }
    assert!(out.join("manifest.json").is_file());

    // HTTP on 127.0.0.1:0
    let server = Server::serve_dir(&fx.repo_dir);
    let out = fx.dir.path().join("dl-http");
    tuftool_download(
        &fx,
        &format!("{}metadata/aws-dev/x86_64", server.url()),
        &format!("{}targets", server.url()),
        &out,
    );
    for (name, sha) in &images {
        assert_eq!(&sha256_hex(&out.join(name)), sha, "{name} over HTTP");
    }
    // Targets were fetched under their consistent names.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/targets/") && r.path.len() > "/targets/".len() + 64),
        "{:?}",
        server.requests()
    );
}

#[test]
fn python_tuf_ngclient_reads_repositories_pubsys_writes() {
    if !python_tuf_available() {
        return;
    }
    let fx = Fixture::new();
    let images = two_releases(&fx);
    // Refresh once too, so the client walks a repository whose versions moved on.
    let server = Server::serve_dir(&fx.repo_dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/ngclient_download.py");
    let work = fx.dir.path().join("ngclient");
    let mut cmd = Command::new("python3");
    cmd.arg(&script)
        .arg(&fx.root)
        .arg(format!("{}metadata/aws-dev/x86_64/", server.url()))
        .arg(format!("{}targets/", server.url()))
        .arg(&work)
        .arg("manifest.json");
    for (name, _) in &images {
        cmd.arg(name);
    }
    let o = cmd.output().expect("run python3");
    assert!(
        o.status.success(),
        "ngclient failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    for (name, sha) in &images {
        assert_eq!(result["targets"][name], sha.as_str(), "{name}");
    }
    let repo_ts: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fx.metadata_dir().join("timestamp.json")).unwrap())
            .unwrap();
    assert_eq!(result["timestamp_version"], repo_ts["signed"]["version"]);

    // A tampered target is refused by ngclient too (independent check of our consistent naming).
    let victim = target_file(&fx.targets_dir(), &images[1].0);
    flip_byte(&victim, 10);
    let work2 = fx.dir.path().join("ngclient2");
    let o = Command::new("python3")
        .arg(&script)
        .arg(&fx.root)
        .arg(format!("{}metadata/aws-dev/x86_64/", server.url()))
        .arg(format!("{}targets/", server.url()))
        .arg(&work2)
        .arg(&images[1].0)
        .output()
        .unwrap();
    assert!(!o.status.success(), "ngclient accepted a tampered target");
}

#[test]
fn pubsys_validates_and_extends_a_tuftool_created_repository() {
    if !test_support::require_tool("tuftool") {
        return;
    }
    let fx = Fixture::new();
    // Inputs: three images and a manifest naming them.
    let images = fx.images("1.0.0", 20_000);
    let input = fx.dir.path().join("tuftool-in");
    std::fs::create_dir_all(&input).unwrap();
    for p in [&images.boot, &images.root, &images.hash] {
        std::fs::copy(p, input.join(p.file_name().unwrap())).unwrap();
    }
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().parse().unwrap();
    let mut manifest = update_metadata::Manifest::new();
    manifest
        .add_update(
            fx.variant.clone(),
            fx.arch,
            "1.0.0".parse().unwrap(),
            None,
            update_metadata::Images::new(
                name(&images.boot),
                name(&images.root),
                name(&images.hash),
            ),
        )
        .unwrap();
    manifest.write_atomic(&input.join("manifest.json")).unwrap();

    let out = fx.dir.path().join("tuftool-repo");
    let o = Command::new("tuftool")
        .args(["create", "-r"])
        .arg(&fx.root)
        .arg("-k")
        .arg(&fx.key.path)
        .arg("-t")
        .arg(&input)
        .arg("-o")
        .arg(&out)
        .args([
            "--targets-expires",
            "in 3 weeks",
            "--targets-version",
            "1",
            "--snapshot-expires",
            "in 3 weeks",
            "--snapshot-version",
            "1",
            "--timestamp-expires",
            "in 1 week",
            "--timestamp-version",
            "1",
        ])
        .output()
        .expect("run tuftool");
    assert!(
        o.status.success(),
        "tuftool create: {}",
        String::from_utf8_lossy(&o.stderr)
    );

    let store = LocalStore::new(out.join("metadata"), out.join("targets"));
    let source = pubsys::repo::source_of_store(&store).unwrap();
    let report = rt()
        .block_on(pubsys::validate::validate(
            &fx.root_bytes(),
            &source,
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.targets, 4);
    assert_eq!(report.manifest_updates, Some(1));

    // Add a release to it with pubsys; tuftool reads the result back.
    let req = fx.request("1.1.0", now());
    let outcome = rt()
        .block_on(pubsys::release::publish(&req, &store, Arc::new(NoReporter)))
        .unwrap();
    assert!(!outcome.new_repository);
    assert!(outcome.committed.version > 1);
    let report = rt()
        .block_on(pubsys::validate::validate(
            &fx.root_bytes(),
            &source,
            &LoadOptions::default(),
            &NoReporter,
        ))
        .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.manifest_updates, Some(2));
    let dl = fx.dir.path().join("tuftool-dl");
    tuftool_download(
        &fx,
        source.metadata_url.as_str(),
        source.targets_url.as_str(),
        &dl,
    );
    assert!(
        dl.join("bottlerocket-aws-dev-x86_64-1.1.0-abcdef0-root.ext4.lz4")
            .is_file()
    );
}
