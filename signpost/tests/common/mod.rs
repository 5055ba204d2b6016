//! Shared helpers for signpost's integration tests: Bottlerocket-layout disk images made by
//! `sgdisk` and by our own `write_new_table`, and `sfdisk --json` / `sgdisk -v` as independent
//! oracles.
#![allow(dead_code)]

use signpost::{NewPartition, guids};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const MIB: u64 = 1024 * 1024;

/// Attribute bits that are not ours, set on purpose to prove they survive every write.
pub const NOISE_BOOT_A: u64 = 1 << 2; // legacy BIOS bootable
pub const NOISE_ROOT_A: u64 = 1 << 60; // read-only
pub const NOISE_BOOT_B: u64 = 1 << 63; // no-automount
pub const NOISE_PRIVATE: u64 = 1 << 0; // required partition

/// Fresh-image flags: BOOT-A priority 1 + successful (bits 48, 56).
pub const FRESH_A: u64 = (1 << 48) | (1 << 56);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sets {
    Single,
    Dual,
}

/// One partition of the test layout: (label, type GUID text, initial attributes).
pub fn layout(sets: Sets) -> Vec<(&'static str, &'static str, u64)> {
    let mut v = vec![
        ("BIOS-BOOT", guids::BIOS_BOOT, 0),
        ("EFI-SYSTEM", guids::EFI_SYSTEM, 0),
        ("BOTTLEROCKET-BOOT-A", guids::BOOT, FRESH_A | NOISE_BOOT_A),
        ("BOTTLEROCKET-ROOT-A", guids::ROOT, NOISE_ROOT_A),
        ("BOTTLEROCKET-HASH-A", guids::HASH, 0),
        ("BOTTLEROCKET-RESERVED-A", guids::RESERVED, 0),
    ];
    if sets == Sets::Dual {
        v.extend([
            ("EFI-BACKUP", guids::EFI_BACKUP, 0),
            ("BOTTLEROCKET-BOOT-B", guids::BOOT, NOISE_BOOT_B),
            ("BOTTLEROCKET-ROOT-B", guids::ROOT, 0),
            ("BOTTLEROCKET-HASH-B", guids::HASH, 0),
            ("BOTTLEROCKET-RESERVED-B", guids::RESERVED, 0),
        ]);
    }
    v.push(("BOTTLEROCKET-PRIVATE", guids::PRIVATE, NOISE_PRIVATE));
    v.push(("", guids::DATA, 0));
    v
}

/// Partition numbers of the test layout.
pub struct Numbers {
    pub boot_a: u32,
    pub boot_b: Option<u32>,
    pub private: u32,
}

