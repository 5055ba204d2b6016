//! Bad disks and bad layouts give clear, specific errors; a damaged table copy is recovered from
//! the other one, reported, and repaired by the next write.

mod common;

use common::*;
use signpost::state::Command as Cmd;
use signpost::{Disk, Error, ExitStatus, SetName, Signpost};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

fn tools() -> bool {
    test_support::require_tool("sgdisk") && test_support::require_tool("sfdisk")
}

fn cli(path: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .arg("--disk")
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn flip(path: &Path, offset: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.read_exact_at(&mut b, offset).unwrap();
    f.write_all_at(&[b[0] ^ 0x01], offset).unwrap();
}

#[test]
fn not_a_gpt() {
    let dir = test_support::tempdir();
    let zeros = sparse(dir.path(), "zeros.img", 4 * MIB);
    let err = Disk::open_read_only(&zeros).unwrap_err();
    assert!(matches!(err, Error::NotGpt { .. }), "{err:?}");
    assert!(
        err.to_string().contains("has no GUID partition table"),
        "{err}"
    );
    let (code, _, stderr) = cli(&zeros, &["--active", "a", "status"]);
    assert_eq!(code, 3);
    assert!(
        stderr.starts_with("error: ") && stderr.contains("zeros.img has no GUID partition table"),
        "{stderr}"
    );

    if test_support::require_tool("sfdisk") {
        let mbr = sparse(dir.path(), "mbr.img", 4 * MIB);
        let mut child = Command::new("sfdisk")
            .arg(&mbr)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"label: dos\n,1M,83\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
        assert!(matches!(
            Disk::open_read_only(&mbr).unwrap_err(),
            Error::NotGpt { .. }
        ));
    }
    let tiny = sparse(dir.path(), "tiny.img", 1024);
    assert!(matches!(
        Disk::open_read_only(&tiny).unwrap_err(),
        Error::NotGpt { .. }
    ));
    let err = Disk::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(err, Error::NotADisk { .. }), "{err:?}");
}

/// A corrupt primary header or entry array: the backup is used, status says so, and the next
/// change rewrites both copies (sgdisk -v clean again).
#[test]
fn corrupt_primary_is_recovered_from_backup() {
    if !tools() {
        return;
    }
    for (what, offset, problem) in [
        ("header", 512 + 24, "header CRC32 mismatch"),
        (
            "entries",
            1024 + 2 * 128 + 40,
            "partition entry array CRC32 mismatch",
        ),
    ] {
        let dir = test_support::tempdir();
        let path = sgdisk_image(dir.path(), Sets::Dual);
        let initial = sfdisk(&path);
        flip(&path, offset);
        let disk = Disk::open_read_only(&path).unwrap();
        let warnings = disk.warnings();
        assert_eq!(warnings.len(), 1, "{what}: {warnings:?}");
        let text = warnings[0].to_string();
        assert!(
            text.starts_with("primary GPT copy is invalid (")
                && text.contains(problem)
                && text.contains("recovered the table from the backup copy"),
            "{what}: {text}"
        );
        drop(disk);
        let (code, stdout, _) = cli(&path, &["--active", "a", "status"]);
        assert_eq!(code, 0);
        assert!(
            stdout.contains("Warning: primary GPT copy is invalid"),
            "{stdout}"
        );
        assert!(stdout.contains("Set A:   boot="), "{stdout}");
        let (code, stdout, _) = cli(&path, &["--active", "a", "status", "--json"]);
        assert_eq!(code, 0);
        let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(v["warnings"][0]["copy"], "primary");
        assert_eq!(v["warnings"][0]["used"], "backup");

        let mut sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
        sp.run(Cmd::MarkSuccessfulBoot).unwrap();
        assert!(
            sp.disk().warnings().is_empty(),
            "{what}: still {:?}",
            sp.disk().warnings()
        );
        assert_sgdisk_clean(&path);
        let mut want = initial.1.clone();
        want.insert(3, want[&3] | (1 << 56));
        want.insert(12, want[&12] | (1 << 57));
        assert_only_attrs(&initial, &sfdisk(&path), &want);
    }
}

#[test]
fn corrupt_backup_is_reported_and_repaired() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let len = std::fs::metadata(&path).unwrap().len();
    flip(&path, len - 512 + 24);
    let disk = Disk::open_read_only(&path).unwrap();
    let w = disk.warnings();
    assert_eq!(w.len(), 1);
    assert_eq!(
        w[0].to_string(),
        format!(
            "backup GPT copy is invalid ({}); recovered the table from the primary copy; the next change rewrites both",
            w[0].problem
        )
    );
    drop(disk);
    let mut sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    sp.clear_inactive().unwrap();
    assert!(sp.disk().warnings().is_empty());
    assert_sgdisk_clean(&path);
}

