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
//! And the real module: `grub-emu` (GRUB's emulator, built by the same script with our module
//! linked in) runs `gptprio.next` on disk image files:
//!
//! - 2 500 edge states of both sets (CI) and all 262 144 (`#[ignore]`, `scripts/bench.sh`):
//!   the same choice, variables and disk bytes as signpost;
//! - byte-identical disks after `signpost::boot_select` (what `signpost boot-select` runs), from
//!   a valid table and a corrupt primary, `sgdisk -v` clean;
//! - the module's own write sequence (logged by GRUB) cut after every sector: the next boot
//!   through the real module sees the old or the new table and agrees with signpost.
//!
//! The GRUB build comes from `ABOS_GRUB_DIR` or `scripts/build-grub.sh --print-dir`; without it
//! the tests skip (and fail under CI=true, where scripts/test.sh builds it first).

#![allow(clippy::print_stderr)] // the long runs report their figures

use signpost::{Disk, DiskState, Flags, NewPartition, PartitionSet, SetName, guids};
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
    disk_with(path, tag, 8 * MIB, 2048, 1024);
}

/// Sectors of [`tiny_disk`]: MBR, primary header and 32 entry sectors, six one-sector
/// partitions, backup entries and header (73), rounded up.
const TINY_SECTORS: u64 = 80;

/// The same layout with one-sector partitions on a 40 KiB disk (many disks per grub-emu run).
fn tiny_disk(path: &Path, tag: u8) {
    disk_with(path, tag, TINY_SECTORS * 512, 34, 1);
}

