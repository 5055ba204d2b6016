//! End to end on images built by os-image: a 1.0.0 disk (set A) is updated by updog to a 1.1.0
//! release built by os-image (ext4 root with os-release, BOOT with grub.cfg and verity.json), and
//! os-image's emulated boot (dm-verity check + os-release of the booted root) confirms that set B
//! now boots 1.1.0.

mod common;

use common::*;
use os_image::identity::Identity;
use os_image::{BuildSpec, NoReporter, Populate};
use std::path::{Path, PathBuf};
use test_support::http::Server;
use update_metadata::{Images, Manifest};

fn rootfs(dir: &Path, version: &str) -> PathBuf {
    let root = dir.join(format!("rootfs-{version}"));
    std::fs::create_dir_all(root.join("usr/bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("usr/bin/hello"),
        format!("#!/bin/sh\necho {version}\n"),
    )
    .unwrap();
    std::fs::write(root.join("usr/lib-blob"), content(600 * 1024, 7)).unwrap();
    root
}

fn build(dir: &Path, version: &str) -> (PathBuf, update_metadata::BuildDescription) {
    let out = dir.join(format!("out-{version}"));
    let spec = BuildSpec {
        rootfs: os_image::rootfs::RootfsSource::from_path(&rootfs(dir, version)).unwrap(),
        identity: Identity {
            name: Default::default(),
            variant: VARIANT.parse().unwrap(),
            arch: arch().as_str().parse().unwrap(),
            version: version.parse().unwrap(),
            build_id: "abcdef12".parse().unwrap(),
        },
        extras: Default::default(),
        boot: Default::default(),
        layout: os_image::layout::LayoutSize::SmallTest,
        fs: os_image::rootfs::FsKind::Ext4,
        populate: Populate::SetA,
        out_dir: out.clone(),
        epoch: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
    };
    let d = os_image::build(&spec, &NoReporter).unwrap();
    (out, d)
}

#[test]
fn update_a_disk_built_by_os_image_and_boot_it() {
    if !tools() || !test_support::require_tool("debugfs") {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let (out_old, old) = build(&path, "1.0.0");
    let (out_new, new) = build(&path, "1.1.0");
    let repo = Repo::new(&path);
    let mut m = Manifest::new();
    for d in [&old, &new] {
        let a = &d.artifacts;
        let images = Images::new(
            a.boot.file_name.parse().unwrap(),
            a.root.file_name.parse().unwrap(),
            a.hash.file_name.parse().unwrap(),
        );
        m.add_update(d.variant.clone(), d.arch, d.version.clone(), None, images)
            .unwrap();
    }
    m.migrations
        .insert(old.version.clone(), new.version.clone(), Vec::new());
    let files: Vec<PathBuf> = [(&out_old, &old), (&out_new, &new)]
        .iter()
        .flat_map(|(o, d)| {
            [&d.artifacts.boot, &d.artifacts.root, &d.artifacts.hash].map(|a| o.join(&a.file_name))
        })
        .collect();
    repo.publish(&m, &files, RoleVersions::all(1));
    let server = Server::serve_dir(&repo.dir);

    // The host: os-image's 1.0.0 disk, its os-release, the repository's trusted root.
    let host_root = path.join("host");
    std::fs::create_dir_all(host_root.join("etc")).unwrap();
    std::fs::create_dir_all(host_root.join("usr/share/updog")).unwrap();
    std::fs::copy(&repo.root, host_root.join("usr/share/updog/root.json")).unwrap();
    std::fs::write(
        host_root.join("etc/os-release"),
        format!("VARIANT_ID={VARIANT}\nVERSION_ID=1.0.0\n"),
    )
    .unwrap();
    let disk = path.join("disk.img");
    let src = out_old.join(&old.disk_image.as_ref().expect("disk image").file_name);
    assert!(
        std::process::Command::new("cp")
            .arg("--sparse=always")
            .arg(&src)
            .arg(&disk)
            .status()
            .unwrap()
            .success()
    );
    let host = Host {
        root: host_root,
        disk: disk.clone(),
    };
    host.set_config(&server.url(), "");

    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(host.next_boot(), Some(signpost::SetName::B));
    let d = signpost::Disk::open_read_only(&disk).unwrap();
    let set_b = d.set(signpost::SetName::B).unwrap();
    drop(d);
    let booted = os_image::emulated_boot(&disk, &set_b).unwrap();
    assert_eq!(
        booted.os_release.get("VERSION_ID").map(String::as_str),
        Some("1.1.0")
    );
    // And set A still boots 1.0.0 (untouched).
    let d = signpost::Disk::open_read_only(&disk).unwrap();
    let set_a = d.set(signpost::SetName::A).unwrap();
    drop(d);
    let booted = os_image::emulated_boot(&disk, &set_a).unwrap();
    assert_eq!(
        booted.os_release.get("VERSION_ID").map(String::as_str),
        Some("1.0.0")
    );
}
