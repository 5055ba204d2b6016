//! `pubsys repo --delta` (issue 16): the root image's abos-chunked form is published as two
//! more signed targets, `<root>.chunks` and `<root>.index`, next to the full artifacts.

mod common;

use common::*;
use pubsys::release::ImagePaths;
use std::io::Write;
use std::path::Path;
use std::process::Command;

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `pubsys repo … --delta` publishing `images` as 1.0.0 into the fixture's repository.
fn repo_delta(fx: &Fixture, images: &ImagePaths) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pubsys"));
    cmd.args([
        "repo",
        "--root-role-path",
        p(&fx.root),
        "--key",
        p(&fx.key.path),
    ])
    .args([
        "--repo-dir",
        p(&fx.repo_dir),
        "--variant",
        "aws-dev",
        "--arch",
        "x86_64",
    ])
    .args([
        "--version",
        "1.0.0",
        "--boot",
        p(&images.boot),
        "--root",
        p(&images.root),
    ])
    .args(["--hash", p(&images.hash), "--delta"]);
    cmd
}

#[test]
fn repo_delta_publishes_chunks_and_index_that_rebuild_the_root() {
    let fx = Fixture::new();
    let images = fx.images("1.0.0", 4096);
    // The root as os-image writes it: an LZ4 frame of the ext4 image.
    let raw: Vec<u8> = (0..3 * 1024 * 1024u32)
        .map(|i| (i / 4096 % 251) as u8 ^ (i % 7) as u8)
        .collect();
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&raw).unwrap();
    std::fs::write(&images.root, enc.finish().unwrap()).unwrap();
    let out = repo_delta(&fx, &images).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let root_name = images.root.file_name().unwrap().to_str().unwrap();
    let targets = fx.targets_dir();
    let index_path = target_file(&targets, &format!("{root_name}.index"));
    let chunks_path = target_file(&targets, &format!("{root_name}.chunks"));
    // Full artifacts stay.
    target_file(&targets, root_name);
    // Both are in the signed targets metadata.
    let targets_json = std::fs::read_dir(fx.metadata_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".targets.json"))
        .unwrap();
    let signed = std::fs::read_to_string(targets_json).unwrap();
    assert!(
        signed.contains(&format!("\"{root_name}.index\"")),
        "{signed}"
    );
    assert!(signed.contains(&format!("\"{root_name}.chunks\"")));
    // The index describes the uncompressed root, and the chunk file rebuilds it.
    let index = abos_delta::Index::from_slice(&std::fs::read(&index_path).unwrap()).unwrap();
    assert_eq!(index.header.image_length, raw.len() as u64);
    let plan = abos_delta::Plan::new(&index, &abos_delta::LocalIndex::new(), Default::default());
    let mut fetch = abos_delta::fetch::FileFetch::open(&chunks_path).unwrap();
    let mut target = std::io::Cursor::new(Vec::new());
    rt().block_on(abos_delta::execute::execute(
        &index,
        &plan,
        &[],
        &mut fetch,
        &mut target,
        None,
    ))
    .unwrap();
    assert_eq!(target.into_inner(), raw);
}

#[test]
fn repo_delta_refuses_a_root_that_is_not_lz4() {
    let fx = Fixture::new();
    let images = fx.images("1.0.0", 4096); // `.lz4` names, but not LZ4 frames
    let out = repo_delta(&fx, &images)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr.contains("chunked form"), "{stderr}");
    // Nothing was published.
    assert!(
        !fx.repo_dir.join("aws-dev").exists()
            || std::fs::read_dir(fx.metadata_dir()).map_or(true, |mut d| d.next().is_none())
    );
}