pub fn numbers(sets: Sets) -> Numbers {
    match sets {
        Sets::Dual => Numbers {
            boot_a: 3,
            boot_b: Some(8),
            private: 12,
        },
        Sets::Single => Numbers {
            boot_a: 3,
            boot_b: None,
            private: 7,
        },
    }
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A sparse file of `len` bytes.
pub fn sparse(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    f.set_len(len).unwrap();
    path
}

/// A Bottlerocket-layout image (1 MiB partitions starting at 1 MiB) made by sgdisk, with real
/// content in every set ([`fill_sets`]: transitions refuse to make a never-written set
/// bootable; tests of that call [`blank_set`]).
pub fn sgdisk_image(dir: &Path, sets: Sets) -> PathBuf {
    let path = sparse(dir, "sgdisk.img", 16 * MIB);
    sgdisk_layout(&path, sets);
    fill_sets(&path);
    path
}

/// Writes the test layout with sgdisk onto an existing file or device.
pub fn sgdisk_layout(path: &Path, sets: Sets) {
    let mut cmd = Command::new("sgdisk");
    cmd.arg("-o");
    for (i, (label, ty, attrs)) in layout(sets).iter().enumerate() {
        let n = i + 1;
        let start = if n == 1 {
            "1M".to_string()
        } else {
            "0".to_string()
        };
        cmd.arg(format!("-n={n}:{start}:+1M"))
            .arg(format!("-t={n}:{ty}"));
        if !label.is_empty() {
            cmd.arg(format!("-c={n}:{label}"));
        }
        for bit in 0..64 {
            if attrs & (1 << bit) != 0 {
                cmd.arg(format!("-A={n}:set:{bit}"));
            }
        }
    }
    cmd.arg(path);
    run(&mut cmd);
}

/// The same layout written by `signpost::write_new_table`, with content as in [`sgdisk_image`].
pub fn native_image(dir: &Path, sets: Sets, sector_size: u64) -> PathBuf {
    let path = sparse(dir, &format!("native-{sector_size}.img"), 16 * MIB);
    native_layout(&path, sets, sector_size);
    fill_sets(&path);
    path
}

/// Writes the test layout with `signpost::write_new_table` onto an existing file or device.
pub fn native_layout(path: &Path, sets: Sets, sector_size: u64) {
    let per_mib = MIB / sector_size;
    let parts: Vec<NewPartition> = layout(sets)
        .iter()
        .enumerate()
        .map(|(i, (label, ty, attrs))| {
            let first = (i as u64 + 1) * per_mib;
            let mut unique = [0u8; 16];
            unique[0] = i as u8 + 1;
            unique[6] = 0x40; // version 4
            unique[8] = 0x80;
            unique[15] = 0x5a;
            NewPartition {
                type_guid: guids::to_bytes(ty),
                label: label.to_string(),
                first_lba: first,
                last_lba: first + per_mib - 1,
                attributes: *attrs,
                unique_guid: unique,
            }
        })
        .collect();
    signpost::write_new_table(path, sector_size, [0x11; 16], &parts).unwrap();
}

/// `sgdisk -v` must find no problems.
pub fn assert_sgdisk_clean(path: &Path) {
    let out = run(Command::new("sgdisk").arg("-v").arg(path));
    assert!(
        out.contains("No problems found"),
        "sgdisk -v {}:\n{out}",
        path.display()
    );
}

/// Parses sfdisk's `attrs` text ("RequiredPartition LegacyBIOSBootable GUID:48,56").
pub fn parse_sfdisk_attrs(text: &str) -> u64 {
    let mut bits = 0u64;
    for word in text.split_whitespace() {
        match word {
            "RequiredPartition" => bits |= 1,
            "NoBlockIOProtocol" => bits |= 1 << 1,
            "LegacyBIOSBootable" => bits |= 1 << 2,
            w if w.starts_with("GUID:") => {
                for n in w["GUID:".len()..].split(',') {
                    bits |= 1 << n.parse::<u32>().unwrap();
                }
            }
            other => panic!("unknown sfdisk attribute {other:?}"),
        }
    }
    bits
}

/// `sfdisk --json` partitions keyed by number, and each one's attribute word.
pub fn sfdisk(path: &Path) -> (BTreeMap<u32, serde_json::Value>, BTreeMap<u32, u64>) {
    let out = run(Command::new("sfdisk").arg("--json").arg(path));
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let mut parts = BTreeMap::new();
    let mut attrs = BTreeMap::new();
    let node_prefix = path.to_string_lossy().to_string();
    for p in v["partitiontable"]["partitions"].as_array().unwrap() {
        let node = p["node"].as_str().unwrap();
        let n: u32 = node[node_prefix.len()..]
            .trim_start_matches('p')
            .parse()
            .unwrap();
        attrs.insert(
            n,
            p.get("attrs")
                .and_then(|a| a.as_str())
                .map(parse_sfdisk_attrs)
                .unwrap_or(0),
        );
        parts.insert(n, p.clone());
    }
    (parts, attrs)
}

/// Asserts that, between two sfdisk snapshots, nothing changed except the attribute words
/// listed in `expected` (which must equal those values exactly).
pub fn assert_only_attrs(
    before: &(BTreeMap<u32, serde_json::Value>, BTreeMap<u32, u64>),
    after: &(BTreeMap<u32, serde_json::Value>, BTreeMap<u32, u64>),
    expected: &BTreeMap<u32, u64>,
) {
    assert_eq!(
        before.0.keys().collect::<Vec<_>>(),
        after.0.keys().collect::<Vec<_>>()
    );
    for (n, b) in &before.0 {
        let a = &after.0[n];
        let strip = |v: &serde_json::Value| {
            let mut v = v.clone();
            v.as_object_mut().unwrap().remove("attrs");
            v.as_object_mut().unwrap().remove("node");
            v
        };
        assert_eq!(
            strip(b),
            strip(a),
            "partition {n} changed beyond its attributes"
        );
        let want = expected.get(n).copied().unwrap_or(before.1[n]);
        assert_eq!(
            after.1[n], want,
            "partition {n}: attrs {:#018x}, want {want:#018x}",
            after.1[n]
        );
    }
}

/// Writes real content into every set of the image: an ext4 made by `mkfs.ext4` into BOOT, a
/// deterministic ROOT, and its dm-verity tree (superblock first, our `dm-verity` crate, which
/// is byte-identical to `veritysetup format`) into HASH. Transitions refuse to make a set
/// bootable that holds none of this (a never-written set).
pub fn fill_sets(path: &Path) {
    let sets = signpost::Disk::open_read_only(path)
        .unwrap()
        .sets()
        .to_vec();
    for set in &sets {
        fill_set(path, set);
    }
}

/// [`fill_sets`] for one set.
pub fn fill_set(path: &Path, set: &signpost::PartitionSet) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let boot = dir.path().join("boot.ext4");
    let size = set.boot.len_bytes.min(2 * MIB);
    std::fs::File::create(&boot).unwrap().set_len(size).unwrap();
    run(Command::new("mkfs.ext4")
        .args(["-q", "-F", "-O", "^has_journal", "-E", "root_owner=0:0"])
        .arg(&boot));
    f.write_all_at(&std::fs::read(&boot).unwrap(), set.boot.first_byte)
        .unwrap();
    let root_len = (set.root.len_bytes.min(MIB) / 4096) * 4096;
    let root: Vec<u8> = (0..root_len)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ set.name.letter().as_bytes()[0])
        .collect();
    f.write_all_at(&root, set.root.first_byte).unwrap();
    let mut hash = Vec::new();
    dm_verity::build(&mut &root[..], root_len, b"signpost-test-salt", &mut hash).unwrap();
    assert!(hash.len() as u64 <= set.hash.len_bytes);
    f.write_all_at(&hash, set.hash.first_byte).unwrap();
    f.sync_all().unwrap();
}

