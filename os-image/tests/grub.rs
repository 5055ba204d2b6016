//! One rule, two implementations: our GRUB module's core (`bootloader/gptprio/gptprio_core.c`,
//! compiled for the host by `scripts/build-grub.sh` as `gptprio-host`) against signpost's
//! `boot-select`, on real GPT files.
//!
//! - every priority/tries/successful state of both sets (262 144): the same choice and the same
//!   flags written;
//! - on files: the same choice and byte-identical tables after the write (both copies), from a
//!   valid table and from one whose primary is corrupt;
//! - the decrement's write sequence cut at every 512-byte sector: the next boot (ours and
//!   signpost's) still finds the set chosen before the cut;
//! - an image built by `os-image build --bootloader` carries boot.img, core.img and a FAT
//!   EFI-SYSTEM with `EFI/BOOT/BOOTX64.EFI`.
//!
//! The GRUB build comes from `ABOS_GRUB_DIR` or `scripts/build-grub.sh --print-dir`; without it
//! the tests skip (and fail under CI=true, where scripts/test.sh builds it first).

use signpost::{Disk, DiskState, Flags, NewPartition, guids};
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The GRUB build directory, or `None` after recording a skip (a panic under CI).
fn grub_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("ABOS_GRUB_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(d));
    }
    let out = Command::new(repo().join("scripts/build-grub.sh"))
        .arg("--print-dir")
        .output()
        .expect("run scripts/build-grub.sh --print-dir");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if out.status.success() {
        return Some(dir);
    }
    let reason = format!(
        "no GRUB build at {} (run scripts/build-grub.sh)",
        dir.display()
    );
    if test_support::in_ci() {
        panic!("{reason}; CI builds it in scripts/test.sh");
    }
    test_support::skip(&reason);
    None
}

fn host(grub: &Path) -> PathBuf {
    grub.join("bin/gptprio-host")
}

const MIB: u64 = 1024 * 1024;

/// An 8 MiB disk with a fresh table: BOOT/ROOT/HASH for A and B (partitions 1–6), the unique
/// GUIDs derived from `tag`.
fn small_disk(path: &Path, tag: u8) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(8 * MIB).unwrap();
    drop(f);
    let kinds = [
        (guids::BOOT, "BOTTLEROCKET-BOOT-A"),
        (guids::ROOT, "BOTTLEROCKET-ROOT-A"),
        (guids::HASH, "BOTTLEROCKET-HASH-A"),
        (guids::BOOT, "BOTTLEROCKET-BOOT-B"),
        (guids::ROOT, "BOTTLEROCKET-ROOT-B"),
        (guids::HASH, "BOTTLEROCKET-HASH-B"),
    ];
    let parts: Vec<NewPartition> = kinds
        .iter()
        .enumerate()
        .map(|(i, (t, label))| {
            let mut unique = [0x5au8; 16];
            unique[0] = tag;
            unique[15] = i as u8 + 1;
            NewPartition {
                type_guid: guids::to_bytes(t),
                label: label.to_string(),
                first_lba: 2048 + 1024 * i as u64,
                last_lba: 2048 + 1024 * i as u64 + 1023,
                attributes: 0,
                unique_guid: unique,
            }
        })
        .collect();
    let mut disk_guid = [0x11u8; 16];
    disk_guid[0] = tag;
    signpost::write_new_table(path, 512, disk_guid, &parts).unwrap();
}

fn flags(p: u8, t: u8, s: bool) -> Flags {
    Flags {
        priority: p,
        tries_left: t,
        successful: s,
    }
}

fn set_state(path: &Path, a: Flags, b: Flags) {
    let mut disk = Disk::open(path).unwrap();
    disk.write_state(&DiskState {
        a,
        b: Some(b),
        ever_booted: false,
    })
    .unwrap();
}

/// `gptprio-host next`: (exit code, stdout).
fn ours(grub: &Path, image: &Path, extra: &[&str]) -> (i32, String) {
    let out = Command::new(host(grub))
        .arg("next")
        .arg(image)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .unwrap_or_else(|| panic!("no {key}= in {line:?}"))
}

fn tables(path: &Path) -> (Vec<u8>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = bytes.len();
    (bytes[..34 * 512].to_vec(), bytes[n - 33 * 512..].to_vec())
}

