//! Regression (issue 11): a CRC-valid GPT whose BOOT-B overlaps BOOT-A was accepted by
//! `updog update`, which then wrote the new boot image over the running set's BOOT partition.
//! Now the partition table is refused when it is read, before anything is downloaded to or
//! written on the disk.

mod common;

use common::*;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

/// CRC32 (IEEE, reflected), written here so the test does not trust the code under test.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Sets entry `number`'s sector range in both GPT copies and recomputes both CRCs of each copy
/// (entry array, then header), as a hostile table would.
fn set_entry_range(path: &Path, number: u32, first: u64, last: u64) {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    for lba in [1, len / 512 - 1] {
        let mut header = vec![0u8; 512];
        f.read_exact_at(&mut header, lba * 512).unwrap();
        assert_eq!(&header[..8], b"EFI PART");
        let array_lba = le64(&header, 72);
        let count = le32(&header, 80) as usize;
        let size = le32(&header, 84) as usize;
        let mut array = vec![0u8; count * size];
        f.read_exact_at(&mut array, array_lba * 512).unwrap();
        let off = (number as usize - 1) * size;
        array[off + 32..off + 40].copy_from_slice(&first.to_le_bytes());
        array[off + 40..off + 48].copy_from_slice(&last.to_le_bytes());
        header[88..92].copy_from_slice(&crc32(&array).to_le_bytes());
        header[16..20].fill(0);
        let crc = crc32(&header[..le32(&header, 12) as usize]);
        header[16..20].copy_from_slice(&crc.to_le_bytes());
        f.write_all_at(&array, array_lba * 512).unwrap();
        f.write_all_at(&header, lba * 512).unwrap();
    }
    f.sync_all().unwrap();
}

fn read_range(path: &Path, (off, len): (u64, u64)) -> Vec<u8> {
    let mut v = vec![0u8; len as usize];
    std::fs::File::open(path)
        .unwrap()
        .read_exact_at(&mut v, off)
        .unwrap();
    v
}

#[test]
fn issue_11_update_refuses_a_table_whose_boot_b_overlaps_boot_a() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 3 * MIB, &[]);
    let new = make_release(&path, "1.1.0", 3 * MIB, &[]);
    let m = manifest(&[&old, &new]);
    let files = [old.target_files(), new.target_files()].concat();
    repo.publish(&m, &files, RoleVersions::all(1));
    let server = test_support::http::Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 8, "");

    // Control: the untouched disk is updatable (so the refusal below is about the table).
    let control = path.join("control.img");
    std::fs::copy(&host.disk, &control).unwrap();

    // BOOT-B := BOOT-A's sectors, in both copies, with valid CRCs.
    let set_a = [BOOT_A, ROOT_A, HASH_A].map(|n| partition(&host.disk, n));
    let (boot_a_off, boot_a_len) = set_a[0];
    let (first, last) = (boot_a_off / 512, (boot_a_off + boot_a_len) / 512 - 1);
    set_entry_range(&host.disk, BOOT_B, first, last);
    let sgdisk = Command::new("sgdisk")
        .arg("-v")
        .arg(&host.disk)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&sgdisk.stdout).to_lowercase();
    assert!(report.contains("overlap"), "sgdisk -v:\n{report}");
    assert!(!report.contains("crc"), "sgdisk -v:\n{report}");

    let disk_before = std::fs::read(&host.disk).unwrap();
    let a_before: Vec<Vec<u8>> = set_a.iter().map(|r| read_range(&host.disk, *r)).collect();
    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(16), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "partition 4 (\"BOTTLEROCKET-BOOT-B\", sectors {first}..={last}) overlaps partition 1 (\"BOTTLEROCKET-BOOT-A\", sectors {first}..={last})"
        )),
        "{}",
        show(&out)
    );
    for (i, r) in set_a.iter().enumerate() {
        assert!(
            read_range(&host.disk, *r) == a_before[i],
            "set A partition {} changed",
            i + 1
        );
    }
    assert!(
        std::fs::read(&host.disk).unwrap() == disk_before,
        "the disk changed"
    );

    // The same update on the untouched copy goes through.
    std::fs::copy(&control, &host.disk).unwrap();
    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(host.next_boot(), Some(signpost::SetName::B));
}
