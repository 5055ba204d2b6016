//! The delta executor's disk I/O: the same direct-I/O policy as a full image write
//! ([`crate::blockio`]), behind the positioned `read_at` / `write_at` / `sync` the executor's
//! `Read + Write + Seek` target needs.
//!
//! # Writing
//!
//! [`DeltaDisk::open`] opens the disk with [`blockio::open_for_write`] for the inactive ROOT
//! partition: `O_DIRECT` on a block device whose partition is aligned to its logical block size
//! (`UPDOG_DIRECT_IO` decides as for a full write), else through the page cache. In direct mode
//! writes are gathered in one aligned buffer of `RUN_BYTES` (512 KiB) (the executor writes the
//! image's chunks in order and they are contiguous, so the buffer fills with consecutive bytes)
//! and written whole. A write that does not continue the buffered bytes first writes them out.
//!
//! Direct writes are whole aligned blocks, and nothing outside the bytes written is changed: a
//! run of bytes that starts inside a block first reads that block from the device (the bytes
//! before are kept); a run that ends inside a block (the image's tail, or a flush at a
//! checkpoint) reads the rest of that block from the device and writes it back unchanged (no
//! zero padding, so a flush at a checkpoint never clobbers bytes it does not own, and the bytes of
//! the partition past the image stay as they were). A direct write the device refuses (`EINVAL`,
//! e.g. a stacked device with a larger alignment) switches to the page cache with a warning, as
//! in [`blockio`].
//!
//! # Durability and checkpoints
//!
//! [`DeltaDisk::flush`] hands every buffered byte to the device and [`DeltaDisk::sync`] then
//! `fdatasync`s: after a direct write the bytes are past the page cache but may sit in the
//! device's volatile cache, and `fdatasync` on a block device sends the cache flush. The executor
//! (`abos_delta::execute`) calls `flush` and `sync` before it records a checkpoint in its progress
//! file and once more at the end, before the image hash is checked; so a checkpoint never covers
//! a byte that is still in our buffer, in the page cache or in the device's cache, and the set is
//! verified and marked valid only after all of it is durable.
//!
//! # Reading (resume)
//!
//! A rerun after a kill re-reads and re-hashes the chunks the progress record covers. In direct
//! mode those reads are `O_DIRECT`: they return what the device holds. In the page-cache mode the
//! partition's clean cached pages are dropped when the disk is opened (`posix_fadvise(DONTNEED)`),
//! so the re-reads go to the device too. Even a page that stayed cached could not mislead the
//! check: every chunk the record covers was `fdatasync`ed before the record was written, and the
//! page cache of a block device is coherent with it (after a power loss it is empty); a cached
//! page thus holds exactly what the device was told to keep. Reads also write out the buffered
//! bytes first, so a read always sees every earlier write.
//!
//! # After the write
//!
//! The written set is verified by [`crate::verity::verify`] exactly as after a full write: it
//! reads the ROOT and HASH partitions with [`blockio::DirectReader`] / [`blockio::DirectWindow`]
//! (direct I/O, or the page cache after dropping its clean pages), so it reads the device, not
//! the page cache.
//!
//! Memory: one write buffer and one read bounce buffer of `RUN_BYTES` (512 KiB) each, plus a
//! block.

use crate::blockio::{self, AlignedBuf, DirectPolicy, IoMode};
use crate::error::Result;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt};
use std::path::{Path, PathBuf};
use tracing::{debug, warn};

/// Size of the write buffer (and of the read bounce buffer): large enough that the device sees
/// big requests, small enough to keep memory flat (the same size as [`blockio`]'s ring buffers
/// at the time of writing).
const RUN_BYTES: usize = 512 << 10;

/// The disk under the delta executor: positioned writes gathered into aligned direct writes,
/// positioned reads from the device (see the module documentation). Dropping it discards bytes
/// not yet flushed (no checkpoint covers them); it deliberately does not write them then, since a
/// full-image fallback may already be writing the same partition.
#[derive(Debug)]
pub struct DeltaDisk {
    file: File,
    mode: IoMode,
    path: PathBuf,
    /// The write buffer (direct mode only).
    buf: Option<AlignedBuf>,
    /// Disk offset of the buffer's first byte (aligned).
    buf_at: u64,
    /// Bytes of the buffer in use: `[0, head)` were read from the device, `[head, fill)` are new.
    fill: usize,
    /// Bounce buffer for direct reads (made on first use).
    bounce: Option<AlignedBuf>,
    /// Bytes handed to the device (whole blocks, in direct mode).
    device_bytes: u64,
}

