//! Privileged tier: signpost on real block devices (loop devices with 512- and 4096-byte logical
//! sectors), partitioned by sgdisk and checked with `sfdisk --json` and `sgdisk -v` on the
//! device. Needs root and loop devices; runs only with `SIGNPOST_LOOP_TESTS=1`.

mod common;

use common::*;
use signpost::state::Command as Cmd;
use signpost::{Disk, DiskKind, SetName, Signpost, attrs, boot_select};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[allow(clippy::print_stderr)]
fn enabled() -> bool {
    if std::env::var("SIGNPOST_LOOP_TESTS").as_deref() == Ok("1") {
        return test_support::require_tool("losetup")
            && test_support::require_tool("sgdisk")
            && test_support::require_tool("sfdisk");
    }
    test_support::skip(
        "block-device tier needs root and loop devices; set SIGNPOST_LOOP_TESTS=1 to run it",
    );
    false
}

struct Loop(PathBuf);

impl Loop {
    fn attach(image: &Path, sector_size: u64) -> Loop {
        let out = run(Command::new("losetup")
            .args(["-f", "--show", "-b", &sector_size.to_string()])
            .arg(image));
        Loop(PathBuf::from(out.trim()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

fn cycle_on_loop(sector_size: u64) {
    let dir = test_support::tempdir();
    let image = sparse(dir.path(), "disk.img", 16 * MIB);
    let dev = Loop::attach(&image, sector_size);
    sgdisk_layout(&dev.0, Sets::Dual);
    fill_sets(&dev.0);
    let initial = sfdisk(&dev.0);
    let mut sp = Signpost::new(Disk::open(&dev.0).unwrap(), SetName::A).unwrap();
    assert_eq!(sp.disk().kind(), DiskKind::BlockDevice);
    assert_eq!(sp.disk().sector_size(), sector_size);
    let b = sp.disk().set(SetName::B).unwrap();
    assert_eq!(b.boot.first_byte, 8 * MIB);
    let node = sp.disk().partition_path(&b.root).unwrap();
    assert_eq!(node, PathBuf::from(format!("{}p9", dev.0.display())));
    for cmd in [
        Cmd::MarkSuccessfulBoot,
        Cmd::ClearInactive,
        Cmd::MarkInactiveValid,
        Cmd::UpgradeToInactive,
    ] {
        sp.run(cmd).unwrap();
        let s = sp.state();
        let mut want = BTreeMap::new();
        want.insert(3, attrs::encode(initial.1[&3], s.a));
        want.insert(8, attrs::encode(initial.1[&8], s.b.unwrap()));
        want.insert(12, attrs::with_ever_booted(initial.1[&12], s.ever_booted));
        assert_only_attrs(&initial, &sfdisk(&dev.0), &want);
        assert_sgdisk_clean(&dev.0);
    }
    let mut disk = sp.into_disk();
    assert_eq!(boot_select(&mut disk).unwrap().unwrap().set, SetName::B);
    assert_sgdisk_clean(&dev.0);
    // The whole stack agrees with the image file underneath.
    drop(disk);
    let file_view = Disk::open_read_only(&image).unwrap();
    assert_eq!(file_view.sector_size(), sector_size);
    assert_eq!(file_view.flags(SetName::B).unwrap().tries_left, 0);
}

/// `write_new_table` on a 4096-byte-sector device: sgdisk and sfdisk read it as we meant it.
#[test]
fn native_table_on_4096_device() {
    if !enabled() {
        return;
    }
    let dir = test_support::tempdir();
    let image = sparse(dir.path(), "disk.img", 16 * MIB);
    let dev = Loop::attach(&image, 4096);
    native_layout(&dev.0, Sets::Dual, 4096);
    assert_sgdisk_clean(&dev.0);
    let (parts, attrs) = sfdisk(&dev.0);
    assert_eq!(parts.len(), 13);
    for (i, (label, ty, a)) in layout(Sets::Dual).iter().enumerate() {
        let n = i as u32 + 1;
        assert_eq!(parts[&n]["type"].as_str().unwrap().to_lowercase(), *ty);
        assert_eq!(
            parts[&n].get("name").and_then(|v| v.as_str()).unwrap_or(""),
            *label
        );
        assert_eq!(
            parts[&n]["start"].as_u64().unwrap(),
            u64::from(n) * 256,
            "in 4096-byte sectors"
        );
        assert_eq!(attrs[&n], *a);
    }
    let out = run(Command::new("sfdisk").arg("--json").arg(&dev.0));
    assert!(out.contains("\"sectorsize\": 4096"), "{out}");
}

#[test]
fn loop_device_512() {
    if enabled() {
        cycle_on_loop(512);
    }
}

#[test]
fn loop_device_4096() {
    if enabled() {
        cycle_on_loop(4096);
    }
}