/// A disk of `len` bytes with A and B sets (partitions 1–6) of `part` sectors each from `first`.
fn disk_with(path: &Path, tag: u8, len: u64, first: u64, part: u64) {
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
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
                first_lba: first + part * i as u64,
                last_lba: first + part * i as u64 + part - 1,
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

// ------------------------------------------------------------ the real module, inside grub-emu
//
// `scripts/build-grub.sh` also builds `emu/grub-emu`: GRUB's kernel, script parser and our
// gptprio module (the same gptprio.c glue and gptprio_core.c as in core.img and BOOTX64.EFI)
// compiled as a Linux program. Disks are image files named in a device map; GRUB reads and
// writes them with grub_disk_read/grub_disk_write, as it does through int13 or EFI Block I/O.
// One grub-emu process runs a grub.cfg that calls `gptprio.next` on hd0, hd1, … and echoes
// the variables (one short line each: GRUB's console wraps at 80 columns), then `reboot` ends
// the process.

/// Disks per grub-emu process: GRUB's emu hostdisk has 256 device-map entries.
const EMU_SLOTS: usize = 256;

fn grub_emu(grub: &Path) -> PathBuf {
    let emu = grub.join("emu/grub-emu");
    assert!(
        emu.is_file(),
        "{} missing: rebuild with scripts/build-grub.sh",
        emu.display()
    );
    emu
}

/// What `gptprio.next hdN` did inside grub-emu.
#[derive(Debug, Clone, Default)]
struct EmuResult {
    /// GRUB's `$?` after the command (0: a set was chosen; 12: GRUB_ERR_UNKNOWN_DEVICE,
    /// nothing bootable).
    status: u32,
    set: String,
    tries_after: String,
    wrote: String,
    boot_dev: String,
    boot_uuid: String,
    root_uuid: String,
    hash_uuid: String,
    /// (byte offset, length) of each grub_disk_write, in order (`debug=gptprio`).
    writes: Vec<(u64, u64)>,
    /// Console lines for this disk (for failure messages).
    console: Vec<String>,
    /// The result line was seen.
    done: bool,
}

/// The console text without terminal escape sequences and carriage returns.
fn plain(console: &[u8]) -> String {
    let text = String::from_utf8_lossy(console);
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters final-letter
                for d in chars.by_ref() {
                    if d.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Runs one grub-emu process over `disks` (at most [`EMU_SLOTS`]) in `work`. Returns one
/// result per disk, in order.
fn run_emu(emu: &Path, work: &Path, disks: &[PathBuf]) -> Vec<EmuResult> {
    assert!(disks.len() <= EMU_SLOTS);
    let map: String = disks
        .iter()
        .enumerate()
        .map(|(i, d)| format!("(hd{i}) {}\n", d.display()))
        .collect();
    std::fs::write(work.join("device.map"), map).unwrap();
    let cfg_dir = work.join("cfg");
    std::fs::create_dir_all(&cfg_dir).unwrap();
    let list: Vec<String> = (0..disks.len()).map(|i| i.to_string()).collect();
    let cfg = format!(
        "set pager=0\n\
         set debug=gptprio\n\
         for i in {list}; do\n\
         \x20 for v in gptprio_set gptprio_tries_after gptprio_wrote boot_dev boot_uuid \
         gptprio_root_uuid gptprio_hash_uuid; do set $v=-; done\n\
         \x20 echo \"BEGIN $i\"\n\
         \x20 gptprio.next hd$i\n\
         \x20 set status=$?\n\
         \x20 echo \"U $i $boot_uuid\"\n\
         \x20 echo \"V $i $gptprio_root_uuid\"\n\
         \x20 echo \"W $i $gptprio_hash_uuid\"\n\
         \x20 echo \"R $i $status $gptprio_set $gptprio_tries_after $gptprio_wrote $boot_dev\"\n\
         done\n\
         echo END\n\
         reboot\n",
        list = list.join(" "),
    );
    std::fs::write(cfg_dir.join("grub.cfg"), cfg).unwrap();
    let out = Command::new(emu)
        .arg("--device-map")
        .arg(work.join("device.map"))
        .arg("--directory")
        .arg(&cfg_dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = plain(&out.stdout);
    assert!(
        out.status.success() && text.lines().any(|l| l == "END"),
        "grub-emu {}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        text
    );
    let mut results = vec![EmuResult::default(); disks.len()];
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some(i) = line.strip_prefix("BEGIN ") {
            current = Some(i.parse().unwrap());
            continue;
        }
        let Some(i) = current else { continue };
        let r = &mut results[i];
        r.console.push(line.to_string());
        let w: Vec<&str> = line.split(' ').collect();
        let mine = w.len() > 1 && w[1] == i.to_string();
        match w[0] {
            "U" | "V" | "W" if mine => {
                assert_eq!(w.len(), 3, "line {line:?}");
                let field = match w[0] {
                    "U" => &mut r.boot_uuid,
                    "V" => &mut r.root_uuid,
                    _ => &mut r.hash_uuid,
                };
                *field = w[2].into();
                continue;
            }
            "R" if mine => {
                assert_eq!(w.len(), 7, "result line {line:?}");
                r.status = w[2].parse().unwrap();
                r.set = w[3].into();
                r.tries_after = w[4].into();
                r.wrote = w[5].into();
                r.boot_dev = w[6].into();
                r.done = true;
                current = None;
                continue;
            }
            _ => {}
        }
        if line.contains("gptprio.c:") {
            // grub_dprintf: "commands/gptprio/gptprio.c:66: write OFFSET+LEN"
            let (_, spec) = line.split_once(" write ").expect("a write trace line");
            let (off, len) = spec.trim().split_once('+').unwrap();
            r.writes.push((off.parse().unwrap(), len.parse().unwrap()));
        }
    }
    for (i, r) in results.iter().enumerate() {
        assert!(r.done, "grub-emu printed no result for hd{i}:\n{text}");
    }
    results
}

/// A scratch directory for grub-emu's disks: on tmpfs (`/dev/shm`) when there is one with room
/// (at least 1 GiB: a container's default is 64 MiB), since GRUB's emu hostdisk `fsync`s each
/// disk it wrote when closing it (on a real disk that is ~10 ms per disk, 100 times the
/// module's own work). The tests put at most 4 × 256 disks of 40 KiB there at a time.
fn emu_scratch() -> tempfile::TempDir {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let roomy = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        f.len() > 3
            && f[1] == "/dev/shm"
            && f[2] == "tmpfs"
            && f[3].split(',').all(|o| {
                o.strip_prefix("size=")
                    .and_then(|v| v.strip_suffix('k'))
                    .and_then(|v| v.parse::<u64>().ok())
                    .is_none_or(|k| k >= 1 << 20)
            })
    });
    if roomy
        && let Ok(d) = tempfile::Builder::new()
            .prefix("abos-grub-emu-")
            .tempdir_in("/dev/shm")
    {
        return d;
    }
    test_support::tempdir()
}

/// Runs `job` over `items` in batches of [`EMU_SLOTS`], on up to 4 threads; each worker gets its
/// own directory under `dir` (its slot files are reused from batch to batch).
fn in_batches<T: Sync>(dir: &Path, items: &[T], job: impl Fn(&Path, usize, &[T]) + Sync) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let batches: Vec<&[T]> = items.chunks(EMU_SLOTS).collect();
    let next = AtomicUsize::new(0);
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
        .min(batches.len());
    std::thread::scope(|scope| {
        for w in 0..workers {
            let work = dir.join(format!("worker-{w}"));
            std::fs::create_dir_all(&work).unwrap();
            let (batches, next, job) = (&batches, &next, &job);
            scope.spawn(move || {
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(b) else { break };
                    job(&work, b * EMU_SLOTS, batch);
                }
            });
        }
    });
}