impl DeltaDisk {
    /// Opens `path` for writing the partition `[first_byte, first_byte + len)` under `policy`.
    pub fn open(path: &Path, first_byte: u64, len: u64, policy: DirectPolicy) -> Result<Self> {
        let disk = blockio::open_for_write(path, first_byte, len, policy)?;
        if disk.mode == IoMode::Buffered && is_block_device(path) {
            // Resume re-reads go to the device, not to pages a killed run left behind.
            let _ = rustix::fs::fadvise(
                &disk.file,
                first_byte,
                std::num::NonZeroU64::new(len),
                rustix::fs::Advice::DontNeed,
            );
        }
        debug!("delta: writing {} ({:?})", path.display(), disk.mode);
        let buf = match disk.mode {
            IoMode::Direct { align } => Some(AlignedBuf::new(RUN_BYTES, align)),
            IoMode::Buffered => None,
        };
        Ok(DeltaDisk {
            file: disk.file,
            mode: disk.mode,
            path: path.to_path_buf(),
            buf,
            buf_at: 0,
            fill: 0,
            bounce: None,
            device_bytes: 0,
        })
    }

    /// How the disk is written now (a refused direct write switches to the page cache).
    pub fn mode(&self) -> IoMode {
        self.mode
    }

    /// Bytes handed to the device so far (in direct mode whole blocks, so a tail block's bytes
    /// read back and rewritten count).
    pub fn device_bytes(&self) -> u64 {
        self.device_bytes
    }

    fn align(&self) -> usize {
        match self.mode {
            IoMode::Direct { align } => align,
            IoMode::Buffered => 1,
        }
    }

