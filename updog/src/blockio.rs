//! Partition I/O near the device's limit: direct I/O with aligned buffers on block devices, a
//! writer thread fed through a small ring of buffers, and read-back that really reads the device.
//!
//! # Writing
//!
//! [`Writer`] takes the decoded bytes of one image in order (from the decode thread), copies them
//! into buffers of [`BUF_BYTES`] (aligned to the device's logical block size, `BLKSSZGET`) and
//! hands full buffers to its own I/O thread, which `pwrite`s them. So decoding the next block and
//! writing the previous one overlap, and memory is bounded by the ring: [`RING`] buffers.
//!
//! On a block device the I/O thread writes with `O_DIRECT`: the bytes go from our buffer to the
//! device, not into the page cache (where they would wait for write-back and be copied again: on a
//! loop device that was most of the time of an update). Where `O_DIRECT` is refused — `open`
//! fails with `EINVAL` (tmpfs), or the first direct write does (a stacked device with a larger
//! alignment) — the same buffers are written through the page cache instead, and a warning says
//! so. A regular file (a disk image) is written through the page cache by default: measured, it
//! is as fast or faster (see README, "Benchmarks"); `UPDOG_DIRECT_IO=on` tries `O_DIRECT` on
//! anything, `off` never does.
//!
//! Direct writes are whole aligned blocks. A write that starts inside a block (a resumed image
//! whose checkpoint fell inside one) first reads that block back, so the bytes before the start
//! are kept. A write that ends inside a block (the end of an image, or a checkpoint) completes
//! that block with the device's own bytes after the end (read back by the I/O thread, after every
//! earlier write), so nothing outside the bytes pushed changes; the block lies inside the
//! partition (direct I/O is only used when the partition starts and ends on block boundaries).
//!
//! [`DiskTarget`] puts this behind `Read + Write + Seek` for writers that jump around (the delta
//! executor): contiguous writes stream through one [`Writer`], a seek elsewhere or a read waits
//! for it first.
//!
//! [`Writer::mark`] passes a marker (a resume record) to the I/O thread after the bytes before it:
//! the thread hands it on only once every one of those bytes has been written, so a checkpoint
//! never claims bytes that are still in memory.
//!
//! # Reading back
//!
//! [`DirectReader`] reads a byte range sequentially from a block device with `O_DIRECT` (where
//! refused: through the page cache, after `posix_fadvise(DONTNEED)` has dropped the range's clean
//! pages, so the read still goes to the device), one chunk ahead on its own thread, so that
//! reading overlaps hashing. [`DirectWindow`] is the seekable variant for the small hash
//! partition. A regular file (a disk image) is read through the page cache under the default
//! policy: for a file the file system is the device, and its cache is what every reader of the
//! file sees; dropping it would only make the check read the same bytes slower.

use crate::error::{self, Error, Result};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use tracing::{debug, warn};

/// Size of one write or read-ahead buffer.
pub const BUF_BYTES: usize = 512 << 10;

/// Buffers in flight per writer (one being filled, the rest queued or being written).
pub const RING: usize = 3;

/// Alignment used when the device does not report its logical block size.
const DEFAULT_ALIGN: usize = 4096;

/// How a disk is accessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// `O_DIRECT`, with buffers, offsets and lengths aligned to `align` bytes.
    Direct {
        /// The device's logical block size (at least 512).
        align: usize,
    },
    /// Through the page cache.
    Buffered,
}

impl IoMode {
    fn align(self) -> usize {
        match self {
            IoMode::Direct { align } => align,
            IoMode::Buffered => 1,
        }
    }
}

/// When to try `O_DIRECT` (`UPDOG_DIRECT_IO`: `auto`, the default; `on`; `off`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectPolicy {
    /// Block devices only.
    Auto,
    /// Block devices and regular files.
    On,
    /// Never.
    Off,
}

impl DirectPolicy {
    /// From `UPDOG_DIRECT_IO` (unset or unknown: `Auto`).
    pub fn from_env() -> Self {
        match std::env::var("UPDOG_DIRECT_IO").as_deref() {
            Ok("on" | "1" | "always") => DirectPolicy::On,
            Ok("off" | "0" | "never") => DirectPolicy::Off,
            _ => DirectPolicy::Auto,
        }
    }
}