/// The image bytes of `template` with the flags of both sets set to `a` and `b` (both copies,
/// fresh CRCs), made with signpost's own table writer.
fn state_image(template: &Disk, bytes: &[u8], a: Flags, b: Flags) -> Vec<u8> {
    let plan = template
        .plan_state(&DiskState {
            a,
            b: Some(b),
            ever_booted: false,
        })
        .unwrap();
    let mut img = bytes.to_vec();
    plan.apply_prefix(&mut img, u64::MAX);
    img
}

/// Signpost's boot on the disk file `path` (its plan, the same one `signpost boot-select`
/// executes), and the disk bytes after it: `image` with the plan's writes applied.
fn signpost_boot(path: &Path, image: &[u8]) -> (Option<signpost::BootPlan>, Vec<u8>) {
    let disk = Disk::open_read_only(path).unwrap();
    let plan = signpost::plan_boot(&disk).unwrap();
    let mut after = image.to_vec();
    if let Some(w) = plan.as_ref().and_then(|p| p.writes.as_ref()) {
        w.apply_prefix(&mut after, u64::MAX);
    }
    (plan, after)
}

/// What signpost decides for one disk: the set, its partitions, tries_left after, whether it
/// writes.
struct Want<'a> {
    set: SetName,
    partitions: &'a PartitionSet,
    tries_after: u8,
    writes: bool,
}

