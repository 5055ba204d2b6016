//! Hostile and damaged tables that pass every CRC (issue 11): overlapping entries, entries
//! outside the disk or with offsets that overflow 64 bits, truncated disks, and transitions onto
//! a set that holds nothing bootable. Each is refused by every command with a clear error, and
//! nothing on the disk changes.

mod common;

use common::*;
use signpost::gpt::TableProblem;
use signpost::{Disk, DiskState, Error, Flags, SetName};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

fn tools() -> bool {
    ["sgdisk", "sfdisk", "mkfs.ext4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

fn cli(path: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .arg("--disk")
        .arg(path)
        .arg("--lock-timeout=0")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

const TRANSITIONS: [&str; 6] = [
    "mark-successful-boot",
    "clear-inactive",
    "mark-inactive-valid",
    "upgrade-to-inactive",
    "cancel-upgrade",
    "rollback-to-inactive",
];

/// Every reading command and every transition, from either set, exits 3 with `needle` in its
/// error, and the disk's bytes do not change.
fn refused_everywhere(path: &Path, needle: &str) {
    let before = std::fs::read(path).unwrap();
    let mut runs = 0;
    let mut commands: Vec<Vec<&str>> = vec![vec!["boot-select"]];
    for active in ["a", "b"] {
        commands.push(vec!["--active", active, "status"]);
        commands.push(vec!["--active", active, "status", "--json"]);
        commands.push(vec!["--active", active, "has-boot-ever-succeeded"]);
        for t in TRANSITIONS {
            commands.push(vec!["--active", active, t]);
        }
    }
    for args in &commands {
        let (code, stdout, stderr) = cli(path, args);
        assert_eq!(code, 3, "{args:?}: exit {code}\n{stdout}\n{stderr}");
        if args.contains(&"--json") {
            // With --json, stderr carries only JSON lines: the error is one object.
            let v: serde_json::Value = serde_json::from_str(stderr.trim_end())
                .unwrap_or_else(|e| panic!("{args:?}: {e}: {stderr}"));
            assert!(
                v["error"].as_str().unwrap().contains(needle)
                    || v["causes"].to_string().contains(needle),
                "{args:?}: {stderr}"
            );
            assert!(v["hint"].is_string(), "{args:?}: {stderr}");
            assert_eq!(v["exit_code"], 3, "{args:?}: {stderr}");
        } else {
            assert!(
                stderr.starts_with("error: ") && stderr.contains(needle),
                "{args:?}: {stderr}"
            );
            assert!(stderr.contains("hint: "), "{args:?}: {stderr}");
        }
        runs += 1;
    }
    assert_eq!(runs, 19);
    assert!(
        std::fs::read(path).unwrap() == before,
        "a refused command changed the disk"
    );
}

/// Regression (issue 11): a CRC-valid GPT whose BOOT-B overlaps BOOT-A was accepted, so an
/// update wrote the new boot image over the running set's BOOT partition.
#[test]
fn issue_11_overlapping_boot_b_is_refused_everywhere() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let (a_first, a_last) = entry_range(&path, 512, 3);
    set_entry_range(&path, 512, 8, a_first + 8, a_last + 8);
    // The independent oracle sees the overlap too (and the CRCs are fine).
    let out = Command::new("sgdisk")
        .arg("-v")
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(text.contains("overlap"), "sgdisk -v:\n{text}");
    assert!(!text.contains("crc"), "sgdisk -v:\n{text}");

    let err = Disk::open_read_only(&path).unwrap_err();
    match &err {
        Error::BadPartitionTable {
            problem: TableProblem::Overlap { first, second },
            ..
        } => {
            assert_eq!((first.number, second.number), (3, 8), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.exit_code().code(), 3);
    let want = format!(
        "the primary partition table is unusable: partition 8 (\"BOTTLEROCKET-BOOT-B\", sectors {}..={}) overlaps partition 3 (\"BOTTLEROCKET-BOOT-A\", sectors {a_first}..={a_last})",
        a_first + 8,
        a_last + 8
    );
    assert!(err.to_string().ends_with(&want), "{err}");
    refused_everywhere(&path, &want);
}

/// Overlaps between other entries, and an entry nested inside another, are found too.
#[test]
fn any_overlap_is_refused() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let base = sgdisk_image(dir.path(), Sets::Dual);
    let cases: [(u32, u32); 3] = [(13, 12), (1, 2), (11, 5)];
    for (moved, onto) in cases {
        let path = dir.path().join(format!("overlap-{moved}-{onto}.img"));
        std::fs::copy(&base, &path).unwrap();
        let (first, last) = entry_range(&path, 512, onto);
        // Nested: one sector inside the other partition.
        set_entry_range(&path, 512, moved, first + 1, last - 1);
        match Disk::open_read_only(&path).unwrap_err() {
            Error::BadPartitionTable {
                problem: TableProblem::Overlap { first, second },
                ..
            } => {
                let mut want = [moved, onto];
                want.sort();
                assert_eq!([first.number, second.number], want);
            }
            other => panic!("{moved} onto {onto}: {other:?}"),
        }
    }
}

/// Regression (issue 11): `lba × sector_size` overflowed: a debug build panicked (exit 101) and
/// a release build wrapped, so an entry could resolve to another partition's offset.
#[test]
fn issue_11_huge_lba_is_a_clean_error() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let base = sgdisk_image(dir.path(), Sets::Dual);
    let (a_first, a_last) = entry_range(&base, 512, 3);
    // 2^55 sectors × 512 bytes = 2^64: wraps to exactly BOOT-A's offset.
    let wrap = 1u64 << 55;
    let cases: [(&str, u64, u64, &str); 4] = [
        (
            "wraps onto BOOT-A",
            wrap + a_first,
            wrap + a_last,
            "extends beyond the end of the disk",
        ),
        (
            "u64::MAX",
            u64::MAX - 10,
            u64::MAX,
            "extends beyond the end",
        ),
        (
            "reversed",
            a_last + 4096,
            a_first + 4096,
            "ends before it starts",
        ),
        (
            "over the primary entry array",
            2,
            a_first - 1,
            "lies outside the usable sectors 34..=",
        ),
    ];
    for (what, first, last, needle) in cases {
        let path = dir.path().join("huge.img");
        std::fs::copy(&base, &path).unwrap();
        set_entry_range(&path, 512, 8, first, last);
        let err = Disk::open_read_only(&path).unwrap_err();
        assert!(
            matches!(err, Error::BadPartitionTable { .. }) && err.to_string().contains(needle),
            "{what}: {err}"
        );
        assert!(err.to_string().contains("partition 8 ("), "{what}: {err}");
        refused_everywhere(&path, needle);
    }
    // Header fields: a usable range up to u64::MAX, and an entry array at a huge sector.
    let path = dir.path().join("header.img");
    std::fs::copy(&base, &path).unwrap();
    edit_table(
        &path,
        512,
        |_, h| h[48..56].copy_from_slice(&u64::MAX.to_le_bytes()),
        |_, _| {},
    );
    let err = Disk::open_read_only(&path).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadPartitionTable {
                problem: TableProblem::UsableRange { .. },
                ..
            }
        ),
        "{err:?}"
    );
    refused_everywhere(&path, "usable sectors 34..=18446744073709551615 do not fit");
    let path = dir.path().join("array.img");
    std::fs::copy(&base, &path).unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    for lba in [1u64, std::fs::metadata(&path).unwrap().len() / 512 - 1] {
        let mut h = vec![0u8; 92];
        f.read_exact_at(&mut h, lba * 512).unwrap();
        h[72..80].copy_from_slice(&(wrap + 2).to_le_bytes());
        h[16..20].fill(0);
        let c = crc32(&h);
        h[16..20].copy_from_slice(&c.to_le_bytes());
        f.write_all_at(&h, lba * 512).unwrap();
    }
    drop(f);
    let (code, _, stderr) = cli(&path, &["--active", "a", "status"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(
        stderr.contains("entry array at sector 36028797018963970 lies outside the disk"),
        "{stderr}"
    );
}

/// Regression (issue 11): a disk truncated below its partitions was reported bootable.
#[test]
fn issue_11_truncated_disk_is_unusable() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let base = sgdisk_image(dir.path(), Sets::Dual);
    let len = std::fs::metadata(&base).unwrap().len();
    let (_, b_last) = entry_range(&base, 512, 10); // HASH-B
    for (what, new_len) in [
        ("below set B", (b_last - 100) * 512),
        ("below the backup header", len - 512),
        ("half", len / 2),
    ] {
        let path = dir.path().join("truncated.img");
        std::fs::copy(&base, &path).unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(new_len).unwrap();
        drop(f);
        let err = Disk::open_read_only(&path).unwrap_err();
        assert!(
            matches!(
                err,
                Error::BadPartitionTable {
                    problem: TableProblem::Truncated { .. },
                    ..
                }
            ),
            "{what}: {err:?}"
        );
        let want = format!(
            "the table records its backup header at sector {}, but the disk ends at sector {}: the disk or image is truncated",
            len / 512 - 1,
            new_len / 512 - 1
        );
        assert!(err.to_string().ends_with(&want), "{what}: {err}");
        assert_eq!(
            err.hint().unwrap(),
            "the disk image was cut short; restore it from a complete copy"
        );
        refused_everywhere(&path, &want);
    }
}

fn set_flags(path: &Path, a: Flags, b: Flags) {
    Disk::open(path)
        .unwrap()
        .write_state(&DiskState {
            a,
            b: Some(b),
            ever_booted: true,
        })
        .unwrap();
}

fn fl(priority: u8, tries_left: u8, successful: bool) -> Flags {
    Flags {
        priority,
        tries_left,
        successful,
    }
}

/// Regression (issue 11): with a wrong `--active`, `mark-successful-boot` marked a
/// never-written set successful, and `rollback-to-inactive` then made it the permanent next
/// boot with no fallback.
#[test]
fn issue_11_transitions_onto_a_never_written_set_are_refused() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let disk = Disk::open_read_only(&path).unwrap();
    let set_b = disk.set(SetName::B).unwrap();
    drop(disk);
    blank_set(&path, &set_b);

    // Wrong --active: B was never written.
    let before = std::fs::read(&path).unwrap();
    let (code, _, stderr) = cli(&path, &["--active", "b", "mark-successful-boot"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(
            "refusing mark-successful-boot: set B holds nothing bootable (BOOT partition 8 has no filesystem (its start is all zeros))"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("check --active"), "{stderr}");
    assert!(std::fs::read(&path).unwrap() == before, "disk changed");

    // Even if B's flags say "successful" (an older signpost marked it), rolling back onto it is
    // refused; so is cancel-upgrade from the wrong side and upgrading onto it.
    for (a, b, active, cmd) in [
        (fl(1, 0, true), fl(0, 0, true), "a", "rollback-to-inactive"),
        (fl(1, 0, true), fl(0, 1, false), "a", "upgrade-to-inactive"),
        (fl(1, 0, true), fl(1, 0, true), "b", "cancel-upgrade"),
    ] {
        set_flags(&path, a, b);
        let before = std::fs::read(&path).unwrap();
        let (code, _, stderr) = cli(&path, &["--active", active, cmd]);
        assert_eq!(code, 4, "{cmd}: {stderr}");
        assert!(
            stderr.contains(&format!("refusing {cmd}: set B holds nothing bootable")),
            "{cmd}: {stderr}"
        );
        assert!(
            std::fs::read(&path).unwrap() == before,
            "{cmd} changed the disk"
        );
    }

    // BOOT written but HASH blank, then a HASH whose tree covers more than ROOT.
    fill_set(&path, &set_b);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0u8; 4096], set_b.hash.first_byte).unwrap();
    drop(f);
    set_flags(&path, fl(1, 0, true), fl(0, 0, true));
    let (code, _, stderr) = cli(&path, &["--active", "a", "rollback-to-inactive"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains("HASH partition 10 has no dm-verity superblock"),
        "{stderr}"
    );
    fill_set(&path, &set_b);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let blocks = set_b.root.len_bytes / 4096 + 1;
    f.write_all_at(&blocks.to_le_bytes(), set_b.hash.first_byte + 72)
        .unwrap();
    drop(f);
    let (code, _, stderr) = cli(&path, &["--active", "a", "rollback-to-inactive"]);
    assert_eq!(code, 4, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "HASH partition 10 does not match its ROOT: it covers {blocks} blocks of 4096 bytes, more than ROOT's {} bytes",
            set_b.root.len_bytes
        )),
        "{stderr}"
    );

    // With real content the same rollback goes through.
    fill_set(&path, &set_b);
    let (code, stdout, stderr) = cli(&path, &["--active", "a", "rollback-to-inactive"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_sgdisk_clean(&path);
    // Demoting a blank set is always allowed (clear-inactive before writing it).
    blank_set(&path, &set_b);
    set_flags(&path, fl(1, 0, true), fl(0, 0, false));
    let (code, _, stderr) = cli(&path, &["--active", "a", "clear-inactive"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = cli(&path, &["--active", "a", "mark-inactive-valid"]);
    assert_eq!(code, 0, "{stderr}");
}