/// A byte buffer whose start is aligned to `align` (made in safe code: a slightly larger `Vec`
/// and the aligned window inside it).
#[derive(Debug)]
pub struct AlignedBuf {
    raw: Vec<u8>,
    start: usize,
    len: usize,
}

impl AlignedBuf {
    /// `len` zero bytes starting at an address that is a multiple of `align` (a power of two).
    pub fn new(len: usize, align: usize) -> Self {
        let raw = vec![0u8; len + align];
        let addr = raw.as_ptr().addr();
        let start = (align - addr % align) % align;
        AlignedBuf { raw, start, len }
    }

    /// The aligned bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.raw[self.start..self.start + self.len]
    }

    /// The aligned bytes, mutably.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.raw[self.start..self.start + self.len]
    }
}

/// An open disk and how it is accessed.
#[derive(Debug)]
pub struct Disk {
    /// The file (opened with `O_DIRECT` when `mode` says so).
    pub file: File,
    /// How.
    pub mode: IoMode,
}

/// Whether `path` is a block device.
pub fn is_block_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device())
}

/// The logical block size of the device behind `file` (`BLKSSZGET`), for a block device.
fn logical_block_size(file: &File) -> usize {
    match rustix::fs::ioctl_blksszget(file) {
        Ok(n) if n >= 512 && n.is_power_of_two() => n as usize,
        _ => DEFAULT_ALIGN,
    }
}

/// Opens `path` for writing (and reading) the partition `[first_byte, first_byte + len)`:
/// `O_DIRECT` when `policy` allows it for this kind of file, the device accepts it and the
/// partition is aligned to the device's logical block size; otherwise through the page cache.
pub fn open_for_write(
    path: &Path,
    first_byte: u64,
    len: u64,
    policy: DirectPolicy,
) -> Result<Disk> {
    open(path, true, Some((first_byte, len)), policy)
}

/// Opens `path` for reading back `[first_byte, first_byte + len)`, like [`open_for_write`].
pub fn open_for_read(path: &Path, first_byte: u64, len: u64, policy: DirectPolicy) -> Result<Disk> {
    open(path, false, Some((first_byte, len)), policy)
}

fn open(path: &Path, write: bool, range: Option<(u64, u64)>, policy: DirectPolicy) -> Result<Disk> {
    let buffered = || {
        OpenOptions::new()
            .read(true)
            .write(write)
            .open(path)
            .context(error::DiskOpenSnafu { path })
    };
    let try_direct = match policy {
        DirectPolicy::Off => false,
        DirectPolicy::On => true,
        DirectPolicy::Auto => is_block_device(path),
    };
    if !try_direct {
        return Ok(Disk {
            file: buffered()?,
            mode: IoMode::Buffered,
        });
    }
    match OpenOptions::new()
        .read(true)
        .write(write)
        .custom_flags(libc::O_DIRECT)
        .open(path)
    {
        Ok(file) => {
            let align = if is_block_device(path) {
                logical_block_size(&file)
            } else {
                DEFAULT_ALIGN
            };
            if let Some((first, len)) = range
                && (first % align as u64 != 0 || len % align as u64 != 0)
            {
                debug!(
                    "{}: bytes {first}+{len} are not aligned to {align}: buffered I/O",
                    path.display()
                );
                return Ok(Disk {
                    file: buffered()?,
                    mode: IoMode::Buffered,
                });
            }
            Ok(Disk {
                file,
                mode: IoMode::Direct { align },
            })
        }
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            warn!(
                "{} refuses direct I/O (O_DIRECT: {e}); using the page cache",
                path.display()
            );
            Ok(Disk {
                file: buffered()?,
                mode: IoMode::Buffered,
            })
        }
        Err(e) => Err(e).context(error::DiskOpenSnafu { path }),
    }
}

enum Cmd<M> {
    Write {
        buf: AlignedBuf,
        at: u64,
        len: usize,
        /// `buf[keep_from..len]` lies after the bytes pushed, in their last block: it is filled
        /// with what the device holds there before the write.
        keep_from: Option<usize>,
    },
    Mark(M),
}