#[test]
fn every_flag_state_of_both_sets_gives_the_same_choice_and_writes() {
    let Some(grub) = grub_dir() else { return };
    let dir = test_support::tempdir();
    let img = dir.path().join("disk.img");
    small_disk(&img, 1);
    let out = Command::new(host(&grub))
        .arg("table")
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut n = 0;
    let mut chosen = [0usize; 3];
    for line in text.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        let num = |i: usize| w[i].parse::<u8>().unwrap();
        let a = flags(num(0), num(1), num(2) == 1);
        let b = flags(num(3), num(4), num(5) == 1);
        let state = DiskState {
            a,
            b: Some(b),
            ever_booted: false,
        };
        let want = signpost::state::boot_decision(&state);
        match (want, w[6]) {
            (None, "none") => chosen[2] += 1,
            (Some((set, after)), got) => {
                assert_eq!(got, set.to_string(), "state {line}");
                let a2 = after.a;
                let b2 = after.b.unwrap();
                let expect = format!(
                    "{} {} {} {} {} {}",
                    a2.tries_left,
                    b2.tries_left,
                    u8::from(a2.successful),
                    u8::from(b2.successful),
                    a2.priority,
                    b2.priority
                );
                assert_eq!(w[7..].join(" "), expect, "flags written for state {line}");
                chosen[set.index()] += 1;
            }
            (None, got) => panic!("state {line}: signpost chooses nothing, gptprio says {got}"),
        }
        n += 1;
    }
    assert_eq!(n, 512 * 512, "every state");
    // The table is not degenerate: each outcome occurs often.
    assert!(chosen.iter().all(|&c| c > 1_000), "{chosen:?}");
}

/// States exercising each branch: decrement of A or B, successful without tries (no write),
/// ties, priority 0, nothing bootable.
fn sample_states() -> Vec<(Flags, Flags)> {
    vec![
        (flags(1, 0, true), flags(0, 0, false)),
        (flags(1, 0, true), flags(2, 1, false)),
        (flags(1, 0, true), flags(2, 0, false)),
        (flags(2, 1, false), flags(1, 0, true)),
        (flags(2, 15, true), flags(2, 3, false)),
        (flags(0, 5, true), flags(1, 1, false)),
        (flags(3, 0, false), flags(3, 2, true)),
        (flags(15, 15, false), flags(15, 15, true)),
        (flags(0, 0, false), flags(0, 0, false)),
        (flags(1, 0, false), flags(1, 0, false)),
    ]
}

#[test]
fn the_same_bytes_as_signpost_boot_select_on_disk_files() {
    let Some(grub) = grub_dir() else { return };
    let dir = test_support::tempdir();
    for corrupt_primary in [false, true] {
        for (i, (a, b)) in sample_states().into_iter().enumerate() {
            let base = dir.path().join(format!("base-{i}.img"));
            small_disk(&base, i as u8);
            set_state(&base, a, b);
            if corrupt_primary {
                // A damaged primary header: both readers must fall back to the backup.
                let mut bytes = std::fs::read(&base).unwrap();
                bytes[512 + 40] ^= 0xff;
                std::fs::write(&base, bytes).unwrap();
            }
            let g = dir.path().join(format!("grub-{i}.img"));
            let s = dir.path().join(format!("signpost-{i}.img"));
            std::fs::copy(&base, &g).unwrap();
            std::fs::copy(&base, &s).unwrap();
            let (code, line) = ours(&grub, &g, &[]);
            let mut disk = Disk::open(&s).unwrap();
            let choice = signpost::boot_select(&mut disk).unwrap();
            drop(disk);
            let what = format!("state A {a} / B {b}, corrupt primary {corrupt_primary}");
            match choice {
                None => {
                    assert_eq!(code, 7, "{what}: {line}");
                    assert_eq!(
                        std::fs::read(&g).unwrap(),
                        std::fs::read(&base).unwrap(),
                        "{what}: nothing written"
                    );
                }
                Some(c) => {
                    assert_eq!(code, 0, "{what}");
                    assert_eq!(field(&line, "set"), c.set.to_string(), "{what}");
                    assert_eq!(
                        field(&line, "boot_uuid"),
                        c.partitions.boot.unique_guid,
                        "{what}"
                    );
                    assert_eq!(
                        field(&line, "boot_part"),
                        c.partitions.boot.number.to_string()
                    );
                    assert_eq!(
                        field(&line, "root_uuid"),
                        c.partitions.root.unique_guid,
                        "{what}"
                    );
                    assert_eq!(
                        field(&line, "hash_uuid"),
                        c.partitions.hash.unique_guid,
                        "{what}"
                    );
                    assert_eq!(
                        field(&line, "tries_after"),
                        c.tries_left_after.to_string(),
                        "{what}"
                    );
                    assert_eq!(
                        field(&line, "from_backup"),
                        u8::from(corrupt_primary).to_string()
                    );
                    let wrote = field(&line, "wrote") == "1";
                    if wrote {
                        // Byte for byte: primary header + entries, backup entries + header.
                        assert_eq!(tables(&g), tables(&s), "{what}: tables differ");
                        let out = Command::new("sgdisk").arg("-v").arg(&g).output().unwrap();
                        let text = String::from_utf8_lossy(&out.stdout);
                        assert!(
                            text.contains("No problems found"),
                            "{what}: sgdisk -v: {text}"
                        );
                    } else {
                        assert_eq!(
                            std::fs::read(&g).unwrap(),
                            std::fs::read(&base).unwrap(),
                            "{what}: no decrement, nothing written"
                        );
                    }
                }
            }
        }
    }
}