impl<'a> Want<'a> {
    fn from_plan(plan: &'a Option<signpost::BootPlan>) -> Option<Want<'a>> {
        plan.as_ref().map(|p| Want {
            set: p.choice.set,
            partitions: &p.choice.partitions,
            tries_after: p.choice.tries_left_after,
            writes: p.writes.is_some(),
        })
    }
}

/// GRUB's result on disk `hd{slot}` against signpost's decision; `got` is the disk after GRUB,
/// `want` the disk after signpost.
fn check_emu(
    what: &str,
    slot: usize,
    r: &EmuResult,
    decision: Option<Want>,
    got: &[u8],
    want: &[u8],
) {
    let console = r.console.join("\n");
    match decision {
        None => assert_eq!(r.status, 12, "{what}: nothing bootable:\n{console}"),
        Some(c) => {
            assert_eq!(r.status, 0, "{what}: GRUB failed:\n{console}");
            assert_eq!(r.set, c.set.to_string(), "{what}: set\n{console}");
            assert_eq!(
                r.boot_dev,
                format!("hd{slot},gpt{}", c.partitions.boot.number),
                "{what}"
            );
            assert_eq!(r.boot_uuid, c.partitions.boot.unique_guid, "{what}");
            assert_eq!(r.root_uuid, c.partitions.root.unique_guid, "{what}");
            assert_eq!(r.hash_uuid, c.partitions.hash.unique_guid, "{what}");
            assert_eq!(r.tries_after, c.tries_after.to_string(), "{what}");
            let wrote = if c.writes { "1" } else { "0" };
            assert_eq!(r.wrote, wrote, "{what}: wrote\n{console}");
        }
    }
    if r.wrote != "1" {
        assert!(r.writes.is_empty(), "{what}: wrote {:?}", r.writes);
    }
    // The whole disk, byte for byte: MBR, both headers and entry arrays, partitions.
    if got != want {
        let first = got.iter().zip(want).position(|(x, y)| x != y);
        panic!("{what}: the disk after GRUB differs from signpost's at byte {first:?}\n{console}");
    }
}

/// CRC-32 (IEEE, reflected), the GPT checksum.
fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in bytes {
        c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Images of [`tiny_disk`] with given flags, made by patching the template's bytes: the
/// attribute words of BOOT-A and BOOT-B in both entry arrays, the array CRC and both header
/// CRCs. Signpost's own writer (`Disk::plan_state`) makes the same bytes but takes ~100 times
/// as long in a debug build; the test compares the two on a share of the states.
struct Patcher {
    template: Vec<u8>,
}

impl Patcher {
    fn image(&self, a: Flags, b: Flags) -> Vec<u8> {
        let mut img = self.template.clone();
        let last = (TINY_SECTORS - 1) as usize;
        let arrays = [2 * 512, (last - 32) * 512];
        for base in arrays {
            for (entry, f) in [(0usize, a), (3, b)] {
                let at = base + entry * 128 + 48;
                let word = u64::from_le_bytes(img[at..at + 8].try_into().unwrap());
                img[at..at + 8].copy_from_slice(&signpost::attrs::encode(word, f).to_le_bytes());
            }
        }
        let array_crc = crc32(&img[arrays[0]..arrays[0] + 128 * 128]);
        for header in [512, last * 512] {
            img[header + 88..header + 92].copy_from_slice(&array_crc.to_le_bytes());
            img[header + 16..header + 20].fill(0);
            let crc = crc32(&img[header..header + 92]);
            img[header + 16..header + 20].copy_from_slice(&crc.to_le_bytes());
        }
        img
    }
}

/// The 512 flag values of one set (priority × tries_left × successful).
fn one_set_states() -> Vec<Flags> {
    let mut one = Vec::new();
    for p in 0..16 {
        for t in 0..16 {
            for s in [false, true] {
                one.push(flags(p, t, s));
            }
        }
    }
    one
}

/// Runs the real module in grub-emu over `states` on [`tiny_disk`]s and checks each against
/// signpost: the choice from signpost's rule (`state::boot_decision`) for every state, and
/// for every `oracle_every`-th state also the image and the boot made by signpost's own
/// table code on the file. Returns the counts (A decremented, B decremented, chosen without a
/// write, nothing bootable).
fn emu_against_signpost(grub: &Path, states: &[(Flags, Flags)], oracle_every: usize) -> [usize; 4] {
    let emu = grub_emu(grub);
    let dir = emu_scratch();
    let template = dir.path().join("template.img");
    tiny_disk(&template, 1);
    let tdisk = Disk::open_read_only(&template).unwrap();
    let patcher = Patcher {
        template: std::fs::read(&template).unwrap(),
    };
    let outcomes = std::sync::Mutex::new([0usize; 4]);
    in_batches(dir.path(), states, |work, first, batch| {
        let mut disks = Vec::new();
        let mut expected = Vec::new();
        for (k, &(a, b)) in batch.iter().enumerate() {
            let n = first + k;
            let what = format!("state #{n} A {a} / B {b}");
            let slot = work.join(format!("slot-{k}.img"));
            let img = patcher.image(a, b);
            std::fs::write(&slot, &img).unwrap();
            let before = DiskState {
                a,
                b: Some(b),
                ever_booted: false,
            };
            let decision = signpost::state::boot_decision(&before);
            let after = match &decision {
                Some((_, after)) if *after != before => patcher.image(after.a, after.b.unwrap()),
                _ => img.clone(),
            };
            if n % oracle_every == 0 {
                assert!(
                    img == state_image(&tdisk, &patcher.template, a, b),
                    "{what}: patched image"
                );
                let (plan, want) = signpost_boot(&slot, &img);
                assert!(want == after, "{what}: signpost boots to other bytes");
                assert_eq!(plan.map(|p| (p.choice.set, p.after)), decision, "{what}");
            }
            expected.push((decision, before, after));
            disks.push(slot);
        }
        let results = run_emu(&emu, work, &disks);
        let sets = [
            tdisk.set(SetName::A).unwrap(),
            tdisk.set(SetName::B).unwrap(),
        ];
        let mut counts = [0usize; 4];
        for (k, (r, (decision, before, want))) in results.iter().zip(&expected).enumerate() {
            let (a, b) = batch[k];
            let got = std::fs::read(&disks[k]).unwrap();
            let what = format!("state #{} A {a} / B {b}", first + k);
            let w = decision.as_ref().map(|(set, after)| Want {
                set: *set,
                partitions: &sets[set.index()],
                tries_after: after.get(*set).unwrap().tries_left,
                writes: after != before,
            });
            counts[match &w {
                None => 3,
                Some(w) if !w.writes => 2,
                Some(w) => w.set.index(),
            }] += 1;
            check_emu(&what, k, r, w, &got, want);
        }
        let mut all = outcomes.lock().unwrap();
        for (t, c) in all.iter_mut().zip(counts) {
            *t += c;
        }
    });
    let counts = *outcomes.lock().unwrap();
    assert_eq!(counts.iter().sum::<usize>(), states.len());
    counts
}

/// Every pair of `values` as (A, B).
fn pairs(values: &[Flags]) -> Vec<(Flags, Flags)> {
    values
        .iter()
        .flat_map(|&a| values.iter().map(move |&b| (a, b)))
        .collect()
}

/// CI's share of the states: every field at its edge values (priority and tries_left 0, 1,
/// 2, 14, 15; successful both) for both sets: 2 500 states, each also against signpost's own
/// table code. The long run (`every_state_in_grub_emu`) takes all 262 144.
#[test]
fn the_real_module_in_grub_emu_agrees_with_signpost_on_the_edge_states() {
    let Some(grub) = grub_dir() else { return };
    let edges = [0, 1, 2, 14, 15];
    let one: Vec<Flags> = one_set_states()
        .into_iter()
        .filter(|f| edges.contains(&f.priority) && edges.contains(&f.tries_left))
        .collect();
    let states = pairs(&one);
    let started = std::time::Instant::now();
    let [a, b, kept, none] = emu_against_signpost(&grub, &states, 1);
    eprintln!(
        "grub-emu: {} states in {:.1} s (A decremented {a}, B decremented {b}, chosen without a \
         write {kept}, nothing bootable {none})",
        states.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        [a, b, kept, none].iter().all(|&c| c > 100),
        "{a} {b} {kept} {none}"
    );
}

/// All 262 144 priority × tries_left × successful states of both sets through the real module
/// in grub-emu, each against signpost's rule and the bytes of signpost's table for the flags it
/// decides; one state in 64 also against signpost's own table code on the file. Long run:
/// `scripts/bench.sh` (or `cargo test -p os-image --test grub -- --ignored every_state`).
#[test]
#[ignore = "long run (262 144 states): scripts/bench.sh"]
fn every_state_in_grub_emu() {
    let Some(grub) = grub_dir() else { return };
    let states = pairs(&one_set_states());
    let started = std::time::Instant::now();
    let [a, b, kept, none] = emu_against_signpost(&grub, &states, 64);
    eprintln!(
        "grub-emu: {} states in {:.1} s (A decremented {a}, B decremented {b}, chosen without a \
         write {kept}, nothing bootable {none})",
        states.len(),
        started.elapsed().as_secs_f64()
    );
    assert_eq!(states.len(), 512 * 512);
    assert!(
        [a, b, kept, none].iter().all(|&c| c > 1000),
        "{a} {b} {kept} {none}"
    );
}

/// The real module against `signpost boot-select`'s durable path (`signpost::boot_select`,
/// which the command runs) on 8 MiB disks: the branch states, from a valid table and from one
/// whose primary header is corrupt; the disks byte-identical afterwards and `sgdisk -v` clean.
#[test]
fn the_real_module_writes_the_same_bytes_as_signpost_boot_select() {
    let Some(grub) = grub_dir() else { return };
    if !test_support::require_tool("sgdisk") {
        return;
    }
    let emu = grub_emu(&grub);
    // 8 MiB disks: a regular directory (20 fsyncs by grub-emu at most).
    let dir = test_support::tempdir();
    let mut cases = Vec::new();
    for corrupt_primary in [false, true] {
        for (i, (a, b)) in sample_states().into_iter().enumerate() {
            let n = cases.len();
            let base = dir.path().join(format!("base-{n}.img"));
            small_disk(&base, i as u8);
            set_state(&base, a, b);
            if corrupt_primary {
                let mut bytes = std::fs::read(&base).unwrap();
                bytes[512 + 40] ^= 0xff;
                std::fs::write(&base, bytes).unwrap();
            }
            let g = dir.path().join(format!("grub-{n}.img"));
            let s = dir.path().join(format!("signpost-{n}.img"));
            std::fs::copy(&base, &g).unwrap();
            std::fs::copy(&base, &s).unwrap();
            let what = format!("state A {a} / B {b}, corrupt primary {corrupt_primary}");
            cases.push((what, base, g, s));
        }
    }
    let disks: Vec<PathBuf> = cases.iter().map(|c| c.2.clone()).collect();
    let results = run_emu(&emu, dir.path(), &disks);
    let mut wrote = 0;
    for (k, ((what, base, g, s), r)) in cases.iter().zip(&results).enumerate() {
        let mut disk = Disk::open(s).unwrap();
        let choice = signpost::boot_select(&mut disk).unwrap();
        drop(disk);
        let (before, theirs) = (std::fs::read(base).unwrap(), std::fs::read(s).unwrap());
        let want = choice.as_ref().map(|c| Want {
            set: c.set,
            partitions: &c.partitions,
            tries_after: c.tries_left_after,
            writes: theirs != before,
        });
        check_emu(what, k, r, want, &std::fs::read(g).unwrap(), &theirs);
        if r.wrote == "1" {
            wrote += 1;
            let out = Command::new("sgdisk").arg("-v").arg(g).output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("No problems found"),
                "{what}: sgdisk -v: {text}"
            );
        }
    }
    assert!(wrote >= 10, "{wrote} decrements");
}

/// signpost's decision on the disk file: (set, its tries_left before the boot).
fn decision_of(path: &Path) -> Option<(SetName, u8)> {
    let disk = Disk::open_read_only(path).unwrap();
    signpost::plan_boot(&disk)
        .unwrap()
        .map(|p| (p.choice.set, p.before.get(p.choice.set).unwrap().tries_left))
}

/// A power cut while the real module decrements tries_left: its write sequence, captured from
/// grub-emu (`debug=gptprio` prints each grub_disk_write; the data is what the disk holds
/// after it), is cut after every 512-byte sector, and the next boot — the real module again —
/// must see the old table or the new one, never a mixture: it makes the decision the old table
/// gives (the set chosen before the cut, its try not yet taken) or the one the new table gives,
/// so a set boots whenever the completed write would leave one bootable; and it does exactly
/// what signpost does on the same torn disk (choice and bytes written).
#[test]
fn a_power_cut_at_any_sector_of_the_real_modules_write_leaves_the_set_bootable() {
    let Some(grub) = grub_dir() else { return };
    let emu = grub_emu(&grub);
    let dir = emu_scratch();
    // 1. The write sequences of the branch states, from a valid table and a corrupt primary.
    let mut bases = Vec::new();
    for corrupt_primary in [false, true] {
        for (i, (a, b)) in sample_states().into_iter().enumerate() {
            let path = dir.path().join(format!("base-{}.img", bases.len()));
            tiny_disk(&path, i as u8);
            let tdisk = Disk::open_read_only(&path).unwrap();
            let mut img = state_image(&tdisk, &std::fs::read(&path).unwrap(), a, b);
            if corrupt_primary {
                img[512 + 40] ^= 0xff;
            }
            std::fs::write(&path, &img).unwrap();
            let what = format!("state A {a} / B {b}, corrupt primary {corrupt_primary}");
            bases.push((what, path, img, corrupt_primary));
        }
    }
    let disks: Vec<PathBuf> = bases.iter().map(|b| b.1.clone()).collect();
    let results = run_emu(&emu, dir.path(), &disks);
    let last = TINY_SECTORS * 512 - 512;
    let array = 128 * 128;
    let mut cuts = Vec::new();
    let mut sequences = 0;
    for ((what, path, before, corrupt_primary), r) in bases.iter().zip(&results) {
        if r.wrote != "1" {
            continue;
        }
        sequences += 1;
        let after = std::fs::read(path).unwrap();
        // The decisions on the old table (T0) and on the new one (T1): (set, tries_left before).
        let t0 = dir.path().join("t0.img");
        std::fs::write(&t0, before).unwrap();
        let (d0, d1) = (decision_of(&t0), decision_of(path));
        assert_eq!(
            d0.as_ref().map(|d| d.0.to_string()),
            Some(r.set.clone()),
            "{what}"
        );
        // The order promised: the copy the next reader does not use first, header before
        // entries within a copy.
        let backup = [(last, 512), (last - array, array)];
        let primary = [(512, 512), (1024, array)];
        let order: Vec<(u64, u64)> = if *corrupt_primary {
            primary.iter().chain(&backup).copied().collect()
        } else {
            backup.iter().chain(&primary).copied().collect()
        };
        assert_eq!(r.writes, order, "{what}: write sequence");
        // Every changed byte lies in a write.
        for (i, (x, y)) in before.iter().zip(&after).enumerate() {
            let i = i as u64;
            assert!(
                x == y || r.writes.iter().any(|&(o, l)| (o..o + l).contains(&i)),
                "{what}: byte {i} changed outside the logged writes"
            );
        }
        let total: u64 = r.writes.iter().map(|w| w.1).sum();
        for cut in (0..=total).step_by(512) {
            let mut img = before.clone();
            let mut left = cut;
            for &(o, l) in &r.writes {
                let n = left.min(l) as usize;
                let o = o as usize;
                img[o..o + n].copy_from_slice(&after[o..o + n]);
                left -= n as u64;
            }
            cuts.push((
                format!("{what}, cut after {cut} of {total} bytes"),
                img,
                d0,
                d1,
            ));
        }
    }
    assert!(sequences >= 10, "{sequences} write sequences");
    // 2. The next boot on every torn disk, through the real module again.
    let checked = std::sync::atomic::AtomicUsize::new(0);
    let bootable = std::sync::atomic::AtomicUsize::new(0);
    in_batches(dir.path(), &cuts, |work, _, batch| {
        let mut disks = Vec::new();
        let mut expected = Vec::new();
        for (k, (_, img, _, _)) in batch.iter().enumerate() {
            let slot = work.join(format!("cut-{k}.img"));
            std::fs::write(&slot, img).unwrap();
            expected.push(signpost_boot(&slot, img));
            disks.push(slot);
        }
        let results = run_emu(&emu, work, &disks);
        for (k, (r, (plan, want))) in results.iter().zip(&expected).enumerate() {
            let (what, _, d0, d1) = &batch[k];
            let decided = plan
                .as_ref()
                .map(|p| (p.choice.set, p.before.get(p.choice.set).unwrap().tries_left));
            assert!(
                decided == *d0 || decided == *d1,
                "{what}: {decided:?} is neither {d0:?} (old table) nor {d1:?} (new table)"
            );
            if d1.is_some() {
                assert!(decided.is_some(), "{what}: nothing bootable");
                bootable.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            let got = std::fs::read(&disks[k]).unwrap();
            check_emu(what, k, r, Want::from_plan(plan), &got, want);
            if r.wrote == "1" {
                let disk = Disk::open_read_only(&disks[k]).unwrap();
                assert!(
                    disk.table().is_clean(),
                    "{what}: both copies valid and equal after the boot"
                );
            }
            checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    });
    let checked = checked.into_inner();
    assert_eq!(checked, cuts.len());
    let bootable = bootable.into_inner();
    eprintln!(
        "{sequences} write sequences, {checked} torn disks through the real module, {bootable} \
         of them must boot (the completed write leaves a bootable set) and did"
    );
    assert!(bootable > 500, "{bootable} bootable cuts");
}