/// What a writer tells a reader that checks the device behind it (see
/// [`crate::verity::RootCheck`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Every byte before disk offset `end` is written (a later write before `end` is announced
    /// by a [`Written::Rewrite`] first).
    Upto {
        /// Disk offset.
        end: u64,
        /// How the bytes were written.
        mode: IoMode,
    },
    /// Bytes from disk offset `at` are about to be written again (a reader that already checked
    /// them has checked bytes that change).
    Rewrite {
        /// Disk offset.
        at: u64,
    },
}

/// What a [`Writer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteStats {
    /// The mode the writes ended in (a refused direct write switches to the page cache).
    pub mode: IoMode,
    /// Bytes handed to the device (padding included).
    pub bytes: u64,
}

/// Writes a stream of bytes at consecutive disk offsets from its own I/O thread (see the module
/// documentation). `M` is a marker type handed to `on_mark` in order with the writes.
#[derive(Debug)]
pub struct Writer<M: Send + 'static> {
    tx: Option<SyncSender<Cmd<M>>>,
    free: Receiver<AlignedBuf>,
    cur: Option<AlignedBuf>,
    /// Disk offset of `cur`'s first byte (aligned).
    base: u64,
    /// Bytes of `cur` in use.
    fill: usize,
    align: usize,
    path: PathBuf,
    thread: Option<std::thread::JoinHandle<Result<WriteStats>>>,
}