#[test]
fn both_copies_corrupt() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let len = std::fs::metadata(&path).unwrap().len();
    flip(&path, 512 + 24);
    flip(&path, len - 512 + 24);
    let err = Disk::open_read_only(&path).unwrap_err();
    assert!(matches!(err, Error::BothCopiesInvalid { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("both GPT copies are invalid (primary: header CRC32 mismatch"),
        "{err}"
    );
    let (code, _, stderr) = cli(&path, &["--active", "a", "status"]);
    assert_eq!(code, 3, "{stderr}");
}

fn sgdisk(path: &Path, args: &[&str]) {
    run(Command::new("sgdisk").args(args).arg(path));
}

#[test]
fn missing_or_misplaced_root_and_hash() {
    if !tools() {
        return;
    }
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "ROOT-B retyped",
            &["-t", "9:8300"],
            "set B has BOOT at partition 8, so its ROOT must be partition 9 (PARTNROFF=1), but partition 9 is type 0fc63daf-8483-4772-8e79-3d69d8477de4 (\"BOTTLEROCKET-ROOT-B\")",
        ),
        (
            "HASH-B deleted",
            &["-d", "10"],
            "set B has BOOT at partition 8, so its HASH must be partition 10 (PARTNROFF=2), but partition 10 is unused",
        ),
        (
            "ROOT-A and HASH-A swapped",
            &[
                "-t",
                &format!("4:{}", signpost::guids::HASH),
                "-t",
                &format!("5:{}", signpost::guids::ROOT),
            ],
            "set A has BOOT at partition 3, so its ROOT must be partition 4 (PARTNROFF=1), but partition 4 is HASH (\"BOTTLEROCKET-ROOT-A\")",
        ),
    ];
    for (name, args, message) in cases {
        let dir = test_support::tempdir();
        let path = sgdisk_image(dir.path(), Sets::Dual);
        sgdisk(&path, args);
        let err = Disk::open_read_only(&path).unwrap_err();
        assert!(matches!(err, Error::BadSetLayout { .. }), "{name}: {err:?}");
        assert!(err.to_string().ends_with(message), "{name}: {err}");
        let (code, _, stderr) = cli(&path, &["--active", "a", "status"]);
        assert_eq!(code, 3, "{name}");
        assert!(
            stderr.contains("hint: the bootloader finds ROOT and HASH"),
            "{stderr}"
        );
    }
}

#[test]
fn three_boot_partitions() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    sgdisk(&path, &["-t", &format!("11:{}", signpost::guids::BOOT)]);
    let err = Disk::open_read_only(&path).unwrap_err();
    assert!(
        matches!(err, Error::TooManyBootPartitions { count: 3, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .ends_with("3 BOOT partitions (at [3, 8, 11]); an A/B disk has one or two"),
        "{err}"
    );
}

#[test]
fn no_boot_and_no_private() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Single);
    sgdisk(&path, &["-d", "7"]); // PRIVATE
    let disk = Disk::open(&path).unwrap();
    let err = Signpost::new(disk, SetName::A).unwrap_err();
    assert!(matches!(err, Error::NoPrivatePartition { .. }), "{err:?}");
    sgdisk(&path, &["-d", "3"]);
    assert!(matches!(
        Disk::open_read_only(&path).unwrap_err(),
        Error::NoBootPartition { .. }
    ));
}

