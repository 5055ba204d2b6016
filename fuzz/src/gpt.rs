//! The GPT reader target: structure-aware mutations that repair the CRCs, and the reader's
//! invariants checked by an independent oracle.

use crate::{Rng, Target};
use gptman::GPTPartitionEntry;
use signpost::gpt;
use std::io::Cursor;
use std::path::Path;

/// CRC32 (IEEE, reflected), written here so the fuzzer does not depend on the code under test
/// to repair checksums.
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

fn get64(b: &[u8], off: usize) -> u64 {
    b.get(off..off.saturating_add(8))
        .map_or(0, |s| u64::from_le_bytes(s.try_into().expect("8 bytes")))
}

fn get32(b: &[u8], off: usize) -> u32 {
    b.get(off..off.saturating_add(4))
        .map_or(0, |s| u32::from_le_bytes(s.try_into().expect("4 bytes")))
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(s) = b.get_mut(off..off.saturating_add(v.len())) {
        s.copy_from_slice(v);
    }
}

/// Encodes a disk image compactly for the corpus: `len N`, then one line per 512-byte chunk
/// that is not all zero: `<offset> <hex, trailing zeros trimmed>`.
pub fn encode_sparse(image: &[u8]) -> String {
    let mut out = format!("len {}\n", image.len());
    for (i, chunk) in image.chunks(512).enumerate() {
        let end = chunk.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
        if end == 0 {
            continue;
        }
        out.push_str(&format!("{} ", i * 512));
        for b in &chunk[..end] {
            out.push_str(&format!("{b:02x}"));
        }
        out.push('\n');
    }
    out
}

/// Decodes [`encode_sparse`]'s format (lines starting with `#` are comments).
pub fn decode_sparse(text: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(text);
    let mut image = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (a, b) = line.split_once(' ').expect("corpus line: `<offset> <hex>`");
        if a == "len" {
            image = vec![0u8; b.parse().expect("corpus length")];
            continue;
        }
        let off: usize = a.parse().expect("corpus offset");
        for (i, pair) in b.as_bytes().chunks(2).enumerate() {
            let s = std::str::from_utf8(pair).expect("hex");
            image[off + i] = u8::from_str_radix(s, 16).expect("hex byte");
        }
    }
    image
}

/// The sector size a mutated image was made with (signature at 512 or 4096).
fn sector_size(image: &[u8]) -> usize {
    if image.get(4096..4104) == Some(b"EFI PART") && image.get(512..520) != Some(b"EFI PART") {
        4096
    } else {
        512
    }
}

/// Byte offsets of the two header sectors (primary at sector 1, backup at the last sector).
fn header_offsets(image: &[u8], ss: usize) -> [usize; 2] {
    let last = (image.len() / ss).saturating_sub(1) * ss;
    [ss, last]
}

/// Recomputes the entry-array CRC and the header CRC of the copy whose header is at `h`, as
/// far as the header's fields allow (an array outside the image is left alone).
pub fn repair_crcs(image: &mut [u8], h: usize, ss: usize) {
    if image.len() < h + 92 {
        return;
    }
    let lba = get64(image, h + 72);
    let count = u64::from(get32(image, h + 80));
    let size = u64::from(get32(image, h + 84));
    let array_len = count.saturating_mul(size);
    if let Some(start) = lba.checked_mul(ss as u64)
        && array_len <= 4 << 20
        && let Some(end) = start.checked_add(array_len)
        && end <= image.len() as u64
    {
        let crc = crc32(&image[start as usize..end as usize]);
        put(image, h + 88, &crc.to_le_bytes());
    }
    let header_size = get32(image, h + 12) as usize;
    if (92..=ss).contains(&header_size) && h + header_size <= image.len() {
        put(image, h + 16, &[0; 4]);
        let crc = crc32(&image[h..h + header_size]);
        put(image, h + 16, &crc.to_le_bytes());
    }
}

/// An interesting sector number near `current` for a disk of `last + 1` sectors.
fn interesting_lba(rng: &mut Rng, current: u64, last: u64, others: &[u64]) -> u64 {
    match rng.below(12) {
        0 => 0,
        1 => current.wrapping_add(1),
        2 => current.wrapping_sub(1),
        3 => last,
        4 => last.wrapping_add(1 + rng.below(4)),
        5 => u64::MAX - rng.below(4),
        // Wraps to a small offset when multiplied by 512 or 4096.
        6 => (1u64 << (52 + rng.below(4))).wrapping_add(current),
        7 => 1u64 << rng.below(64),
        8 if !others.is_empty() => rng.pick(others).wrapping_add(rng.below(3)),
        9 => rng.below(last.saturating_add(8)),
        10 => current ^ (1 << rng.below(64)),
        _ => rng.next_u64(),
    }
}