impl<M: Send + 'static> Writer<M> {
    /// A writer of `disk` whose first byte goes to disk offset `start`. `on_mark` receives each
    /// marker once every byte pushed before it is written; it returns the marker back if it
    /// cannot take it now (it is offered again after the next write, unless a newer one came).
    pub fn new(
        disk: Disk,
        path: &Path,
        start: u64,
        on_mark: impl FnMut(M) -> Result<Option<M>> + Send + 'static,
    ) -> Result<Self> {
        Self::watched(disk, path, start, on_mark, |_, _| Ok(()))
    }

    /// Like [`Writer::new`], and `on_written(end, mode)` is called by the I/O thread after each
    /// write: every byte pushed before disk offset `end` is now on the device (`mode` is how it
    /// was written). A reader that verifies behind the writer follows these ends.
    pub fn watched(
        disk: Disk,
        path: &Path,
        start: u64,
        mut on_mark: impl FnMut(M) -> Result<Option<M>> + Send + 'static,
        mut on_written: impl FnMut(u64, IoMode) -> Result<()> + Send + 'static,
    ) -> Result<Self> {
        let align = disk.mode.align();
        let base = start - start % align as u64;
        let mut first = AlignedBuf::new(BUF_BYTES, align.max(1));
        let fill = (start - base) as usize;
        if fill > 0 {
            // Keep the bytes before `start` in its block.
            disk.file
                .read_exact_at(&mut first.as_mut_slice()[..align], base)
                .context(error::DiskReadSnafu { path, offset: base })?;
        }
        let (tx, rx) = sync_channel::<Cmd<M>>(RING);
        let (free_tx, free) = sync_channel::<AlignedBuf>(RING);
        for _ in 0..RING - 1 {
            let _ = free_tx.try_send(AlignedBuf::new(BUF_BYTES, align));
        }
        let thread_path = path.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("disk-write".into())
            .spawn(move || -> Result<WriteStats> {
                let mut io = IoThread {
                    file: disk.file,
                    mode: disk.mode,
                    path: thread_path,
                    bytes: 0,
                    align: align.max(1),
                    bounce: None,
                };
                let mut pending: Option<M> = None;
                for cmd in rx {
                    match cmd {
                        Cmd::Write {
                            mut buf,
                            at,
                            len,
                            keep_from,
                        } => {
                            if let Some(from) = keep_from {
                                io.keep_device_bytes(&mut buf, at, from, len)?;
                            }
                            io.write(&buf.as_slice()[..len], at)?;
                            let _ = free_tx.try_send(buf);
                            on_written(at + keep_from.unwrap_or(len) as u64, io.mode)?;
                        }
                        Cmd::Mark(m) => pending = Some(m),
                    }
                    if let Some(m) = pending.take() {
                        pending = on_mark(m)?;
                    }
                }
                Ok(WriteStats {
                    mode: io.mode,
                    bytes: io.bytes,
                })
            })
            .map_err(|source| Error::Runtime { source })?;
        Ok(Writer {
            tx: Some(tx),
            free,
            cur: Some(first),
            base,
            fill,
            align: align.max(1),
            path: path.to_path_buf(),
            thread: Some(thread),
        })
    }

    fn send(&mut self, cmd: Cmd<M>) -> Result<()> {
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(cmd).is_ok());
        if sent {
            Ok(())
        } else {
            // The I/O thread stopped: its error is the one to report.
            Err(self.stop().err().unwrap_or(Error::ThreadPanic {
                what: "disk writer",
            }))
        }
    }

    fn next_buf(&mut self) -> Result<AlignedBuf> {
        match self.free.recv() {
            Ok(b) => Ok(b),
            Err(_) => Err(self.stop().err().unwrap_or(Error::ThreadPanic {
                what: "disk writer",
            })),
        }
    }

    /// Appends `bytes`.
    pub fn push(&mut self, mut bytes: &[u8]) -> Result<()> {
        while !bytes.is_empty() {
            let cur = match self.cur.as_mut() {
                Some(c) => c,
                None => {
                    let b = self.next_buf()?;
                    self.cur.insert(b)
                }
            };
            let n = (BUF_BYTES - self.fill).min(bytes.len());
            cur.as_mut_slice()[self.fill..self.fill + n].copy_from_slice(&bytes[..n]);
            self.fill += n;
            bytes = &bytes[n..];
            if self.fill == BUF_BYTES {
                let buf = self.cur.take().ok_or(Error::ThreadPanic {
                    what: "disk writer",
                })?;
                let at = self.base;
                self.base += BUF_BYTES as u64;
                self.fill = 0;
                self.send(Cmd::Write {
                    buf,
                    at,
                    len: BUF_BYTES,
                    keep_from: None,
                })?;
            }
        }
        Ok(())
    }

    /// Sends what is buffered to the I/O thread; a partial last block is completed with the
    /// device's bytes and kept at the start of the next buffer (it is written again, whole, later).
    fn flush_partial(&mut self) -> Result<()> {
        if self.fill == 0 {
            return Ok(());
        }
        let Some(buf) = self.cur.take() else {
            return Ok(());
        };
        let whole = self.fill - self.fill % self.align;
        let tail = self.fill - whole;
        let len = whole + if tail > 0 { self.align } else { 0 };
        let mut next = None;
        let keep_from = (tail > 0).then_some(self.fill);
        if tail > 0 {
            let mut n = self.next_buf()?;
            n.as_mut_slice()[..tail].copy_from_slice(&buf.as_slice()[whole..self.fill]);
            next = Some(n);
        }
        let at = self.base;
        self.base += whole as u64;
        self.fill = tail;
        self.cur = next;
        self.send(Cmd::Write {
            buf,
            at,
            len,
            keep_from,
        })
    }

    /// Hands `marker` to `on_mark` once every byte pushed so far is written.
    pub fn mark(&mut self, marker: M) -> Result<()> {
        self.flush_partial()?;
        self.send(Cmd::Mark(marker))
    }

    /// Writes what is left and waits for the I/O thread. The caller syncs the disk.
    pub fn finish(mut self) -> Result<WriteStats> {
        self.flush_partial()?;
        self.stop()
    }

    fn stop(&mut self) -> Result<WriteStats> {
        self.tx = None;
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| Error::ThreadPanic {
                what: "disk writer",
            })?,
            None => Err(Error::ThreadPanic {
                what: "disk writer",
            }),
        }
    }

    /// The disk this writer writes.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl<M: Send + 'static> Drop for Writer<M> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct IoThread {
    file: File,
    mode: IoMode,
    path: PathBuf,
    bytes: u64,
    /// The writer's block size.
    align: usize,
    /// One aligned block, for [`IoThread::keep_device_bytes`].
    bounce: Option<AlignedBuf>,
}

impl IoThread {
    /// Fills `buf[from..len]` (the rest of the last block of a write to `at`) with the device's
    /// bytes there. `len` is a whole number of blocks and `from` lies in the last one.
    fn keep_device_bytes(
        &mut self,
        buf: &mut AlignedBuf,
        at: u64,
        from: usize,
        len: usize,
    ) -> Result<()> {
        let align = self.align;
        let start = from - from % align;
        debug_assert_eq!(start + align, len);
        let bounce = self
            .bounce
            .get_or_insert_with(|| AlignedBuf::new(align, align));
        let at_block = at + start as u64;
        self.file
            .read_exact_at(bounce.as_mut_slice(), at_block)
            .context(error::DiskReadSnafu {
                path: &self.path,
                offset: at_block,
            })?;
        buf.as_mut_slice()[from..len].copy_from_slice(&bounce.as_slice()[from - start..]);
        Ok(())
    }