/// Zeroes the first MiB of each partition of `set` (a never-written set).
pub fn blank_set(path: &Path, set: &signpost::PartitionSet) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    for p in [&set.boot, &set.root, &set.hash] {
        f.write_all_at(&vec![0u8; p.len_bytes.min(MIB) as usize], p.first_byte)
            .unwrap();
    }
    f.sync_all().unwrap();
}

/// CRC32 (IEEE 802.3, reflected), as GPT uses; written here so the tests do not trust the code
/// under test to repair a CRC.
pub fn crc32(bytes: &[u8]) -> u32 {
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

/// Little-endian u64 at `off`.
pub fn le64(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap())
}

/// Little-endian u32 at `off`.
pub fn le32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap())
}

/// Edits both GPT copies of an image in place: `edit_header` gets each 92-byte header region
/// (copy 0 = primary, 1 = backup) and `edit_entries` each entry array; then the entry-array
/// CRC and the header CRC of each copy are recomputed, so the result passes every CRC check.
pub fn edit_table(
    path: &Path,
    ss: u64,
    mut edit_header: impl FnMut(usize, &mut [u8]),
    mut edit_entries: impl FnMut(usize, &mut [u8]),
) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let len = f.metadata().unwrap().len();
    for (copy, lba) in [1, len / ss - 1].into_iter().enumerate() {
        let mut header = vec![0u8; ss as usize];
        f.read_exact_at(&mut header, lba * ss).unwrap();
        assert_eq!(&header[..8], b"EFI PART", "copy {copy}");
        let entries_lba = le64(&header, 72);
        let count = le32(&header, 80) as usize;
        let size = le32(&header, 84) as usize;
        let mut array = vec![0u8; count * size];
        f.read_exact_at(&mut array, entries_lba * ss).unwrap();
        edit_entries(copy, &mut array);
        edit_header(copy, &mut header[..92]);
        let array_crc = crc32(&array);
        header[88..92].copy_from_slice(&array_crc.to_le_bytes());
        header[16..20].fill(0);
        let header_size = le32(&header, 12) as usize;
        let header_crc = crc32(&header[..header_size]);
        header[16..20].copy_from_slice(&header_crc.to_le_bytes());
        f.write_all_at(&array, entries_lba * ss).unwrap();
        f.write_all_at(&header, lba * ss).unwrap();
    }
    f.sync_all().unwrap();
}

/// Sets entry `number`'s first and last sector in both copies (CRCs repaired).
pub fn set_entry_range(path: &Path, ss: u64, number: u32, first: u64, last: u64) {
    let off = (number as usize - 1) * 128;
    edit_table(
        path,
        ss,
        |_, _| {},
        |_, a| {
            a[off + 32..off + 40].copy_from_slice(&first.to_le_bytes());
            a[off + 40..off + 48].copy_from_slice(&last.to_le_bytes());
        },
    );
}

/// (first, last) sector of entry `number` in the primary copy.
pub fn entry_range(path: &Path, ss: u64, number: u32) -> (u64, u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let mut header = vec![0u8; ss as usize];
    f.read_exact_at(&mut header, ss).unwrap();
    let mut e = [0u8; 128];
    f.read_exact_at(
        &mut e,
        le64(&header, 72) * ss + (u64::from(number) - 1) * 128,
    )
    .unwrap();
    (le64(&e, 32), le64(&e, 40))
}

/// Both GPT regions of an image (the first and last `edge` bytes), to compare whole tables.
pub fn gpt_regions(path: &Path, edge: u64) -> (Vec<u8>, Vec<u8>) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len();
    let mut head = vec![0u8; edge as usize];
    let mut tail = vec![0u8; edge.min(len) as usize];
    f.read_exact_at(&mut head, 0).unwrap();
    let tail_off = len - tail.len() as u64;
    f.read_exact_at(&mut tail, tail_off).unwrap();
    (head, tail)
}
