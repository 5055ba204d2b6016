//! Verifying a written partition set before it may be marked valid: the root partition against
//! the hash partition (dm-verity format 1, the layout `veritysetup format` writes) and the root
//! hash and salt that the set's BOOT partition gives the kernel.
//!
//! The hash tree itself is checked by the `dm-verity` crate (the same code os-image builds trees
//! with), over [`dm_verity::Window`]s of the disk. What is updog's own is reading the parameters:
//! [`boot_params_from_partition`] scans the BOOT partition's bytes for the `dm-mod.create` table,
//! with no external tool.

use crate::error::{self, Error, Result};
use dm_verity::VerityParams;
use snafu::ResultExt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

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
            if let Some(p) = parse_table(&hay[..i + k], &hay[i + k..])
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

/// Parses the table around a ` verity 1 ` found in grub.cfg (`…,ro,0 <sectors> verity 1 <data>
/// <hash> <dbs> <hbs> <blocks> 1 sha256 <root> <salt> …"`) with the dm-verity crate's parser, the
/// one that sits next to the writer os-image uses. `before` ends where the needle starts; the
/// table starts after the last `,` before it (the `dm-mod.create` device fields) and ends at the
/// closing quote, a newline or a NUL.
fn parse_table(before: &[u8], from_needle: &[u8]) -> Option<BootVerity> {
    let back = before.len().saturating_sub(64);
    let start = back + before[back..].iter().rposition(|b| *b == b',')? + 1;
    let end = from_needle
        .iter()
        .position(|b| *b == b'"' || *b == b'\n' || *b == 0)
        .unwrap_or(from_needle.len())
        .min(900);
    let mut text = std::str::from_utf8(&before[start..]).ok()?.to_owned();
    text.push_str(std::str::from_utf8(&from_needle[..end]).ok()?);
    let table = dm_verity::VerityTable::parse(&text).ok()?;
    let p = table.params;
    Some(BootVerity {
        root_hash: p.root_hash,
        salt: p.salt,
        data_blocks: p.data_blocks,
        data_block_size: p.data_block_size,
        hash_block_size: p.hash_block_size,
    })
}

/// Verifies the root partition (`data_len` bytes at `data_off` of `disk`) against the hash tree
/// in the hash partition (`hash_len` bytes at `hash_off`, superblock first) and `params` from the
/// BOOT partition, with [`dm_verity::verify`]: the superblock must agree with the table (salt,
/// data blocks, block sizes, sha256), the top hash block must hash to the table's root hash, and
/// every hash block and every data block must match its parent's digest.
///
/// Both partitions are read from the device, not from the page cache the write just filled:
/// with direct I/O on a block device (the data one chunk ahead on a reader thread, so reading
/// overlaps hashing), and where direct I/O is refused through the page cache after dropping the
/// range's clean pages (see [`crate::blockio`]). This single read pass is what proves that the
/// device kept every block that was written: see `README.md`, "What guards against a device that
/// drops writes".
pub fn verify(
    disk: &Path,
    data_off: u64,
    data_len: u64,
    hash_off: u64,
    hash_len: u64,
    params: &BootVerity,
) -> Result<()> {
    let policy = crate::blockio::DirectPolicy::from_env();
    let mut hash = crate::blockio::DirectWindow::new(disk, hash_off, hash_len, policy)?;
    let ctx = || error::VeritySnafu { path: disk };
    // The kernel's table carries no UUID; take the superblock's so the parameters are complete
    // (dm-verity does not check it either).
    let uuid = dm_verity::read_superblock(&mut hash).context(ctx())?.uuid;
    let params = VerityParams {
        root_hash: params.root_hash,
        salt: params.salt.clone(),
        data_blocks: params.data_blocks,
        data_block_size: params.data_block_size,
        hash_block_size: params.hash_block_size,
        uuid,
    };
    // Only the blocks the tree covers are read (the rest of the partition is not the image's).
    let covered = params
        .data_blocks
        .saturating_mul(u64::from(params.data_block_size))
        .min(data_len);
    let mut data = crate::blockio::DirectReader::new(disk, data_off, covered, policy)?;
    dm_verity::verify(&mut data, &mut hash, &params).context(ctx())
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
        let i = find(cfg, b" verity 1 ").unwrap();
        let p = parse_table(&cfg[..i], &cfg[i..]).unwrap();
        assert_eq!(p.data_blocks, 2);
        assert_eq!(p.salt, vec![0xab, 0xcd]);
        assert_eq!(p.root_hash, [1u8; 32]);
        assert_eq!((p.data_block_size, p.hash_block_size), (4096, 4096));
    }

    #[test]
    fn a_table_the_dm_verity_writer_made_reads_back() {
        let params = VerityParams {
            root_hash: [7u8; 32],
            salt: vec![1, 2, 3],
            data_blocks: 300,
            data_block_size: 4096,
            hash_block_size: 4096,
            uuid: [0; 16],
        };
        let line = dm_verity::VerityTable {
            start: 0,
            sectors: 300 * 8,
            data_dev: "PARTUUID=$boot_uuid/PARTNROFF=1".into(),
            hash_dev: "PARTUUID=$boot_uuid/PARTNROFF=2".into(),
            params: params.clone(),
            options: vec!["restart_on_corruption".into()],
        }
        .to_string();
        let cfg = format!("set dm_verity_root=\"root,,,ro,{line}\"\n");
        let i = find(cfg.as_bytes(), b" verity 1 ").unwrap();
        let p = parse_table(&cfg.as_bytes()[..i], &cfg.as_bytes()[i..]).unwrap();
        assert_eq!(p.root_hash, params.root_hash);
        assert_eq!(p.salt, params.salt);
        assert_eq!(p.data_blocks, params.data_blocks);
    }
}