    fn write(&mut self, bytes: &[u8], at: u64) -> Result<()> {
        let ctx = || error::DiskWriteSnafu {
            path: &self.path,
            offset: at,
        };
        match self.file.write_all_at(bytes, at) {
            Ok(()) => {}
            Err(e)
                if matches!(self.mode, IoMode::Direct { .. })
                    && e.raw_os_error() == Some(libc::EINVAL) =>
            {
                warn!(
                    "{} refused a direct write at byte {at} ({e}); using the page cache",
                    self.path.display()
                );
                self.file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&self.path)
                    .context(error::DiskOpenSnafu { path: &self.path })?;
                self.mode = IoMode::Buffered;
                self.file.write_all_at(bytes, at).context(ctx())?;
            }
            Err(e) => return Err(e).context(ctx()),
        }
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

type Chunk = std::io::Result<(AlignedBuf, usize, usize)>;

/// Reads `[offset, offset + len)` of a disk sequentially, from the device (see the module
/// documentation), one chunk ahead on a reader thread.
#[derive(Debug)]
pub struct DirectReader {
    rx: Option<Receiver<Chunk>>,
    free: Option<SyncSender<AlignedBuf>>,
    cur: Option<(AlignedBuf, usize, usize)>,
    mode: IoMode,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Read-ahead depth of a [`DirectReader`] (chunks of [`BUF_BYTES`]): 2 MiB queued (plus one chunk
/// being read and one being consumed), so that while the verifier hashes one 2 MiB step
/// (`dm_verity::verify` reads 512 data blocks at a time) the next step is read in full, and the
/// two overlap completely. It runs after the writer's buffers are freed, below the write phase's
/// peak memory.
const READ_AHEAD: usize = 4;

impl DirectReader {
    /// Starts reading.
    pub fn new(path: &Path, offset: u64, len: u64, policy: DirectPolicy) -> Result<Self> {
        let disk = open(path, false, None, policy)?;
        if disk.mode == IoMode::Buffered && is_block_device(path) {
            abos_fsio::drop_cached(&disk.file, offset, len);
        }
        let mode = disk.mode;
        let align = mode.align() as u64;
        let (tx, rx) = sync_channel::<Chunk>(READ_AHEAD);
        let (free_tx, free_rx) = sync_channel::<AlignedBuf>(READ_AHEAD + 2);
        for _ in 0..READ_AHEAD + 1 {
            let _ = free_tx.try_send(AlignedBuf::new(BUF_BYTES, align as usize));
        }
        let thread = std::thread::Builder::new()
            .name("disk-read".into())
            .spawn(move || {
                let file = disk.file;
                let end = offset + len;
                let mut pos = offset - offset % align;
                while pos < end {
                    let Ok(mut buf) = free_rx.recv() else { return };
                    let want_end = (pos + BUF_BYTES as u64).min(end.div_ceil(align) * align);
                    let n = (want_end - pos) as usize;
                    let result = file
                        .read_exact_at(&mut buf.as_mut_slice()[..n], pos)
                        .map(|()| {
                            let skip = (offset.max(pos) - pos) as usize;
                            let valid = (end.min(want_end) - pos) as usize;
                            (buf, skip, valid)
                        });
                    let failed = result.is_err();
                    if tx.send(result).is_err() || failed {
                        return;
                    }
                    pos = want_end;
                }
            })
            .map_err(|source| Error::Runtime { source })?;
        Ok(DirectReader {
            rx: Some(rx),
            free: Some(free_tx),
            cur: None,
            mode,
            thread: Some(thread),
        })
    }

    /// How the range is read.
    pub fn mode(&self) -> IoMode {
        self.mode
    }
}

impl Read for DirectReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some((buf, at, end)) = self.cur.as_mut() {
                if *at < *end {
                    let n = (*end - *at).min(out.len());
                    out[..n].copy_from_slice(&buf.as_slice()[*at..*at + n]);
                    *at += n;
                    return Ok(n);
                }
                if let Some((buf, _, _)) = self.cur.take()
                    && let Some(free) = &self.free
                {
                    let _ = free.try_send(buf);
                }
            }
            let Some(rx) = &self.rx else { return Ok(0) };
            match rx.recv() {
                Ok(chunk) => self.cur = Some(chunk?),
                Err(_) => return Ok(0),
            }
        }
    }
}

