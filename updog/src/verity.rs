//! Verifying a written partition set before it may be marked valid: the root partition against
//! the hash partition (dm-verity format 1, the layout `veritysetup format` writes) and the root
//! hash and salt that the set's BOOT partition gives the kernel.
//!
//! The hash tree itself is checked by the `dm-verity` crate (the same code os-image builds trees
//! with), over [`dm_verity::Window`]s of the disk. What is updog's own is reading the parameters:
//! [`boot_params_from_partition`] scans the BOOT partition's bytes for the `dm-mod.create` table,
//! with no external tool.

use crate::blockio::Written;
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

/// The root partition checked against the hash tree *behind the writer*: as the root image is
/// written, the bytes just written are read back from the device and checked block by block
/// against the tree ([`dm_verity::StreamVerifier`]), on a thread of their own, so checking
/// overlaps downloading, decoding and writing instead of following them as a second pass.
///
/// It proves what the separate pass ([`verify`]) proves, and only where it can: the bytes are
/// read from the device with direct I/O (the writer wrote them the same way, so no page cache
/// holds them), or from a regular file (a disk image, which the separate pass reads through its
/// cache as well). Where neither holds (a block device that refused direct I/O: reading back
/// right after writing would only read the page cache) [`RootCheck::spawn`]'s thread stops
/// checking and [`Checked::NotProven`] sends the caller to the separate pass, which drops the
/// cache first. A resumed image's bytes from an earlier run are read back and checked first, in
/// this run, so every block is read from the device by the run that marks the set valid.
#[derive(Debug)]
pub struct RootCheck {
    verifier: dm_verity::StreamVerifier<crate::blockio::DirectWindow>,
    disk: std::path::PathBuf,
    data_off: u64,
    policy: crate::blockio::DirectPolicy,
}

/// How the root check behind the writer ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Every block the tree covers was read back from the device and matched.
    Verified,
    /// Not proven here (why): the separate pass must run.
    NotProven(String),
}

impl RootCheck {
    /// Reads the dm-verity parameters from the written BOOT partition (`boot_written` bytes of
    /// `set.boot`) and checks the hash partition's tree against them (superblock, upper levels,
    /// root hash), before the root is written.
    pub fn prepare(disk: &Path, set: &signpost::PartitionSet, boot_written: u64) -> Result<Self> {
        let file = File::open(disk).context(error::DiskOpenSnafu { path: disk })?;
        let boot = boot_params_from_partition(
            &file,
            set.boot.first_byte,
            boot_written.min(set.boot.len_bytes),
        )?;
        let policy = crate::blockio::DirectPolicy::from_env();
        let mut hash = crate::blockio::DirectWindow::new(
            disk,
            set.hash.first_byte,
            set.hash.len_bytes,
            policy,
        )?;
        let params = full_params(&mut hash, &boot, disk)?;
        // A tree covering more than the partition needs no check here: the image cannot fit,
        // and the writer refuses it. The check's thread runs beside the download, decode and
        // write threads: no pool (measured: the pool's wake-ups cost more than they gain there).
        let verifier = dm_verity::StreamVerifier::new(hash, &params)
            .context(error::VeritySnafu { path: disk })?
            .sequential();
        Ok(RootCheck {
            verifier,
            disk: disk.to_path_buf(),
            data_off: set.root.first_byte,
            policy,
        })
    }

    /// Starts the checking thread. `already` bytes of the image are on the device from an earlier
    /// run: they are read back and checked first. Then each [`Written`] received (from
    /// [`crate::blockio::Writer::watched`] or a watched [`crate::blockio::DiskTarget`]) is
    /// followed: the bytes up to its end are read back and checked; a rewrite of bytes already
    /// checked makes the result [`Checked::NotProven`]. The thread ends when every sender is
    /// dropped.
    #[allow(clippy::type_complexity)]
    pub fn spawn(
        self,
        already: u64,
    ) -> Result<(
        std::sync::mpsc::SyncSender<Written>,
        std::thread::JoinHandle<Result<Checked>>,
    )> {
        let (tx, rx) = std::sync::mpsc::sync_channel(64);
        let thread = std::thread::Builder::new()
            .name("verify-root".into())
            .spawn(move || self.run(already, rx))
            .map_err(|source| Error::Runtime { source })?;
        Ok((tx, thread))
    }