/// Header fields: (offset, width).
const HEADER_FIELDS: [(usize, usize); 10] = [
    (8, 4),  // revision
    (12, 4), // header size
    (24, 8), // my LBA
    (32, 8), // alternate LBA
    (40, 8), // first usable
    (48, 8), // last usable
    (56, 8), // disk GUID (half)
    (72, 8), // entry array LBA
    (80, 4), // number of entries
    (84, 4), // entry size
];

/// One structure-aware mutation of both or one copy, then (usually) CRC repair.
pub fn mutate_gpt(rng: &mut Rng, image: &mut Vec<u8>) {
    let ss = sector_size(image);
    let heads = header_offsets(image, ss);
    let last = (image.len() / ss).saturating_sub(1) as u64;
    let copies: Vec<usize> = match rng.below(4) {
        0 => vec![heads[0]],
        1 => vec![heads[1]],
        _ => heads.to_vec(),
    };
    let kind = rng.below(10);
    // Decide the change once, apply it to each chosen copy (a hostile table is consistent).
    let mut plan_entry: Option<(usize, usize, Vec<u8>)> = None;
    let mut plan_header: Option<(usize, Vec<u8>)> = None;
    match kind {
        0..=1 => {
            let (off, width) = *rng.pick(&HEADER_FIELDS);
            let h = heads[0];
            let current = if width == 8 {
                get64(image, h + off)
            } else {
                u64::from(get32(image, h + off))
            };
            let v = match off {
                80 => *rng.pick(&[0, 1, 4, 127, 128, 129, 16384, 16385, u64::from(u32::MAX)]),
                84 => *rng.pick(&[0, 64, 127, 128, 256, u64::from(u32::MAX)]),
                12 => *rng.pick(&[0, 91, 92, 93, 512, 4096, 4097]),
                _ => interesting_lba(rng, current, last, &[]),
            };
            plan_header = Some((off, v.to_le_bytes()[..width].to_vec()));
        }
        2..=7 => {
            // Entry fields, mostly of used entries.
            let h = heads[0];
            let lba = get64(image, h + 72) as usize;
            let count = (get32(image, h + 80) as usize).min(256);
            let base = lba.saturating_mul(ss);
            let entry = |i: usize| base.saturating_add(i * 128);
            let used: Vec<usize> = (0..count)
                .filter(|&i| {
                    image
                        .get(entry(i)..entry(i).saturating_add(16))
                        .is_some_and(|t| t.iter().any(|b| *b != 0))
                })
                .collect();
            let i = if !used.is_empty() && rng.chance(85) {
                *rng.pick(&used)
            } else {
                rng.index(count.max(1))
            };
            let bounds: Vec<u64> = used
                .iter()
                .flat_map(|&j| {
                    [
                        get64(image, entry(j).saturating_add(32)),
                        get64(image, entry(j).saturating_add(40)),
                    ]
                })
                .collect();
            let e = entry(i);
            match rng.below(6) {
                0 | 1 => {
                    let field = if rng.chance(50) { 32 } else { 40 };
                    let v =
                        interesting_lba(rng, get64(image, e.saturating_add(field)), last, &bounds);
                    plan_entry = Some((i, field, v.to_le_bytes().to_vec()));
                }
                2 => {
                    // Make it a copy (range and all) of another used entry: an overlap.
                    if let Some(&j) = used.get(rng.index(used.len())) {
                        let src = entry(j);
                        let bytes = image
                            .get(src.saturating_add(32)..src.saturating_add(48))
                            .map(<[u8]>::to_vec);
                        if let Some(b) = bytes {
                            plan_entry = Some((i, 32, b));
                        }
                    }
                }
                3 => {
                    // Swap start and end (reversed), or shift the range by a little.
                    let (s, t) = (
                        get64(image, e.saturating_add(32)),
                        get64(image, e.saturating_add(40)),
                    );
                    let mut b = Vec::new();
                    if rng.chance(50) {
                        b.extend_from_slice(&t.to_le_bytes());
                        b.extend_from_slice(&s.to_le_bytes());
                    } else {
                        let d = rng.below(16);
                        b.extend_from_slice(&s.wrapping_add(d).to_le_bytes());
                        b.extend_from_slice(&t.wrapping_add(d).to_le_bytes());
                    }
                    plan_entry = Some((i, 32, b));
                }
                4 => {
                    // Type GUID: zero (unused), or another entry's type.
                    let v = if rng.chance(50) || used.is_empty() {
                        vec![0u8; 16]
                    } else {
                        let j = entry(*rng.pick(&used));
                        image
                            .get(j..j.saturating_add(16))
                            .map_or(vec![0; 16], <[u8]>::to_vec)
                    };
                    plan_entry = Some((i, 0, v));
                }
                _ => {
                    // Attributes or name bytes.
                    let field = if rng.chance(50) {
                        48
                    } else {
                        56 + rng.index(72)
                    };
                    let v =
                        rng.next_u64().to_le_bytes()[..if field == 48 { 8 } else { 1 }].to_vec();
                    plan_entry = Some((i, field, v));
                }
            }
        }
        8 => {
            // Truncate or extend the disk by some sectors.
            let sectors = image.len() / ss;
            let new = if rng.chance(70) {
                sectors.saturating_sub(1 + rng.index(sectors.max(1)))
            } else {
                sectors + 1 + rng.index(8)
            };
            image.resize(new.max(1) * ss, 0);
            return;
        }
        _ => {
            // A raw byte in a header or entry array, repaired or not.
            let h = *rng.pick(&copies);
            let region = if rng.chance(50) {
                h..h + 92
            } else {
                let lba = get64(image, h + 72) as usize;
                let start = lba.saturating_mul(ss);
                start..start.saturating_add(128 * 16)
            };
            if region.end <= image.len() && region.start < region.end {
                let i = region.start + rng.index(region.len());
                image[i] ^= 1 << rng.below(8);
            }
        }
    }
    for &h in &copies {
        if let Some((off, bytes)) = &plan_header {
            put(image, h + off, bytes);
        }
        if let Some((i, off, bytes)) = &plan_entry {
            let lba = get64(image, h + 72) as usize;
            let at = lba.saturating_mul(ss).saturating_add(i * 128 + off);
            put(image, at, bytes);
        }
        if rng.chance(92) {
            repair_crcs(image, h, ss);
        }
    }
}

