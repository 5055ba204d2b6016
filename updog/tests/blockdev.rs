//! Writing to a real block device: an update into a loop device (direct I/O, checked behind the
//! writer) that `veritysetup verify` accepts on the loop device's own partition devices, the same
//! through the page cache (`UPDOG_DIRECT_IO=off`: checked after the flush instead), the page-cache
//! fallback on a file system that refuses `O_DIRECT` (ramfs), the disk writer's handling of
//! starts and ends inside a device block, and the seekable `DiskTarget` (the delta path's).
//!
//! Loop devices and mounts need root: without it the tests record a skip; under `CI=true` (where tests run
//! as root) they must run.

mod common;

use common::*;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::process::Command;
use test_support::loopdev::{Loop, is_root, need_loop_devices, need_root};
use updog::blockio::{self, DirectPolicy, DiskTarget, IoMode, Writer};

/// `updog --json update --now` onto a loop device over the scene's disk (`UPDOG_DIRECT_IO` set
/// when given); checks it succeeded, that `root_update.verified` is `verified` and that
/// `veritysetup verify` accepts ROOT-B and HASH-B on the loop device's own partition devices.
/// Returns the device and the log.
fn update_on_a_loop_device(
    scene: &TwoReleases,
    direct_io: Option<&str>,
    verified: &str,
) -> (Loop, String) {
    let dev = Loop::attach(&scene.host.disk, &[]);
    let host = Host {
        root: scene.host.root.clone(),
        disk: dev.dev.clone(),
    };
    let mut cmd = host.command(&["--json", "update", "--now"]);
    if let Some(v) = direct_io {
        cmd.env("UPDOG_DIRECT_IO", v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(outcome["root_update"]["verified"], verified, "{outcome}");
    let status = Command::new("veritysetup")
        .arg("verify")
        .arg(dev.partition(ROOT_B))
        .arg(dev.partition(HASH_B))
        .arg(&scene.new.root_hash)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "veritysetup verify refused the written set"
    );
    (dev, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn update_into_a_loop_device_writes_directly_and_verifies() {
    if !tools() || !need_loop_devices() {
        return;
    }
    let scene = TwoReleases::new(2 * MIB, 6 * MIB + 20 * 1024, 8, RoleVersions::all(1));
    let (dev, log) = update_on_a_loop_device(&scene, None, "while-writing");
    assert!(
        log.contains("root image written (Direct { align: 512 })"),
        "the root image was not written with direct I/O:\n{log}"
    );
    assert!(!log.contains("refuse"), "{log}");
    assert!(
        log.contains("root checked against the tree as it was written"),
        "the root was not checked behind the writer:\n{log}"
    );
    let boot = std::fs::read(&scene.new.boot_img).unwrap();
    let mut on_disk = vec![0u8; boot.len()];
    std::fs::File::open(dev.partition(BOOT_B))
        .unwrap()
        .read_exact_at(&mut on_disk, 0)
        .unwrap();
    assert!(on_disk == boot, "BOOT-B does not hold the new boot image");
    assert_eq!(scene.host.next_boot(), Some(signpost::SetName::B));
}

/// With direct I/O turned off, a block device is written through the page cache: reading back
/// right after each write would read that cache, so the root is not checked behind the writer
/// but in the pass after the flush (which drops the cache first), and the set verifies.
#[test]
fn page_cache_writes_to_a_block_device_are_checked_after_the_flush() {
    if !tools() || !need_loop_devices() {
        return;
    }
    let scene = TwoReleases::new(2 * MIB, 3 * MIB, 4, RoleVersions::all(1));
    let (_dev, log) = update_on_a_loop_device(&scene, Some("off"), "after-writing");
    assert!(log.contains("root image written (Buffered)"), "{log}");
    assert_eq!(scene.host.next_boot(), Some(signpost::SetName::B));
}

/// A ramfs mounted on a fresh directory, unmounted when dropped.
struct Ramfs {
    dir: tempfile::TempDir,
}

impl Drop for Ramfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_file_system_that_refuses_direct_io_gets_the_page_cache() {
    // tmpfs accepts O_DIRECT since Linux 6.6; ramfs still refuses it (EINVAL at open).
    if !tools() || !need_root("mounting a ramfs") {
        return;
    }
    let scene = TwoReleases::new(2 * MIB, 3 * MIB, 4, RoleVersions::all(1));
    let ramfs = Ramfs {
        dir: test_support::tempdir(),
    };
    let status = Command::new("mount")
        .args(["-t", "ramfs", "ramfs"])
        .arg(ramfs.dir.path())
        .status()
        .unwrap();
    assert!(status.success(), "mount -t ramfs failed");
    let disk = ramfs.dir.path().join("disk.img");
    std::fs::copy(&scene.host.disk, &disk).unwrap();

    // The library's choice first: asked for direct I/O, the file system refuses it at open.
    let probe = blockio::open_for_write(&disk, 0, 4096, DirectPolicy::On).unwrap();
    assert_eq!(probe.mode, IoMode::Buffered);
    drop(probe);

    let host = Host {
        root: scene.host.root.clone(),
        disk: disk.clone(),
    };
    let out = host
        .command(&["update-image", "--now"])
        .env("UPDOG_DIRECT_IO", "on")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("refuses direct I/O"),
        "no fallback reported:\n{log}"
    );
    assert!(log.contains("root image written (Buffered)"), "{log}");
    assert!(veritysetup_verify_b(&disk, &scene.new, &scene.dir));
}

/// A pattern that differs at every byte offset (so a misplaced byte shows).
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

#[test]
fn disk_writer_keeps_the_bytes_around_unaligned_starts_ends_and_checkpoints() {
    // With root: a loop device with 4096-byte logical blocks (direct I/O, alignment 4096);
    // without: a regular file, direct I/O where its file system allows it.
    let dir = test_support::tempdir();
    let file = dir.path().join("dev.img");
    let size = 8usize << 20;
    let before = pattern(size, 0x5a);
    std::fs::write(&file, &before).unwrap();
    let dev = if is_root() && test_support::find_on_path("losetup").is_some() {
        Some(Loop::attach(&file, &["--sector-size", "4096"]))
    } else {
        None
    };
    let target = dev.as_ref().map_or(file.clone(), |d| d.dev.clone());

    let start = 3 * 4096 + 123;
    let data = pattern((3 << 20) + 77, 0xa5);
    let disk = blockio::open_for_write(&target, 0, size as u64, DirectPolicy::On).unwrap();
    if dev.is_some() {
        assert_eq!(disk.mode, IoMode::Direct { align: 4096 });
    }
    // Every checkpoint must find its bytes on the device when it is handed on.
    let check = blockio::open_for_write(&target, 0, size as u64, DirectPolicy::Off).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    let expected = data.clone();
    let mut writer = Writer::new(disk, &target, start as u64, move |upto: usize| {
        let mut got = vec![0u8; upto];
        check.file.read_exact_at(&mut got, start as u64).unwrap();
        assert!(
            got == expected[..upto],
            "checkpoint at {upto} before its bytes"
        );
        seen2.lock().unwrap().push(upto);
        Ok(None)
    })
    .unwrap();
    let mut at = 0;
    for (i, piece) in data.chunks(300_001).enumerate() {
        writer.push(piece).unwrap();
        at += piece.len();
        if i % 3 == 1 {
            writer.mark(at).unwrap();
        }
    }
    let stats = writer.finish().unwrap();
    assert!(!seen.lock().unwrap().is_empty());
    let direct_expected = dev.is_some();
    drop(dev);

    let after = std::fs::read(&file).unwrap();
    let end = start + data.len();
    assert!(
        after[..start] == before[..start],
        "bytes before the start changed"
    );
    assert!(after[start..end] == data[..], "written bytes differ");
    // A direct write completes its last block with the device's bytes: nothing after the end
    // changes, not even inside that block.
    if direct_expected {
        assert_eq!(stats.mode, IoMode::Direct { align: 4096 });
    }
    assert!(after[end..] == before[end..], "bytes after the end changed");
}

/// The seekable target (the delta path's): contiguous runs, then writes elsewhere that start and
/// end inside device blocks, each read back through the target in between (reads wait for the
/// writes and come from the device); a write past the partition is refused; nothing outside the
/// written ranges changes, inside or outside the partition.
#[test]
fn disk_target_writes_anywhere_and_reads_back() {
    let dir = test_support::tempdir();
    let file = dir.path().join("dev.img");
    let size = 4usize << 20;
    let mut model = pattern(size, 0x33);
    std::fs::write(&file, &model).unwrap();
    let dev = if is_root() && test_support::find_on_path("losetup").is_some() {
        Some(Loop::attach(&file, &["--sector-size", "4096"]))
    } else {
        None
    };
    let target = dev.as_ref().map_or(file.clone(), |d| d.dev.clone());
    let first = 64 << 10;
    let len = 3usize << 20;
    let mut t = DiskTarget::open(&target, first as u64, len as u64, DirectPolicy::On).unwrap();
    let ops: [(usize, usize, u8); 7] = [
        (0, 700_001, 1),
        (700_001, 900_000, 2),
        (5_000, 100, 3),
        (2_000_000, 4_097, 4),
        (1_999_999, 3, 5),
        (len - 10, 10, 6),
        (4_096, 8_192, 7),
    ];
    for (at, n, seed) in ops {
        let bytes = pattern(n, seed);
        t.seek(SeekFrom::Start(at as u64)).unwrap();
        t.write_all(&bytes).unwrap();
        model[first + at..first + at + n].copy_from_slice(&bytes);
        let lo = at.saturating_sub(5_000);
        let hi = (at + n + 5_000).min(len);
        let mut got = vec![0u8; hi - lo];
        t.seek(SeekFrom::Start(lo as u64)).unwrap();
        t.read_exact(&mut got).unwrap();
        assert!(
            got == model[first + lo..first + hi],
            "read back around {at}+{n}"
        );
    }
    t.seek(SeekFrom::Start(len as u64 - 1)).unwrap();
    let e = t.write_all(b"xy").unwrap_err();
    let mut chain = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        chain.push_str(&format!(": {c}"));
        cause = c.source();
    }
    assert!(chain.contains("do not fit"), "{chain}");
    t.sync().unwrap();
    if dev.is_some() {
        assert_eq!(t.mode(), Some(IoMode::Direct { align: 4096 }));
    }
    drop(t);
    drop(dev);
    let after = std::fs::read(&file).unwrap();
    let first_diff = after.iter().zip(&model).position(|(a, b)| a != b);
    assert_eq!(first_diff, None, "the disk differs from the model");
}