    fn run(mut self, already: u64, rx: std::sync::mpsc::Receiver<Written>) -> Result<Checked> {
        use crate::blockio::{self, IoMode};
        let covered = self.verifier.covered();
        let disk = blockio::open_for_read(&self.disk, self.data_off, covered, self.policy)?;
        let block_device = blockio::is_block_device(&self.disk);
        let not_proven = |rx: std::sync::mpsc::Receiver<_>, why: String| {
            // Drain, so the writer is never held up by a reader that stopped reading.
            for _ in rx {}
            Ok(Checked::NotProven(why))
        };
        if disk.mode == IoMode::Buffered && block_device {
            return not_proven(
                rx,
                format!(
                    "{} refuses direct reads: a read right after the write would come from the \
                     page cache",
                    self.disk.display()
                ),
            );
        }
        let align = match disk.mode {
            IoMode::Direct { align } => align as u64,
            IoMode::Buffered => 1,
        };
        let mut buf = blockio::AlignedBuf::new(blockio::BUF_BYTES, align as usize);
        let mut read_to = |verifier: &mut dm_verity::StreamVerifier<_>, to: u64| -> Result<()> {
            let to = to.min(covered);
            while verifier.position() < to {
                let pos = verifier.position();
                let start = pos - pos % align;
                let end = to.div_ceil(align) * align;
                let n = (end - start).min(blockio::BUF_BYTES as u64) as usize;
                let at = self.data_off + start;
                disk.file
                    .read_exact_at(&mut buf.as_mut_slice()[..n], at)
                    .context(error::DiskReadSnafu {
                        path: &self.disk,
                        offset: at,
                    })?;
                let skip = (pos - start) as usize;
                let upto = n.min((to - start) as usize);
                verifier
                    .update(&buf.as_slice()[skip..upto])
                    .context(error::VeritySnafu { path: &self.disk })?;
            }
            Ok(())
        };
        read_to(&mut self.verifier, already)?;
        while let Ok(written) = rx.recv() {
            let (end, mode) = match written {
                Written::Upto { end, mode } => (end, mode),
                Written::Rewrite { at } if at >= self.data_off + self.verifier.position() => {
                    continue;
                }
                Written::Rewrite { at } => {
                    return not_proven(
                        rx,
                        format!("bytes at {at}, already checked, were written again"),
                    );
                }
            };
            if mode == IoMode::Buffered && block_device {
                return not_proven(
                    rx,
                    format!(
                        "{} switched to the page cache while writing",
                        self.disk.display()
                    ),
                );
            }
            read_to(&mut self.verifier, end.saturating_sub(self.data_off))?;
        }
        // The writer stopped (on its own error, reported by the caller) or the image is shorter
        // than the tree: either way not proven here.
        if self.verifier.position() < covered {
            return Ok(Checked::NotProven(format!(
                "the image ended after {} of the {covered} bytes the tree covers",
                self.verifier.position()
            )));
        }
        self.verifier
            .finish()
            .context(error::VeritySnafu { path: &self.disk })?;
        Ok(Checked::Verified)
    }
}

/// The complete parameters: the table's, with the superblock's UUID (the kernel's table carries
/// none, and dm-verity does not check it either).
fn full_params(
    hash: &mut crate::blockio::DirectWindow,
    params: &BootVerity,
    disk: &Path,
) -> Result<VerityParams> {
    let uuid = dm_verity::read_superblock(hash)
        .context(error::VeritySnafu { path: disk })?
        .uuid;
    Ok(VerityParams {
        root_hash: params.root_hash,
        salt: params.salt.clone(),
        data_blocks: params.data_blocks,
        data_block_size: params.data_block_size,
        hash_block_size: params.hash_block_size,
        uuid,
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
    let params = full_params(&mut hash, params, disk)?;
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