#[test]
fn read_only_image() {
    if !tools() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let err = Disk::open(&path).unwrap_err();
    assert!(matches!(err, Error::DiskReadOnly { .. }), "{err:?}");
    assert_eq!(err.exit_code(), ExitStatus::ReadOnly);
    let (code, _, stderr) = cli(&path, &["--active", "a", "clear-inactive"]);
    assert_eq!(code, 6);
    assert!(
        stderr.contains("is read-only, cannot change its partition table"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: check the file's permissions"),
        "{stderr}"
    );
    // Reading still works.
    let (code, stdout, _) = cli(&path, &["--active", "a", "status"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("Active:  Set A"));
    assert_eq!(std::fs::read(&path).unwrap(), before);
    // A read-only Disk refuses to write.
    let mut sp = Signpost::new(Disk::open_read_only(&path).unwrap(), SetName::A).unwrap();
    assert!(matches!(
        sp.clear_inactive().unwrap_err(),
        Error::OpenedReadOnly { .. }
    ));
}

#[test]
fn four_kib_sectors() {
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 4096);
    let mut sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    assert_eq!(sp.disk().sector_size(), 4096);
    let b = sp.disk().set(SetName::B).unwrap();
    assert_eq!(
        (b.boot.number, b.boot.first_byte, b.boot.len_bytes),
        (8, 8 * MIB, MIB)
    );
    for cmd in [
        Cmd::MarkSuccessfulBoot,
        Cmd::ClearInactive,
        Cmd::MarkInactiveValid,
        Cmd::UpgradeToInactive,
    ] {
        sp.run(cmd).unwrap();
    }
    assert_eq!(sp.next_boot(), Some(SetName::B));
    drop(sp);
    // Primary header at 4096; corrupt it and read from the backup at len - 4096.
    flip(&path, 4096 + 24);
    let disk = Disk::open(&path).unwrap();
    assert_eq!(disk.sector_size(), 4096);
    assert_eq!(disk.warnings().len(), 1);
    assert_eq!(disk.flags(SetName::B).unwrap().priority, 2);
    let mut disk = disk;
    let choice = signpost::boot_select(&mut disk).unwrap().unwrap();
    assert_eq!(choice.set, SetName::B);
    assert!(
        disk.warnings().is_empty(),
        "selector's write repaired the primary"
    );
    // The table really sits at 4096-byte offsets.
    let data = std::fs::read(&path).unwrap();
    assert_eq!(&data[4096..4104], b"EFI PART");
    assert_eq!(&data[data.len() - 4096..data.len() - 4088], b"EFI PART");
    assert_ne!(&data[512..520], b"EFI PART");
}

#[test]
fn disk_without_active_is_a_clear_error() {
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    let (code, _, stderr) = cli(&path, &["clear-inactive"]);
    assert_eq!(code, 8);
    assert!(
        stderr.starts_with("error: --active a|b is required with --disk"),
        "{stderr}"
    );
}

#[test]
fn write_new_table_rejects_bad_layouts() {
    use signpost::NewPartition;
    let dir = test_support::tempdir();
    let path = sparse(dir.path(), "new.img", 8 * MIB);
    let part = |first: u64, last: u64, id: u8| NewPartition {
        type_guid: signpost::guids::to_bytes(signpost::guids::DATA),
        label: "P".into(),
        first_lba: first,
        last_lba: last,
        attributes: 0,
        unique_guid: [id; 16],
    };
    let cases: Vec<(Vec<NewPartition>, &str)> = vec![
        (
            vec![part(2048, 4095, 1), part(4000, 6000, 2)],
            "invalid partition boundaries",
        ),
        (
            vec![part(2048, 4095, 1), part(4096, 6000, 1)],
            "conflict of partition GUIDs",
        ),
        (vec![part(10, 4095, 1)], "outside the usable 34..=16350"),
        (vec![part(2048, 16_383, 1)], "outside the usable"),
    ];
    for (parts, message) in cases {
        let err = signpost::write_new_table(&path, 512, [1; 16], &parts).unwrap_err();
        assert!(matches!(err, Error::InvalidLayout { .. }), "{err:?}");
        assert!(err.to_string().contains(message), "{err}");
    }
    let err = signpost::write_new_table(&path, 1024, [1; 16], &[]).unwrap_err();
    assert!(
        err.to_string()
            .contains("sector size 1024 is not 512 or 4096"),
        "{err}"
    );
    let mut long = part(2048, 4095, 1);
    long.label = "X".repeat(37);
    assert!(
        signpost::write_new_table(&path, 512, [1; 16], &[long])
            .unwrap_err()
            .to_string()
            .contains("longer than 36")
    );
    // Nothing was written by the refused calls.
    assert!(std::fs::read(&path).unwrap().iter().all(|b| *b == 0));
}

/// A disk grown after partitioning: the backup is no longer at the end. Reading works (with a
/// warning), writing is refused because the crash-safety argument needs the backup at the end.
#[test]
fn grown_disk_is_refused_for_writing() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = sgdisk_image(dir.path(), Sets::Dual);
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.set_len(32 * MIB).unwrap();
    drop(f);
    let disk = Disk::open(&path).unwrap();
    assert_eq!(disk.warnings().len(), 1);
    assert!(
        disk.warnings()[0]
            .to_string()
            .starts_with("backup GPT copy is invalid (no \"EFI PART\" signature)")
    );
    let mut sp = Signpost::new(disk, SetName::A).unwrap();
    let err = sp.clear_inactive().unwrap_err();
    assert!(matches!(err, Error::BackupNotAtEnd { .. }), "{err:?}");
    assert!(
        err.to_string().ends_with(
            "the backup GPT header is recorded at sector 32767 but the disk's last sector is 65535"
        ),
        "{err}"
    );
    assert_eq!(
        err.hint().unwrap(),
        "move the backup table to the end with `sgdisk -e`"
    );
    // After `sgdisk -e` it works again.
    drop(sp);
    sgdisk(&path, &["-e"]);
    let mut sp = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    sp.clear_inactive().unwrap();
    assert_sgdisk_clean(&path);
}