impl Drop for DirectReader {
    fn drop(&mut self) {
        self.rx = None;
        self.free = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A seekable window `[offset, offset + len)` of a disk read from the device (direct I/O where
/// allowed), for the hash partition, whose tree is read in a few block-sized pieces.
#[derive(Debug)]
pub struct DirectWindow {
    file: File,
    mode: IoMode,
    offset: u64,
    len: u64,
    pos: u64,
    bounce: AlignedBuf,
}

impl DirectWindow {
    /// Opens the window.
    pub fn new(path: &Path, offset: u64, len: u64, policy: DirectPolicy) -> Result<Self> {
        let disk = open(path, false, None, policy)?;
        if disk.mode == IoMode::Buffered && is_block_device(path) {
            abos_fsio::drop_cached(&disk.file, offset, len);
        }
        let align = disk.mode.align();
        Ok(DirectWindow {
            file: disk.file,
            mode: disk.mode,
            offset,
            len,
            pos: 0,
            bounce: AlignedBuf::new(BUF_BYTES, align),
        })
    }
}

impl Read for DirectWindow {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || out.is_empty() {
            return Ok(0);
        }
        let align = self.mode.align() as u64;
        let abs = self.offset + self.pos;
        let start = abs - abs % align;
        let skip = (abs - start) as usize;
        let want = (out.len() as u64).min(self.len - self.pos) as usize;
        // skip < align, so skip + want rounded up to the alignment fits in the bounce buffer.
        let want = want.min(BUF_BYTES - align as usize);
        let span = ((skip + want) as u64).div_ceil(align) * align;
        let buf = &mut self.bounce.as_mut_slice()[..span as usize];
        self.file.read_exact_at(buf, start)?;
        out[..want].copy_from_slice(&buf[skip..skip + want]);
        self.pos += want as u64;
        Ok(want)
    }
}

impl Seek for DirectWindow {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        let Some(new) = new else {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the window",
            ));
        };
        self.pos = new;
        Ok(new)
    }
}

/// One partition of a disk as a `Read + Write + Seek` target, written like an image (direct I/O
/// on block devices through a [`Writer`], see the module documentation) by writers that seek:
/// the delta executor (`abos_delta::execute::Target`).
///
/// Contiguous writes stream through one [`Writer`] (so they overlap with the caller's work and
/// reach the device in [`BUF_BYTES`] requests); a write elsewhere, a read or [`DiskTarget::sync`]
/// first waits until every earlier byte is written. Bytes around a write that starts or ends
/// inside a device block are kept. Positions are relative to the partition's first byte; a write
/// past its end is refused. Reads come from the device ([`DirectWindow`]), not the page cache.
///
/// ```no_run
/// # fn demo(disk: &std::path::Path) -> updog::error::Result<()> {
/// use std::io::{Seek, SeekFrom, Write};
/// use updog::blockio::{DirectPolicy, DiskTarget};
/// let mut part = DiskTarget::open(disk, 1 << 20, 64 << 20, DirectPolicy::from_env())?;
/// part.seek(SeekFrom::Start(4096)).unwrap();
/// part.write_all(b"chunk").unwrap();
/// part.sync()?; // written and durable (fdatasync)
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct DiskTarget {
    path: PathBuf,
    first_byte: u64,
    len: u64,
    policy: DirectPolicy,
    pos: u64,
    /// The writer of the current run of contiguous writes, and where its next byte goes.
    writer: Option<(Writer<()>, u64)>,
    reader: Option<DirectWindow>,
    /// For `fdatasync` (a flush covers the device whatever the descriptor's flags).
    sync_file: File,
    mode: Option<IoMode>,
    /// A reader checking behind the writes, told where they are (see [`Written`]).
    watch: Option<SyncSender<Written>>,
    /// The end of the furthest write so far (partition-relative).
    high_water: u64,
}

