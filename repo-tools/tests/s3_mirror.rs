//! `repo-tools mirror` from and to a bucket (`s3://BUCKET/PREFIX`), against moto's server and
//! s3s-fs started on 127.0.0.1 and reached only through the S3 API; boto3 reads back what was
//! written, with its headers.

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Output};
use test_support::s3::{S3Impl, S3Server};

const BUCKET: &str = "mirrors";

fn repo_tools(server: &S3Server, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_repo-tools"));
    cmd.arg("--json").args(args).env("NO_COLOR", "1");
    server.apply(&mut cmd);
    cmd.output().expect("run repo-tools")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn report(what: &str, out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{}",
        out.status.code(),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{what}: {e}: {}", text(&out.stdout)))
}

fn mirror_args<'a>(
    metadata: &'a str,
    targets: &'a str,
    root: &'a Path,
    out: &'a str,
) -> Vec<&'a str> {
    vec![
        "mirror",
        "--metadata-url",
        metadata,
        "--targets-url",
        targets,
        "--root",
        s(root),
        "--out",
        out,
        "--metadata-subdir",
        "aws-dev/x86_64",
    ]
}

fn counts(r: &serde_json::Value) -> (u64, u64) {
    let r = if r["mirrored"].is_object() {
        &r["mirrored"]
    } else {
        r
    };
    (
        r["fetched"]
            .as_u64()
            .unwrap_or_else(|| panic!("no fetched in {r}")),
        r["reused"].as_u64().unwrap(),
    )
}

fn round_trip(kind: S3Impl) {
    let Some(server) = S3Server::start(kind) else {
        return;
    };
    server.create_bucket(BUCKET);
    let dir = test_support::tempdir();
    let repo = Repo::simple(&dir.path().join("src"));
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    repo.add_files(&[
        ("big.img", &big),
        ("b.bin", &[2u8; 7000]),
        ("c.bin", b"three"),
    ]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(repo.publish(1));
    let (m, t) = (
        repo.metadata_url().to_string(),
        repo.targets_url().to_string(),
    );
    let dest = format!("s3://{BUCKET}/edge");

    // Into the bucket: everything fetched once, then reused.
    let first = report(
        "mirror to bucket",
        &repo_tools(&server, &mirror_args(&m, &t, &repo.root, &dest)),
    );
    assert_eq!(counts(&first), (3, 0), "{first}");
    let again = report(
        "mirror to bucket again",
        &repo_tools(&server, &mirror_args(&m, &t, &repo.root, &dest)),
    );
    assert_eq!(counts(&again), (0, 3), "{again}");

    let objects = server.objects(BUCKET, "edge/");
    let keys: Vec<&str> = objects.iter().map(|o| o.key.as_str()).collect();
    for want in [
        "edge/metadata/aws-dev/x86_64/1.root.json",
        "edge/metadata/aws-dev/x86_64/1.snapshot.json",
        "edge/metadata/aws-dev/x86_64/1.targets.json",
        "edge/metadata/aws-dev/x86_64/timestamp.json",
    ] {
        assert!(keys.contains(&want), "{want} missing: {keys:?}");
    }
    assert_eq!(objects.len(), 7, "{keys:?}");
    for o in &objects {
        let (cc, ct) = if o.key.ends_with("/timestamp.json") {
            (repo_store::kind::TIMESTAMP, "application/json")
        } else if o.key.contains("/metadata/") {
            (repo_store::kind::IMMUTABLE, "application/json")
        } else {
            (repo_store::kind::IMMUTABLE, "application/octet-stream")
        };
        assert_eq!(o.cache_control.as_deref(), Some(cc), "{o:?}");
        assert_eq!(o.content_type.as_deref(), Some(ct), "{o:?}");
    }

    // Out of the bucket (s3:// source) into a directory that verifies.
    let local = dir.path().join("local");
    let (sm, st) = (
        format!("s3://{BUCKET}/edge/metadata/aws-dev/x86_64/"),
        format!("s3://{BUCKET}/edge/targets/"),
    );
    let back = report(
        "mirror from bucket",
        &repo_tools(&server, &mirror_args(&sm, &st, &repo.root, s(&local))),
    );
    assert_eq!(counts(&back), (3, 0), "{back}");
    let verify = repo_tools(
        &server,
        &["verify-mirror", "--root", s(&repo.root), s(&local)],
    );
    assert!(
        verify.status.success(),
        "verify-mirror: {}",
        text(&verify.stderr)
    );
    let copied = std::fs::read_dir(local.join("targets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".big.img"))
        .expect("big.img mirrored");
    assert_eq!(std::fs::read(copied).unwrap(), big);

    // A target replaced in the bucket (same length) is refused when mirroring out of it.
    let big_key = keys
        .iter()
        .find(|k| k.ends_with(".big.img"))
        .unwrap()
        .to_string();
    let mut evil = big.clone();
    evil[12345] ^= 1;
    let evil_path = dir.path().join("evil.img");
    std::fs::write(&evil_path, &evil).unwrap();
    server.boto3(&format!(
        "s3.upload_file('{}', '{BUCKET}', '{big_key}')",
        evil_path.display()
    ));
    let tampered_out = dir.path().join("tampered");
    let out = repo_tools(
        &server,
        &mirror_args(&sm, &st, &repo.root, s(&tampered_out)),
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        !std::fs::read_dir(tampered_out.join("targets"))
            .map(|d| d
                .flatten()
                .any(|e| e.file_name().to_string_lossy().ends_with(".big.img")))
            .unwrap_or(false),
        "tampered target kept"
    );

    // A source whose target does not match its hash is refused when mirroring into a bucket,
    // and the aborted multipart upload leaves no object.
    let target_file = std::fs::read_dir(repo.targets())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".big.img"))
        .unwrap();
    std::fs::write(&target_file, &evil).unwrap();
    let dest2 = format!("s3://{BUCKET}/edge2");
    let out = repo_tools(&server, &mirror_args(&m, &t, &repo.root, &dest2));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let left: Vec<String> = server
        .objects(BUCKET, "edge2/")
        .into_iter()
        .map(|o| o.key)
        .collect();
    assert!(
        !left
            .iter()
            .any(|k| k.ends_with(".big.img") || k.ends_with("timestamp.json")),
        "{left:?}"
    );
}

#[test]
fn round_trip_on_moto() {
    round_trip(S3Impl::Moto);
}

#[test]
fn round_trip_on_s3s_fs() {
    round_trip(S3Impl::S3sFs);
}
