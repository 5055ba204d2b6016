//! Host discovery against a fake sysfs tree (built in a temp dir) whose disk node is a real
//! image file. The root device number is the real one of `/`, split with `libc::major/minor`.

mod common;

use common::*;
use signpost::discovery::{self, DevNum};
use signpost::{Access, Error, SetName, Signpost};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;

struct Tree {
    _dir: tempfile::TempDir,
    sys: PathBuf,
    dev: PathBuf,
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// sysfs for: root device = `dm-0` with lower devices `vda<parts>` (or, with `dm: false`, the
/// root device is partition `parts[0]` itself); `/dev/vda` → a real Bottlerocket-layout image.
fn tree(parts: &[u32], dm: bool) -> Tree {
    let dir = test_support::tempdir();
    let sys = dir.path().join("sys");
    let dev = dir.path().join("dev");
    std::fs::create_dir_all(&dev).unwrap();
    let image = native_image(dir.path(), Sets::Dual, 512);
    symlink(&image, dev.join("vda")).unwrap();
    let disk = sys.join("devices/pci0000:00/0000:00:04.0/virtio1/block/vda");
    write(&disk.join("dev"), "254:0\n");
    for n in 1..=13u32 {
        write(&disk.join(format!("vda{n}/partition")), &format!("{n}\n"));
        write(&disk.join(format!("vda{n}/dev")), &format!("254:{n}\n"));
    }
    let root = DevNum::of_path(Path::new("/")).unwrap();
    std::fs::create_dir_all(sys.join("dev/block")).unwrap();
    let link = sys.join("dev/block").join(root.to_string());
    if dm {
        let dm0 = sys.join("devices/virtual/block/dm-0");
        write(&dm0.join("dev"), &format!("{root}\n"));
        std::fs::create_dir_all(dm0.join("slaves")).unwrap();
        for n in parts {
            symlink(
                format!("../../../../pci0000:00/0000:00:04.0/virtio1/block/vda/vda{n}"),
                dm0.join(format!("slaves/vda{n}")),
            )
            .unwrap();
        }
        symlink("../../devices/virtual/block/dm-0", &link).unwrap();
    } else {
        symlink(disk.join(format!("vda{}", parts[0])), &link).unwrap();
    }
    Tree {
        _dir: dir,
        sys,
        dev,
    }
}

#[test]
fn dm_verity_root_on_set_a_and_b() {
    for (parts, active) in [(&[4u32, 5][..], SetName::A), (&[9, 10][..], SetName::B)] {
        let t = tree(parts, true);
        let sp = Signpost::discover(&t.sys, &t.dev).unwrap();
        assert_eq!(sp.active(), active);
        assert_eq!(sp.disk().path(), t.dev.join("vda"));
        let found =
            discovery::find_root_device(DevNum::of_path(Path::new("/")).unwrap(), &t.sys, &t.dev)
                .unwrap();
        assert_eq!(found.partitions, parts);
        // Through the CLI, without --disk.
        let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
            .arg("--sysfs-root")
            .arg(&t.sys)
            .arg("--dev-root")
            .arg(&t.dev)
            .args(["status", "--json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["active"], active.to_string());
        assert_eq!(v["disk"], t.dev.join("vda").to_str().unwrap());
    }
}

#[test]
fn plain_partition_root() {
    let t = tree(&[9], false);
    let sp = discovery::discover_with(
        DevNum::of_path(Path::new("/")).unwrap(),
        &t.sys,
        &t.dev,
        Access::ReadOnly,
    )
    .unwrap();
    assert_eq!(sp.active(), SetName::B);
}

#[test]
fn discovery_errors() {
    let root = DevNum::of_path(Path::new("/")).unwrap();
    // Lower device outside both sets (DATA partition 13).
    let t = tree(&[13], true);
    let err = discovery::discover_with(root, &t.sys, &t.dev, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::ActiveNotInSets { .. }), "{err:?}");
    assert!(
        err.to_string().contains("active partition(s) [13]"),
        "{err}"
    );
    // Lower devices spanning both sets.
    let t = tree(&[4, 10], true);
    assert!(matches!(
        discovery::discover_with(root, &t.sys, &t.dev, Access::ReadOnly).unwrap_err(),
        Error::ActiveNotInSets { .. }
    ));
    // dm device without lower devices.
    let t = tree(&[], true);
    let err = discovery::discover_with(root, &t.sys, &t.dev, Access::ReadOnly).unwrap_err();
    assert!(err.to_string().starts_with("root device dm-0 ("), "{err}");
    assert_eq!(err.exit_code(), signpost::ExitStatus::Discovery);
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .arg("--sysfs-root")
        .arg(&t.sys)
        .arg("--dev-root")
        .arg(&t.dev)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(8));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("hint: on a disk image, pass --disk PATH --active a|b"),
        "{stderr}"
    );
    // Lower devices on two different disks.
    let t = tree(&[4, 5], true);
    let vdb = t
        .sys
        .join("devices/pci0000:00/0000:00:05.0/virtio2/block/vdb");
    write(&vdb.join("dev"), "254:16\n");
    write(&vdb.join("vdb1/partition"), "1\n");
    symlink(
        vdb.join("vdb1"),
        t.sys.join("devices/virtual/block/dm-0/slaves/vdb1"),
    )
    .unwrap();
    let err = discovery::discover_with(root, &t.sys, &t.dev, Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::SeveralDisks { .. }), "{err:?}");
    assert!(err.to_string().contains(r#"["vda", "vdb"]"#), "{err}");
    // No sysfs entry for the root device at all.
    let empty = test_support::tempdir();
    let err =
        discovery::discover_with(root, empty.path(), empty.path(), Access::ReadOnly).unwrap_err();
    assert!(matches!(err, Error::ReadSysfs { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&format!("dev/block/{root}")),
        "{err}"
    );
}

#[test]
fn real_root_device_number_matches_stat() {
    // /proc/self/mountinfo's "maj:min" of "/" is the kernel's own split of st_dev.
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let line = info
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap();
    let majmin = line.split_whitespace().nth(2).unwrap();
    assert_eq!(DevNum::of_path(Path::new("/")).unwrap().to_string(), majmin);
}