impl DiskTarget {
    /// The `len` bytes of `path` from `first_byte`.
    pub fn open(path: &Path, first_byte: u64, len: u64, policy: DirectPolicy) -> Result<Self> {
        let sync_file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .context(error::DiskOpenSnafu { path })?;
        Ok(DiskTarget {
            path: path.to_path_buf(),
            first_byte,
            len,
            policy,
            pos: 0,
            writer: None,
            reader: None,
            sync_file,
            mode: None,
            watch: None,
            high_water: 0,
        })
    }

    /// Tells `watch` as the writes reach the device (a reader that checks behind them; it is
    /// told too when bytes before the furthest write are written again).
    pub fn watched(mut self, watch: SyncSender<Written>) -> Self {
        self.watch = Some(watch);
        self
    }

    /// Waits until every byte written so far is on the device (not yet flushed: see
    /// [`DiskTarget::sync`]).
    pub fn finish_writes(&mut self) -> Result<()> {
        if let Some((writer, _)) = self.writer.take() {
            self.mode = Some(writer.finish()?.mode);
        }
        Ok(())
    }

    /// Writes what is pending and flushes the device (`fdatasync`).
    pub fn sync(&mut self) -> Result<()> {
        self.finish_writes()?;
        self.sync_file
            .sync_data()
            .context(error::DiskSyncSnafu { path: &self.path })
    }

    /// How the last finished run of writes reached the device (`None` before one finished).
    pub fn mode(&self) -> Option<IoMode> {
        self.mode
    }

    fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.pos + bytes.len() as u64;
        if end > self.len {
            return Err(Error::DiskWrite {
                path: self.path.clone(),
                offset: self.first_byte + self.pos,
                source: std::io::Error::other(format!(
                    "{} bytes at {} do not fit the {}-byte partition",
                    bytes.len(),
                    self.pos,
                    self.len
                )),
            });
        }
        if self
            .writer
            .as_ref()
            .is_some_and(|(_, next)| *next != self.pos)
        {
            self.finish_writes()?;
        }
        let (writer, next) = match self.writer.as_mut() {
            Some(w) => w,
            None => {
                // The window of a reader may hold bytes about to change.
                self.reader = None;
                let disk = open_for_write(&self.path, self.first_byte, self.len, self.policy)?;
                let at = self.first_byte + self.pos;
                let watch = self.watch.clone();
                if let Some(tx) = &watch
                    && self.pos < self.high_water
                {
                    // A reader that stopped has failed; its error is reported by its owner.
                    let _ = tx.send(Written::Rewrite { at });
                }
                let w = Writer::watched(
                    disk,
                    &self.path,
                    at,
                    |()| Ok(None),
                    move |end, mode| {
                        if let Some(tx) = &watch {
                            let _ = tx.send(Written::Upto { end, mode });
                        }
                        Ok(())
                    },
                )?;
                self.writer.insert((w, self.pos))
            }
        };
        writer.push(bytes)?;
        *next = end;
        self.pos = end;
        self.high_water = self.high_water.max(end);
        Ok(())
    }

    fn read_bytes(&mut self, out: &mut [u8]) -> Result<usize> {
        self.finish_writes()?;
        let reader = match self.reader.as_mut() {
            Some(r) => r,
            None => self.reader.insert(DirectWindow::new(
                &self.path,
                self.first_byte,
                self.len,
                self.policy,
            )?),
        };
        let io = |source| Error::DiskRead {
            path: self.path.clone(),
            offset: self.first_byte + self.pos,
            source,
        };
        reader.seek(SeekFrom::Start(self.pos)).map_err(io)?;
        let n = reader.read(out).map_err(io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

fn to_io(e: Error) -> std::io::Error {
    std::io::Error::other(e)
}

impl std::io::Write for DiskTarget {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_bytes(buf).map_err(to_io)?;
        Ok(buf.len())
    }

    /// Waits for the pending writes (does not flush the device: see [`DiskTarget::sync`]).
    fn flush(&mut self) -> std::io::Result<()> {
        self.finish_writes().map_err(to_io)
    }
}

impl Read for DiskTarget {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        self.read_bytes(out).map_err(to_io)
    }
}

impl Seek for DiskTarget {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let new = match to {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = new.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start of the partition",
            )
        })?;
        Ok(self.pos)
    }
}