    /// Writes `bytes` at disk offset `at`.
    pub fn write_at(&mut self, mut bytes: &[u8], mut at: u64) -> io::Result<()> {
        if self.buf.is_none() {
            self.file.write_all_at(bytes, at)?;
            self.device_bytes += bytes.len() as u64;
            return Ok(());
        }
        let align = self.align();
        if self.fill > 0 && at != self.buf_at + self.fill as u64 {
            self.flush()?;
        }
        while !bytes.is_empty() {
            if self.fill == 0 {
                // A new run: keep the bytes before `at` in its first block.
                self.buf_at = at - at % align as u64;
                let head = (at - self.buf_at) as usize;
                if head > 0 {
                    let block_at = self.buf_at;
                    let buf = self.buf.as_mut().expect("direct mode");
                    self.file
                        .read_exact_at(&mut buf.as_mut_slice()[..align], block_at)?;
                }
                self.fill = head;
            }
            let buf = self.buf.as_mut().expect("direct mode");
            let n = (RUN_BYTES - self.fill).min(bytes.len());
            buf.as_mut_slice()[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            bytes = &bytes[n..];
            at += n as u64;
            if self.fill == RUN_BYTES {
                self.write_buf(RUN_BYTES)?;
                self.buf_at += RUN_BYTES as u64;
                self.fill = 0;
                if self.buf.is_none() {
                    // Switched to the page cache.
                    return self.write_at(bytes, at);
                }
            }
        }
        Ok(())
    }

    /// Hands every buffered byte to the device (a partial last block is completed with the
    /// device's own bytes, see the module documentation).
    pub fn flush(&mut self) -> io::Result<()> {
        if self.fill == 0 {
            return Ok(());
        }
        let align = self.align();
        let whole = self.fill - self.fill % align;
        let tail = self.fill - whole;
        let mut len = whole;
        if tail > 0 {
            // fill < BUF_BYTES (a full buffer is written at once), so the block fits.
            let block_at = self.buf_at + whole as u64;
            let mut block = AlignedBuf::new(align, align);
            self.file.read_exact_at(block.as_mut_slice(), block_at)?;
            let fill = self.fill;
            let buf = self.buf.as_mut().expect("direct mode");
            buf.as_mut_slice()[fill..whole + align].copy_from_slice(&block.as_slice()[tail..]);
            len += align;
        }
        self.write_buf(len)?;
        self.fill = 0;
        Ok(())
    }

    /// Writes the first `len` bytes of the buffer at `buf_at`; a refused direct write reopens the
    /// disk through the page cache and writes them there.
    fn write_buf(&mut self, len: usize) -> io::Result<()> {
        let buf = self.buf.as_ref().expect("direct mode");
        match self.file.write_all_at(&buf.as_slice()[..len], self.buf_at) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                warn!(
                    "{} refused a direct write at byte {} ({e}); using the page cache",
                    self.path.display(),
                    self.buf_at
                );
                self.file = OpenOptions::new().read(true).write(true).open(&self.path)?;
                self.file
                    .write_all_at(&buf.as_slice()[..len], self.buf_at)?;
                self.mode = IoMode::Buffered;
                self.buf = None;
                self.bounce = None;
            }
            Err(e) => return Err(e),
        }
        self.device_bytes += len as u64;
        Ok(())
    }

    /// Makes every byte written so far durable (see the module documentation).
    pub fn sync(&mut self) -> io::Result<()> {
        self.flush()?;
        self.file.sync_data()
    }

    /// Reads `out.len()` bytes at disk offset `at` from the device (after writing out what is
    /// buffered).
    pub fn read_exact_at(&mut self, out: &mut [u8], at: u64) -> io::Result<()> {
        self.flush()?;
        let align = self.align() as u64;
        if align == 1 {
            return self.file.read_exact_at(out, at);
        }
        let bounce = self
            .bounce
            .get_or_insert_with(|| AlignedBuf::new(RUN_BYTES, align as usize));
        let mut done = 0usize;
        while done < out.len() {
            let abs = at + done as u64;
            let start = abs - abs % align;
            let skip = (abs - start) as usize;
            let want = (out.len() - done).min(RUN_BYTES - align as usize);
            let span = ((skip + want) as u64).div_ceil(align) * align;
            let b = &mut bounce.as_mut_slice()[..span as usize];
            self.file.read_exact_at(b, start)?;
            out[done..done + want].copy_from_slice(&b[skip..skip + want]);
            done += want;
        }
        Ok(())
    }
}

fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

#[cfg(test)]
mod test {
    use super::*;

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
            .collect()
    }

    /// On a regular file with direct I/O where the file system allows it (else the page cache):
    /// unaligned runs, a gap, flushes inside blocks and reads in between keep every other byte.
    #[test]
    fn runs_gaps_and_flushes_keep_the_bytes_around_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        let size = 4usize << 20;
        let mut expect = pattern(size, 0x33);
        std::fs::write(&path, &expect).unwrap();
        let mut d = DeltaDisk::open(&path, 0, size as u64, DirectPolicy::On).unwrap();
        let data = pattern(1_500_007, 0xc4);
        // A run starting inside a block, written in uneven pieces, flushed mid-way.
        let mut at = 5000u64;
        for (i, piece) in data.chunks(70_001).enumerate() {
            d.write_at(piece, at).unwrap();
            expect[at as usize..at as usize + piece.len()].copy_from_slice(piece);
            at += piece.len() as u64;
            if i == 7 {
                d.sync().unwrap();
                let mut got = vec![0u8; 10_000];
                d.read_exact_at(&mut got, at - 5_000).unwrap();
                assert!(got == expect[at as usize - 5_000..at as usize + 5_000]);
            }
        }
        // A separate run after a gap.
        d.write_at(&data[..333], 3_000_123).unwrap();
        expect[3_000_123..3_000_456].copy_from_slice(&data[..333]);
        let mut got = vec![0u8; size];
        d.read_exact_at(&mut got, 0).unwrap();
        assert!(got == expect, "read back differs");
        d.sync().unwrap();
        drop(d);
        assert!(std::fs::read(&path).unwrap() == expect, "file differs");
    }
}