/// The oracle: what an accepted table must satisfy, computed without signpost's checks.
fn assert_table_sane(table: &gpt::Table, disk_len: u64) {
    let h = table.header();
    let ss = table.sector_size;
    let disk_last = disk_len / ss - 1;
    assert!(
        h.first_usable_lba <= h.last_usable_lba && h.last_usable_lba < disk_last,
        "accepted usable range {}..={} on a disk of {} sectors",
        h.first_usable_lba,
        h.last_usable_lba,
        disk_last + 1
    );
    let used: Vec<(usize, &GPTPartitionEntry)> = table
        .entries()
        .iter()
        .enumerate()
        .filter(|(_, e)| e.is_used())
        .collect();
    for (i, e) in &used {
        assert!(
            e.starting_lba <= e.ending_lba
                && e.starting_lba >= h.first_usable_lba
                && e.ending_lba <= h.last_usable_lba,
            "accepted entry {} with sectors {}..={} outside {}..={}",
            i + 1,
            e.starting_lba,
            e.ending_lba,
            h.first_usable_lba,
            h.last_usable_lba
        );
        let end_byte = (e.ending_lba + 1).checked_mul(ss);
        assert!(
            end_byte.is_some_and(|b| b <= disk_len),
            "accepted entry {} beyond the disk",
            i + 1
        );
    }
    if used.len() <= 512 {
        for (a, (i, x)) in used.iter().enumerate() {
            for (j, y) in &used[a + 1..] {
                assert!(
                    x.ending_lba < y.starting_lba || y.ending_lba < x.starting_lba,
                    "accepted overlapping entries {} and {}",
                    i + 1,
                    j + 1
                );
            }
        }
    }
}