/// A decision as (set, tries_left before it), `None` if nothing is bootable.
fn decision(code: i32, line: &str) -> Option<(String, u8)> {
    match code {
        0 => Some((
            field(line, "set").to_string(),
            field(line, "tries_before").parse().unwrap(),
        )),
        7 => None,
        other => panic!("gptprio-host exit {other}: {line}"),
    }
}

/// One write of the harness trace.
struct Write {
    offset: u64,
    bytes: Vec<u8>,
}

fn read_trace(path: &Path) -> Vec<Write> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| *l != "flush")
        .map(|l| {
            let mut w = l.split(' ');
            let offset = w.next().unwrap().parse().unwrap();
            let len: usize = w.next().unwrap().parse().unwrap();
            let hex = w.next().unwrap();
            let bytes: Vec<u8> = (0..len)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            Write { offset, bytes }
        })
        .collect()
}

#[test]
fn a_power_cut_at_any_sector_of_the_decrement_leaves_the_choice_bootable() {
    let Some(grub) = grub_dir() else { return };
    if !test_support::require_tool("sgdisk") {
        return;
    }
    let dir = test_support::tempdir();
    let mut cuts = 0;
    let mut bootable_cuts = 0;
    for corrupt_primary in [false, true] {
        for (i, (a, b)) in sample_states().into_iter().enumerate() {
            let base = dir.path().join(format!("base-{i}.img"));
            small_disk(&base, i as u8);
            set_state(&base, a, b);
            if corrupt_primary {
                let mut bytes = std::fs::read(&base).unwrap();
                bytes[512 + 40] ^= 0xff;
                std::fs::write(&base, bytes).unwrap();
            }
            let traced = dir.path().join("traced.img");
            std::fs::copy(&base, &traced).unwrap();
            let trace = dir.path().join("trace.txt");
            let (code, line) = ours(&grub, &traced, &["--trace", trace.to_str().unwrap()]);
            if code != 0 || field(&line, "wrote") != "1" {
                continue;
            }
            // T0's decision (from the untouched copy) and T1's (on the fully written disk).
            let (c0, l0) = ours(&grub, &base, &["--dry-run"]);
            let before = decision(c0, &l0);
            let (c1, l1) = ours(&grub, &traced, &["--dry-run"]);
            let after = decision(c1, &l1);
            assert_eq!(
                before.as_ref().map(|b| b.0.as_str()),
                Some(field(&line, "set"))
            );
            let writes = read_trace(&trace);
            // The order we promise: the copy not read first, header sector before entries.
            let last_sector = 8 * MIB - 512;
            let first = &writes[0];
            if corrupt_primary {
                assert_eq!(
                    first.offset, 512,
                    "primary header first when it was invalid"
                );
            } else {
                assert_eq!(first.offset, last_sector, "backup header first");
            }
            assert_eq!(writes.len(), 4);
            let total: usize = writes.iter().map(|w| w.bytes.len()).sum();
            // Apply every prefix cut on a 512-byte boundary of the sequence.
            let original = std::fs::read(&base).unwrap();
            for cut in (0..=total).step_by(512) {
                let mut img = original.clone();
                let mut left = cut;
                for w in &writes {
                    let n = left.min(w.bytes.len());
                    img[w.offset as usize..w.offset as usize + n].copy_from_slice(&w.bytes[..n]);
                    left -= n;
                }
                let cut_img = dir.path().join("cut.img");
                std::fs::write(&cut_img, &img).unwrap();
                let what = format!(
                    "state A {a} / B {b}, corrupt primary {corrupt_primary}, cut after {cut} of {total} bytes"
                );
                // The reader sees the old table or the new one, never a mixture: the next
                // decision is the one on T0 (the set chosen before the cut, its tries not yet
                // taken) or the one on T1 (the decrement done), and signpost agrees.
                let (code, next) = ours(&grub, &cut_img, &["--dry-run"]);
                let got = decision(code, &next);
                assert!(
                    got == before || got == after,
                    "{what}: {got:?} is neither {before:?} nor {after:?}"
                );
                let disk = Disk::open_read_only(&cut_img)
                    .unwrap_or_else(|e| panic!("{what}: signpost cannot read the disk: {e}"));
                let plan = signpost::plan_boot(&disk).unwrap();
                let theirs = plan.map(|p| {
                    (
                        p.choice.set.to_string(),
                        p.before.get(p.choice.set).unwrap().tries_left,
                    )
                });
                assert_eq!(got, theirs, "{what}: signpost decides differently");
                if got.is_some() {
                    bootable_cuts += 1;
                }
                cuts += 1;
            }
        }
    }
    assert!(cuts > 300, "{cuts} cuts checked");
    assert!(
        bootable_cuts > 200,
        "{bootable_cuts} of {cuts} cuts boot a set"
    );
}

