//! Real files: atomic writes of manifests and build descriptions.

use std::path::Path;

use update_metadata::{
    Arch, Artifact, Artifacts, BuildDescription, Images, Manifest, VerityInfo, Version,
};

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn manifest_write_atomic_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    let mut m = Manifest::new();
    m.write_atomic(&path).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "{\n  \"updates\": [],\n  \"migrations\": {}\n}\n"
    );
    let t = |s: &str| s.parse().unwrap();
    m.add_update(
        t_v("aws-dev"),
        Arch::X86_64,
        Version::new(1, 0, 0),
        None,
        Images::new(t("b"), t("r"), t("h")),
    )
    .unwrap();
    m.write_atomic(&path).unwrap();
    assert_eq!(Manifest::load(&path).unwrap(), m);
    assert_eq!(
        listing(dir.path()),
        ["manifest.json"],
        "no temp files left behind"
    );
}

fn t_v(s: &str) -> update_metadata::Variant {
    s.parse().unwrap()
}

#[test]
fn failed_write_leaves_old_file_and_names_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope/manifest.json");
    let e = Manifest::new().write_atomic(&missing).unwrap_err();
    assert!(e.to_string().contains("nope/manifest.json"), "{e}");
    assert_eq!(e.exit_code(), update_metadata::ExitStatus::Io);
    // Target is a directory: rename fails; the directory is untouched and no temp file remains.
    let target = dir.path().join("manifest.json");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), b"x").unwrap();
    let e = Manifest::new().write_atomic(&target).unwrap_err();
    assert!(e.to_string().contains("rename"), "{e}");
    assert_eq!(listing(dir.path()), ["manifest.json"]);
    assert_eq!(listing(&target), ["keep"]);
}

#[test]
fn load_errors_name_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    let e = Manifest::load(&path).unwrap_err();
    assert!(e.to_string().contains("manifest.json"), "{e}");
    std::fs::write(&path, b"{\"updates\": [{}]}").unwrap();
    let e = Manifest::load(&path).unwrap_err();
    let msg = format!("{e} / {}", std::error::Error::source(&e).unwrap());
    assert!(
        msg.contains(&path.display().to_string())
            && msg.contains("updates[0]")
            && msg.contains("variant"),
        "{msg}"
    );
}

fn artifact(name: &str) -> Artifact {
    Artifact {
        file_name: name.into(),
        size: 10,
        sha256: "ab".repeat(32),
        uncompressed_size: 20,
        uncompressed_sha256: "cd".repeat(32),
    }
}

fn sample() -> BuildDescription {
    BuildDescription {
        name: "bottlerocket".into(),
        variant: t_v("metal-dev"),
        arch: Arch::Aarch64,
        version: Version::new(1, 2, 3),
        build_id: "abc1234".into(),
        artifacts: Artifacts {
            boot: artifact("boot.ext4.lz4"),
            root: artifact("root.ext4.lz4"),
            hash: artifact("root.verity.lz4"),
        },
        verity: VerityInfo {
            root_hash: "ef".repeat(32),
            salt: "01".repeat(32),
            data_blocks: 1000,
            data_block_size: 4096,
            hash_block_size: 4096,
            hash_algorithm: "sha256".into(),
        },
        disk_image: None,
        root_fs: "erofs".into(),
    }
}

#[test]
fn build_description_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("build.json");
    let d = sample();
    d.write_atomic(&path).unwrap();
    assert_eq!(BuildDescription::load(&path).unwrap(), d);
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"1.2.3\"", "\"1.2\"");
    std::fs::write(&path, text).unwrap();
    let e = BuildDescription::load(&path).unwrap_err();
    let msg = format!("{e} / {}", std::error::Error::source(&e).unwrap());
    assert!(
        msg.contains("build.json") && msg.contains("`version`") && msg.contains("\"1.2\""),
        "{msg}"
    );
}

#[test]
fn build_description_artifact_paths_stay_inside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("build.json");
    let good = sample();
    good.write_atomic(&path).unwrap();
    assert_eq!(
        BuildDescription::artifact_path(&path, &good.artifacts.root),
        dir.path().join("root.ext4.lz4")
    );
    for (field, bad) in [
        ("artifacts.boot.file_name", "../boot.lz4"),
        ("artifacts.root.file_name", "/etc/passwd"),
        ("artifacts.hash.file_name", ""),
        ("disk_image.file_name", "a/../../x"),
    ] {
        let mut d = sample();
        match field {
            "artifacts.boot.file_name" => d.artifacts.boot.file_name = bad.into(),
            "artifacts.root.file_name" => d.artifacts.root.file_name = bad.into(),
            "artifacts.hash.file_name" => d.artifacts.hash.file_name = bad.into(),
            _ => d.disk_image = Some(artifact(bad)),
        }
        d.write_atomic(&path).unwrap();
        let e = BuildDescription::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("build.json") && e.contains(field) && e.contains(&format!("{bad:?}")),
            "{e}"
        );
    }
}

#[test]
fn concurrent_writers_never_tear_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.json");
    let manifests: Vec<Manifest> = (0..4)
        .map(|i| {
            let mut m = Manifest::new();
            let t = |s: &str| s.parse().unwrap();
            m.add_update(
                t_v("aws-dev"),
                Arch::X86_64,
                Version::new(1, i, 0),
                None,
                Images::new(t("b"), t("r"), t("h")),
            )
            .unwrap();
            m
        })
        .collect();
    std::thread::scope(|s| {
        for m in &manifests {
            let path = &path;
            s.spawn(move || {
                for _ in 0..20 {
                    m.write_atomic(path).unwrap();
                }
            });
        }
    });
    let last = Manifest::load(&path).unwrap();
    assert!(manifests.contains(&last));
    assert_eq!(listing(dir.path()), ["manifest.json"]);
}