/// Runs the reader with one sector size; checks the invariants on acceptance.
fn check_with(image: &[u8], ss: u64) -> bool {
    let path = Path::new("fuzz.img");
    let len = image.len() as u64;
    let Ok(table) = gpt::read(&mut Cursor::new(image), path, ss, len) else {
        return false;
    };
    assert_table_sane(&table, len);
    if let Ok(sets) = signpost::find_sets(&table, path) {
        for s in &sets {
            for p in [&s.boot, &s.root, &s.hash] {
                assert!(
                    p.first_byte
                        .checked_add(p.len_bytes)
                        .is_some_and(|e| e <= len),
                    "set {} partition {} beyond the disk",
                    s.name,
                    p.number
                );
            }
        }
    }
    // A rewrite (new attributes on the first used entry) reads back as the same table.
    let first_used = table.entries().iter().position(|e| e.is_used());
    let changes: Vec<(usize, u64)> = first_used
        .map(|i| (i, table.entries()[i].attribute_bits ^ (1 << 50)))
        .into_iter()
        .collect();
    let new = table.with_attributes(&changes);
    if let Ok(plan) = new.write_plan(&table, path) {
        let mut copy = image.to_vec();
        plan.apply_prefix(&mut copy, u64::MAX);
        let back = gpt::read(&mut Cursor::new(&copy), path, ss, len)
            .unwrap_or_else(|e| panic!("table written from an accepted table is refused: {e}"));
        assert!(back.is_clean(), "rewritten table is not clean: {back:?}");
        assert_eq!(back.entries(), new.entries(), "rewritten entries differ");
        assert_eq!(
            (
                back.header().first_usable_lba,
                back.header().last_usable_lba
            ),
            (new.header().first_usable_lba, new.header().last_usable_lba)
        );
    }
    true
}

/// Checks one disk image with both sector sizes; returns whether either accepted it.
pub fn check_gpt(image: &[u8]) -> bool {
    let _ = gpt::probe_sector_size(&mut Cursor::new(image), image.len() as u64);
    let a = check_with(image, 512);
    let b = check_with(image, 4096);
    a || b
}

/// The GPT reader target.
#[derive(Debug)]
pub struct Gpt;

impl Target for Gpt {
    const NAME: &'static str = "gpt";

    fn decode(bytes: &[u8]) -> Vec<u8> {
        decode_sparse(bytes)
    }

    fn mutate(rng: &mut Rng, base: &[u8], _other: &[u8]) -> Vec<u8> {
        let mut image = base.to_vec();
        for _ in 0..1 + rng.below(3) {
            mutate_gpt(rng, &mut image);
        }
        image
    }

    fn check(input: &[u8]) -> bool {
        check_gpt(input)
    }
}

/// A small Bottlerocket-layout disk (1 or 2 sets, PRIVATE and DATA) written by
/// `signpost::write_new_table`: the seed of the GPT corpus.
pub fn seed_image(sector_size: u64, dual: bool) -> Vec<u8> {
    use signpost::guids;
    let mut roles = vec![
        ("BIOS-BOOT", guids::BIOS_BOOT, 0u64),
        ("EFI-SYSTEM", guids::EFI_SYSTEM, 0),
        ("BOTTLEROCKET-BOOT-A", guids::BOOT, (1 << 48) | (1 << 56)),
        ("BOTTLEROCKET-ROOT-A", guids::ROOT, 0),
        ("BOTTLEROCKET-HASH-A", guids::HASH, 0),
        ("BOTTLEROCKET-RESERVED-A", guids::RESERVED, 0),
    ];
    if dual {
        roles.extend([
            ("EFI-BACKUP", guids::EFI_BACKUP, 0),
            ("BOTTLEROCKET-BOOT-B", guids::BOOT, 0),
            ("BOTTLEROCKET-ROOT-B", guids::ROOT, 0),
            ("BOTTLEROCKET-HASH-B", guids::HASH, 0),
            ("BOTTLEROCKET-RESERVED-B", guids::RESERVED, 0),
        ]);
    }
    roles.push(("BOTTLEROCKET-PRIVATE", guids::PRIVATE, 0));
    roles.push(("", guids::DATA, 0));
    let array_sectors = 128 * 128 / sector_size;
    let first_usable = 2 + array_sectors;
    let per = 4096 / sector_size; // 4 KiB per partition
    let sectors = first_usable + per * roles.len() as u64 + array_sectors + 1;
    let parts: Vec<signpost::NewPartition> = roles
        .iter()
        .enumerate()
        .map(|(i, (label, ty, attrs))| {
            let first = first_usable + per * i as u64;
            let mut unique = [0x5a; 16];
            unique[0] = i as u8 + 1;
            signpost::NewPartition {
                type_guid: guids::to_bytes(ty),
                label: label.to_string(),
                first_lba: first,
                last_lba: first + per - 1,
                attributes: *attrs,
                unique_guid: unique,
            }
        })
        .collect();
    let path = std::env::temp_dir().join(format!(
        "abos-fuzz-seed-{}-{sector_size}-{dual}.img",
        std::process::id()
    ));
    let f = std::fs::File::create(&path).expect("create seed image");
    f.set_len(sectors * sector_size).expect("size seed image");
    drop(f);
    signpost::write_new_table(&path, sector_size, [0x11; 16], &parts).expect("seed table");
    let image = std::fs::read(&path).expect("read seed image");
    let _ = std::fs::remove_file(&path);
    image
}
