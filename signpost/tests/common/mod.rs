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

/// A Bottlerocket-layout image (1 MiB partitions starting at 1 MiB) made by sgdisk.
pub fn sgdisk_image(dir: &Path, sets: Sets) -> PathBuf {
    let path = sparse(dir, "sgdisk.img", 16 * MIB);
    sgdisk_layout(&path, sets);
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

/// The same layout written by `signpost::write_new_table`.
pub fn native_image(dir: &Path, sets: Sets, sector_size: u64) -> PathBuf {
    let path = sparse(dir, &format!("native-{sector_size}.img"), 16 * MIB);
    native_layout(&path, sets, sector_size);
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
