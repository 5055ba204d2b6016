//! The device edge: opening a disk-image file or block device, locking it, and applying a
//! [`WritePlan`] with `fsync` barriers.
//!
//! Locking: a read-write open takes an exclusive advisory `flock` on the disk (waiting up to a
//! bounded time), so two signpost/updog processes never interleave table writes. Read-only opens
//! take no lock: the reader tolerates a concurrent writer by construction (see [`crate::gpt`]),
//! and `status` must not hang behind a long image write.

use crate::error::{self, Result};
use crate::gpt::{WritePlan, WriteStep};
use snafu::{IntoError, ResultExt, ensure};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long a read-write open waits for the lock by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(10);
const LOCK_POLL: Duration = Duration::from_millis(20);

/// How to open a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read only, no lock.
    ReadOnly,
    /// Read-write with an exclusive lock, waiting at most this long for it.
    ReadWrite {
        /// Longest wait for the lock.
        lock_wait: Duration,
    },
}

/// What kind of disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskKind {
    /// A regular file holding a disk image.
    ImageFile,
    /// A block device.
    BlockDevice,
}

#[derive(Debug)]
pub(crate) struct Device {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) kind: DiskKind,
    pub(crate) writable: bool,
    pub(crate) len: u64,
}

fn is_read_only_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    ) || e.raw_os_error() == Some(libc::EROFS)
        || e.raw_os_error() == Some(libc::EPERM)
}

impl Device {
    pub(crate) fn open(path: &Path, access: Access) -> Result<Device> {
        let meta = std::fs::metadata(path).context(error::OpenDiskSnafu { path })?;
        let ft = meta.file_type();
        let kind = if ft.is_file() {
            DiskKind::ImageFile
        } else if ft.is_block_device() {
            DiskKind::BlockDevice
        } else {
            return error::NotADiskSnafu { path }.fail();
        };
        let writable = matches!(access, Access::ReadWrite { .. });
        if writable && kind == DiskKind::ImageFile {
            // Refuse even when running as root: an image without write permission is meant to
            // stay unchanged.
            if meta.permissions().readonly() {
                let e = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the image file has no write permission",
                );
                return Err(e).context(error::DiskReadOnlySnafu { path });
            }
        }
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| {
                if writable && is_read_only_error(&e) {
                    error::DiskReadOnlySnafu { path }.into_error(e)
                } else {
                    error::OpenDiskSnafu { path }.into_error(e)
                }
            })?;
        if let Access::ReadWrite { lock_wait } = access {
            lock(&file, path, lock_wait)?;
        }
        let len = match kind {
            DiskKind::ImageFile => meta.len(),
            DiskKind::BlockDevice => (&file)
                .seek(SeekFrom::End(0))
                .context(error::ReadTableSnafu { path })?,
        };
        Ok(Device {
            path: path.to_path_buf(),
            file,
            kind,
            writable,
            len,
        })
    }

    /// Logical sector size: from the kernel for block devices, probed from the table for files.
    pub(crate) fn kernel_sector_size(&mut self) -> Result<Option<u64>> {
        match self.kind {
            DiskKind::ImageFile => Ok(None),
            DiskKind::BlockDevice => gptman::linux::get_sector_size(&mut self.file)
                .map(Some)
                .context(error::SectorSizeSnafu { path: &self.path }),
        }
    }

    /// Applies the plan in order, with an fsync at each barrier.
    pub(crate) fn apply(&mut self, plan: &WritePlan) -> Result<()> {
        let path = &self.path;
        ensure!(self.writable, error::OpenedReadOnlySnafu { path });
        for step in &plan.steps {
            match step {
                WriteStep::Write { offset, bytes } => {
                    self.file.write_all_at(bytes, *offset).map_err(|e| {
                        if is_read_only_error(&e) {
                            error::DiskReadOnlySnafu { path }.into_error(e)
                        } else {
                            error::WriteTableSnafu {
                                path,
                                offset: *offset,
                            }
                            .into_error(e)
                        }
                    })?;
                }
                WriteStep::Sync => self
                    .file
                    .sync_all()
                    .context(error::SyncDiskSnafu { path })?,
            }
        }
        Ok(())
    }
}

fn lock(file: &File, path: &Path, wait: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(TryLockError::WouldBlock) => {
                if start.elapsed() >= wait {
                    let holder = lock_holder(file);
                    return error::DiskLockedSnafu {
                        path,
                        waited: start.elapsed(),
                        holder,
                    }
                    .fail();
                }
                std::thread::sleep(LOCK_POLL.min(wait.saturating_sub(start.elapsed())));
            }
            Err(TryLockError::Error(e)) => return Err(e).context(error::LockDiskSnafu { path }),
        }
    }
}

/// The pid holding a FLOCK on this file's inode according to `/proc/locks` (best effort).
fn lock_holder(file: &File) -> Option<u32> {
    let meta = file.metadata().ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    parse_lock_holder(
        &locks,
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino(),
    )
}

fn parse_lock_holder(locks: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; waiters have "->" after the id.
        if fields.len() < 6 || fields[1] != "FLOCK" {
            return None;
        }
        let mut id = fields[5].split(':');
        let maj = u32::from_str_radix(id.next()?, 16).ok()?;
        let min = u32::from_str_radix(id.next()?, 16).ok()?;
        let inode: u64 = id.next()?.parse().ok()?;
        (maj == major && min == minor && inode == ino)
            .then(|| fields[4].parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn proc_locks_parsing() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 fd:01:77 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 4343 fd:01:77 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 5 103:02:77 0 EOF\n";
        assert_eq!(parse_lock_holder(locks, 0xfd, 1, 77), Some(4242));
        assert_eq!(parse_lock_holder(locks, 0x103, 2, 77), Some(5));
        assert_eq!(parse_lock_holder(locks, 0xfd, 1, 78), None);
    }
}