#[test]
fn os_image_installs_grub_for_bios_and_uefi() {
    let Some(grub) = grub_dir() else { return };
    for tool in ["mkfs.ext4", "mkfs.vfat", "mcopy", "mdir", "lz4", "sgdisk"] {
        if !test_support::require_tool(tool) {
            return;
        }
    }
    let dir = test_support::tempdir();
    let rootfs = dir.path().join("rootfs");
    std::fs::create_dir_all(rootfs.join("etc")).unwrap();
    std::fs::write(rootfs.join("etc/hello"), "hi\n").unwrap();
    let out_dir = dir.path().join("out");
    let status = Command::new(env!("CARGO_BIN_EXE_os-image"))
        .args([
            "build",
            "--variant",
            "test",
            "--arch",
            "x86_64",
            "--version",
            "1.0.0",
        ])
        .args(["--build-id", "abc1234", "--small-layout"])
        .arg("--rootfs")
        .arg(&rootfs)
        .arg("--bootloader")
        .arg(&grub)
        .arg("--out")
        .arg(&out_dir)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .status()
        .unwrap();
    assert!(status.success());
    let image = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "img"))
        .expect("disk image");
    let bytes = std::fs::read(&image).unwrap();
    let boot_img = std::fs::read(grub.join("i386-pc/boot.img")).unwrap();
    let core_img = std::fs::read(grub.join("i386-pc/core.img")).unwrap();
    // MBR: GRUB's boot code, the protective partition table kept, core.img's LBA patched in.
    assert_eq!(&bytes[..0x5a][..3], &boot_img[..3]);
    assert_eq!(&bytes[0x68..0x1b8], &boot_img[0x68..0x1b8]);
    assert_eq!(bytes[0x1c2], 0xee, "protective MBR entry kept");
    let disk = Disk::open_read_only(&image).unwrap();
    let bios = disk
        .table()
        .entries()
        .iter()
        .position(|e| e.partition_type_guid == guids::to_bytes(guids::BIOS_BOOT))
        .expect("BIOS-BOOT");
    let bios_lba = disk.table().entries()[bios].starting_lba;
    assert_eq!(
        u64::from_le_bytes(bytes[0x5c..0x64].try_into().unwrap()),
        bios_lba
    );
    let core_at = (bios_lba * 512) as usize;
    assert_eq!(
        &bytes[core_at + 512..core_at + core_img.len()],
        &core_img[512..]
    );
    assert_eq!(
        u64::from_le_bytes(bytes[core_at + 500..core_at + 508].try_into().unwrap()),
        bios_lba + 1
    );
    let out = Command::new("sgdisk")
        .arg("-v")
        .arg(&image)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("No problems found"));
    // EFI-SYSTEM: FAT with the application.
    let efi = disk
        .table()
        .entries()
        .iter()
        .find(|e| e.partition_type_guid == guids::to_bytes(guids::EFI_SYSTEM))
        .expect("EFI-SYSTEM");
    let fat = dir.path().join("efi.fat");
    std::fs::write(
        &fat,
        &bytes[(efi.starting_lba * 512) as usize..((efi.ending_lba + 1) * 512) as usize],
    )
    .unwrap();
    let copy = dir.path().join("BOOTX64.EFI");
    let status = Command::new("mcopy")
        .arg("-i")
        .arg(&fat)
        .arg("::/EFI/BOOT/BOOTX64.EFI")
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(&copy).unwrap(),
        std::fs::read(grub.join("x86_64-efi/BOOTX64.EFI")).unwrap()
    );
}
