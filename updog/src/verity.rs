//! Verifying a written partition set before it may be marked valid: the root partition against
//! the hash partition (dm-verity format 1, the layout `veritysetup format` writes) and the root
//! hash and salt that the set's BOOT partition gives the kernel.
//!
//! This is a small verifier of our own (os-image's was not published when updog needed it). It
//! reads the disk with `pread` and hashes the data blocks on two threads.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

const SIGNATURE: &[u8; 8] = b"verity\0\0";
const DIGEST: usize = 32;

/// Parameters a verity hash tree is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootVerity {
    /// Root hash (from the BOOT partition's kernel command line).
    pub root_hash: [u8; 32],
    /// Salt.
    pub salt: Vec<u8>,
    /// Data blocks covered.
    pub data_blocks: u64,
    /// Data block size.
    pub data_block_size: u32,
    /// Hash block size.
    pub hash_block_size: u32,
}

fn verr(what: &'static str, detail: impl Into<String>) -> Error {
    Error::Verify {
        what,
        detail: detail.into(),
    }
}

/// Finds the dm-verity table (`dm-mod.create=… verity 1 … sha256 <root> <salt> …`) in the first
/// `len` bytes of the BOOT partition at `offset` (grub.cfg is stored plainly in the boot
/// filesystem). Exactly one distinct table must be present.
pub fn boot_params_from_partition(disk: &File, offset: u64, len: u64) -> Result<BootVerity> {
    const NEEDLE: &[u8] = b" verity 1 ";
    const CHUNK: usize = 1 << 20;
    const TAIL: usize = 1024;
    let mut found: Vec<BootVerity> = Vec::new();
    let mut buf = vec![0u8; CHUNK + TAIL];
    let mut pos = 0u64;
    while pos < len {
        let n = ((len - pos) as usize).min(CHUNK + TAIL);
        disk.read_exact_at(&mut buf[..n], offset + pos)
            .map_err(|e| verr("boot partition", format!("read failed: {e}")))?;
        let hay = &buf[..n];
        let limit = n.min(CHUNK);
        let mut i = 0;
        while let Some(k) = find(&hay[i..limit.max(i)], NEEDLE) {
            let start = i + k + NEEDLE.len();
            if let Some(p) = parse_table(&hay[start..])
                && !found.contains(&p)
            {
                found.push(p);
            }
            i += k + 1;
        }
        pos += CHUNK as u64;
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(verr(
            "boot partition",
            "no dm-verity table (dm-mod.create … verity 1 …) found",
        )),
        n => Err(verr(
            "boot partition",
            format!("{n} different dm-verity tables found"),
        )),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses `<data_dev> <hash_dev> <dbs> <hbs> <blocks> <hash_start> <alg> <root> <salt>`.
fn parse_table(bytes: &[u8]) -> Option<BootVerity> {
    let end = bytes
        .iter()
        .position(|b| *b == b'"' || *b == b'\n' || *b == 0)
        .unwrap_or(bytes.len());
    let text = std::str::from_utf8(&bytes[..end.min(900)]).ok()?;
    let t: Vec<&str> = text.split_ascii_whitespace().collect();
    if t.len() < 9 || t[6] != "sha256" || t[5] != "1" {
        return None;
    }
    let root: [u8; 32] = hex::decode(t[7]).ok()?.try_into().ok()?;
    let salt = if t[8] == "-" {
        Vec::new()
    } else {
        hex::decode(t[8]).ok()?
    };
    Some(BootVerity {
        root_hash: root,
        salt,
        data_blocks: t[4].parse().ok()?,
        data_block_size: t[2].parse().ok()?,
        hash_block_size: t[3].parse().ok()?,
    })
}

/// What the hash partition's superblock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Algorithm name.
    pub algorithm: String,
    /// Data block size.
    pub data_block_size: u32,
    /// Hash block size.
    pub hash_block_size: u32,
    /// Data blocks.
    pub data_blocks: u64,
    /// Salt.
    pub salt: Vec<u8>,
}

/// Parses a format-1 verity superblock.
pub fn parse_superblock(b: &[u8]) -> Result<Superblock> {
    let bad = |d: &str| verr("hash partition", format!("verity superblock: {d}"));
    if b.len() < 512 || &b[..8] != SIGNATURE {
        return Err(bad("no `verity` signature"));
    }
    let u32_at = |o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
    if u32_at(8) != 1 || u32_at(12) != 1 {
        return Err(bad("unsupported version or hash type"));
    }
    let alg = b[32..64].split(|c| *c == 0).next().unwrap_or_default();
    let salt_size = usize::from(u16::from_le_bytes([b[80], b[81]]));
    if salt_size > 256 {
        return Err(bad("salt longer than 256 bytes"));
    }
    let mut blocks = [0u8; 8];
    blocks.copy_from_slice(&b[72..80]);
    Ok(Superblock {
        algorithm: String::from_utf8_lossy(alg).into_owned(),
        data_block_size: u32_at(64),
        hash_block_size: u32_at(68),
        data_blocks: u64::from_le_bytes(blocks),
        salt: b[88..88 + salt_size].to_vec(),
    })
}

fn hash_block(salt: &[u8], block: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(block);
    h.finalize().into()
}

/// Verifies `data_blocks` blocks of the root partition at `data_off` against the tree in the
/// hash partition at `hash_off` (superblock first) and `params` from the BOOT partition.
pub fn verify(
    disk: &Path,
    data_off: u64,
    data_len: u64,
    hash_off: u64,
    hash_len: u64,
    params: &BootVerity,
) -> Result<()> {
    let file = File::open(disk)
        .map_err(|e| verr("partitions", format!("open {}: {e}", disk.display())))?;
    let mut sb = vec![0u8; 512];
    file.read_exact_at(&mut sb, hash_off)
        .map_err(|e| verr("hash partition", format!("read superblock: {e}")))?;
    let sb = parse_superblock(&sb)?;
    if sb.algorithm != "sha256" || sb.data_block_size != 4096 || sb.hash_block_size != 4096 {
        return Err(verr(
            "hash partition",
            format!(
                "unsupported parameters {} {}/{}",
                sb.algorithm, sb.data_block_size, sb.hash_block_size
            ),
        ));
    }
    if sb.salt != params.salt
        || sb.data_blocks != params.data_blocks
        || params.data_block_size != 4096
        || params.hash_block_size != 4096
    {
        return Err(verr(
            "hash partition",
            format!(
                "superblock (salt {}, {} blocks) does not match the boot partition's table (salt {}, {} blocks)",
                hex::encode(&sb.salt),
                sb.data_blocks,
                hex::encode(&params.salt),
                params.data_blocks
            ),
        ));
    }
    let bs = 4096u64;
    let per = bs / DIGEST as u64; // hashes per block (128)
    let blocks = params.data_blocks;
    if blocks < 2 {
        return Err(verr("hash partition", "fewer than two data blocks"));
    }
    if blocks * bs > data_len {
        return Err(verr(
            "root partition",
            format!("{blocks} data blocks do not fit the partition"),
        ));
    }
    // Level sizes (level 0 hashes the data), stored top level first after the superblock block.
    let mut levels = 0u32;
    while u64::from(levels) * 7 < 64 && (blocks - 1) >> (7 * levels) != 0 {
        levels += 1;
    }
    let sizes: Vec<u64> = (0..levels)
        .map(|i| blocks.div_ceil(per.pow(i + 1)))
        .collect();
    let mut starts = vec![0u64; levels as usize];
    let mut pos = 1u64; // block index in the hash device (block 0 = superblock)
    for i in (0..levels as usize).rev() {
        starts[i] = pos;
        pos += sizes[i];
    }
    if pos * bs > hash_len {
        return Err(verr(
            "hash partition",
            "hash tree does not fit the partition",
        ));
    }
    let read_blocks = |dev_off: u64, first: u64, count: u64| -> Result<Vec<u8>> {
        let mut v = vec![0u8; (count * bs) as usize];
        file.read_exact_at(&mut v, dev_off + first * bs)
            .map_err(|e| verr("partitions", format!("read: {e}")))?;
        Ok(v)
    };
    // Top: a single block whose hash is the root hash.
    let top = read_blocks(hash_off, starts[levels as usize - 1], 1)?;
    if hash_block(&params.salt, &top) != params.root_hash {
        return Err(verr(
            "hash partition",
            "the top hash block does not match the root hash in the boot partition",
        ));
    }
    // Upper levels: each block of level i-1 against its entry in level i.
    for i in (1..levels as usize).rev() {
        let parent = read_blocks(hash_off, starts[i], sizes[i])?;
        check_level(
            &parent,
            sizes[i - 1],
            |j| read_blocks(hash_off, starts[i - 1] + j, 1),
            &params.salt,
            i,
        )?;
    }
    // Level 0 against the data, on two threads over halves aligned to hash blocks; each streams
    // its data and the matching level-0 hash blocks (memory does not grow with the image).
    let half = sizes[0].div_ceil(2);
    let level0 = starts[0];
    let check_range = |from_hb: u64, to_hb: u64| -> Result<()> {
        const HB_BATCH: u64 = 2; // hash blocks per read: 256 data blocks, 1 MiB
        let mut data = vec![0u8; (HB_BATCH * per * bs) as usize];
        let mut hashes = vec![0u8; (HB_BATCH * bs) as usize];
        let mut hb = from_hb;
        while hb < to_hb {
            let nhb = HB_BATCH.min(to_hb - hb);
            let hashes = &mut hashes[..(nhb * bs) as usize];
            file.read_exact_at(hashes, hash_off + (level0 + hb) * bs)
                .map_err(|e| verr("hash partition", format!("read: {e}")))?;
            let first = hb * per;
            let n = ((hb + nhb) * per).min(blocks) - first;
            let chunk = &mut data[..(n * bs) as usize];
            file.read_exact_at(chunk, data_off + first * bs)
                .map_err(|e| verr("root partition", format!("read: {e}")))?;
            for k in 0..n {
                let blk = &chunk[(k * bs) as usize..((k + 1) * bs) as usize];
                let idx = (k as usize) * DIGEST;
                if hash_block(&params.salt, blk)[..] != hashes[idx..idx + DIGEST] {
                    return Err(verr(
                        "root partition",
                        format!("data block {} is corrupted", first + k),
                    ));
                }
            }
            // Unused entries after the last data block must be zero.
            if hashes[(n as usize) * DIGEST..].iter().any(|b| *b != 0) {
                return Err(verr(
                    "hash partition",
                    "non-zero padding after the last level-0 hash",
                ));
            }
            hb += nhb;
        }
        Ok(())
    };
    let (r1, r2) = std::thread::scope(|s| {
        let h = s.spawn(|| check_range(half, sizes[0]));
        let r1 = check_range(0, half);
        (r1, h.join())
    });
    r1?;
    r2.map_err(|_| Error::ThreadPanic { what: "verity" })??;
    Ok(())
}

fn check_level(
    parent: &[u8],
    child_count: u64,
    mut read_child: impl FnMut(u64) -> Result<Vec<u8>>,
    salt: &[u8],
    level: usize,
) -> Result<()> {
    for j in 0..child_count {
        let child = read_child(j)?;
        let idx = (j as usize) * DIGEST;
        if hash_block(salt, &child)[..] != parent[idx..idx + DIGEST] {
            return Err(verr(
                "hash partition",
                format!("hash block {j} of level {} is corrupted", level - 1),
            ));
        }
    }
    if parent[(child_count as usize) * DIGEST..]
        .iter()
        .any(|b| *b != 0)
    {
        return Err(verr(
            "hash partition",
            format!("non-zero padding in level {level}"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn parses_bottlerocket_table() {
        let cfg = b"set dm_verity_root=\"root,,,ro,0 16 verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 \
            PARTUUID=$boot_uuid/PARTNROFF=2 4096 4096 2 1 sha256 \
            0101010101010101010101010101010101010101010101010101010101010101 abcd 2 \
            restart_on_corruption ignore_zero_blocks\"\n";
        let i = find(cfg, b" verity 1 ").unwrap() + 10;
        let p = parse_table(&cfg[i..]).unwrap();
        assert_eq!(p.data_blocks, 2);
        assert_eq!(p.salt, vec![0xab, 0xcd]);
        assert_eq!(p.root_hash, [1u8; 32]);
    }
}
