//! Durable file I/O for every abos crate: one behaviour and one error type, so that the tools
//! that write repositories, manifests, kernel configs and an updater's state cannot drift apart.
//!
//! # The behaviour, the same for every caller
//! - **Modes are named by the caller.** Every call that creates a file takes a [`Mode`]: either
//!   [`Mode::Exact`] bits, set with `fchmod` after the exclusive create so the umask cannot change
//!   them, or [`Mode::Umask`] bits less the process umask, as `open(2)`, `cp` and tuftool do.
//!   [`PUBLIC`] (0666 less the umask: 0644 under the usual 022) is for files other users read (a
//!   repository a web server serves, a manifest, build outputs: the operator's umask decides who
//!   may read them); [`PRIVATE`] (exactly 0600) for state and secrets.
//! - **Atomic replacement.** [`write_atomic`] and [`AtomicFile`] write a new temporary file in the
//!   destination's directory, then fsync it, rename it over the destination and fsync the
//!   directory. Readers see the old content or the new one, never a mix; after a power loss the
//!   destination holds one of them.
//! - **No link is followed at the destination.** The temporary file is created exclusively with
//!   `O_NOFOLLOW` (a link planted under its name is refused, never written through), and the
//!   rename replaces a symbolic link at the destination instead of writing to its target. Links
//!   in the directory part of the path are followed: the caller chose that directory (updog
//!   refuses them with its own per-level checks before it writes).
//! - **One directory.** The directory is opened once; the temporary file is created, renamed and
//!   the directory fsynced through that one descriptor, so a directory renamed meanwhile cannot
//!   split the steps across two places.
//! - **Nothing left behind on failure.** Every error removes the temporary file, and so does
//!   dropping an [`AtomicFile`] without committing it. Only a crash can leave one; its name starts
//!   with [`TEMP_PREFIX`] (`.tmp-<name>-<16 hex digits>`), so cleaners can recognise it
//!   ([`is_temp_name`]).
//! - **Directories are fsynced** after every rename, create and remove, except with
//!   [`AtomicFile::commit_batched`], where the caller fsyncs the directory once for a batch
//!   ([`sync_dir`]).
//! - **Create-new never replaces.** [`create_new`] and [`write_new`] fail with
//!   [`std::io::ErrorKind::AlreadyExists`] for any existing entry, a dangling link included.
//!
//! Every error is an [`Error`]: the operation that failed, the path it concerned and the
//! operating-system error. Crates wrap it in a variant of their own error enum.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("manifest.json");
//! abos_fsio::write_atomic(&path, b"{}\n", abos_fsio::PUBLIC).unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"{}\n");
//! ```

use rustix::fs::{AtFlags, Mode as RawMode, OFlags, RenameFlags};
use rustix::io::Errno;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::File;
use std::hash::{BuildHasher, Hasher};
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The mode of a file this crate creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Exactly these bits, whatever the umask.
    Exact(u32),
    /// These bits less the process umask (and as a default ACL of the directory says), like
    /// `open(2)` with `O_CREAT`.
    Umask(u32),
}

/// Files other users may read (repositories, manifests, build outputs): 0666 less the umask,
/// 0644 under the usual 022, as tuftool and `cp` leave them.
pub const PUBLIC: Mode = Mode::Umask(0o666);
/// Files only their owner may read (state, keys): exactly 0600.
pub const PRIVATE: Mode = Mode::Exact(0o600);
/// Start of the name of every temporary file this crate creates.
pub const TEMP_PREFIX: &str = ".tmp-";

/// Whether `name` (a file name, not a path) is one of this crate's temporary files.
pub fn is_temp_name(name: &OsStr) -> bool {
    name.as_bytes().starts_with(TEMP_PREFIX.as_bytes())
}

/// What was being done when an [`Error`] happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Opening the directory that holds (or will hold) the file.
    OpenDir,
    /// Creating the temporary file next to the destination.
    CreateTemp,
    /// Writing the content.
    Write,
    /// fsync of the file.
    SyncFile,
    /// Renaming the temporary file over the destination.
    Rename,
    /// fsync of the directory.
    SyncDir,
    /// Creating a new file.
    Create,
    /// Removing a file.
    Remove,
    /// Opening a file (to fsync it).
    Open,
    /// Reading a directory (to fsync a tree).
    ReadDir,
    /// The path has no file name (`/`, `..`).
    NoFileName,
}

/// The step's short name: `rename into place`, `fsync directory`, … (for a caller's message
/// such as "failed to write X (rename into place)").
impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::OpenDir => "open directory",
            Op::CreateTemp => "create temp file",
            Op::Write => "write",
            Op::SyncFile => "fsync file",
            Op::Rename => "rename into place",
            Op::SyncDir => "fsync directory",
            Op::Create => "create",
            Op::Remove => "remove",
            Op::Open => "open",
            Op::ReadDir => "read directory",
            Op::NoFileName => "no file name",
        })
    }
}

impl Op {
    fn describe(self) -> &'static str {
        match self {
            Op::OpenDir => "failed to open the directory",
            Op::CreateTemp => "failed to create a temporary file to write",
            Op::Write => "failed to write",
            Op::SyncFile => "failed to fsync",
            Op::Rename => "failed to rename a temporary file into place as",
            Op::SyncDir => "failed to fsync the directory",
            Op::Create => "failed to create",
            Op::Remove => "failed to remove",
            Op::Open => "failed to open",
            Op::ReadDir => "failed to read the directory",
            Op::NoFileName => "cannot write to a path without a file name:",
        }
    }
}

/// A failed file operation: what was done, on which path, and the operating system's error
/// (the [`std::error::Error::source`]).
#[derive(Debug)]
pub struct Error {
    op: Op,
    path: PathBuf,
    source: io::Error,
}

impl Error {
    fn new(op: Op, path: &Path, source: impl Into<io::Error>) -> Self {
        Self {
            op,
            path: path.to_path_buf(),
            source: source.into(),
        }
    }

    /// The operation that failed.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The path concerned (the destination, or the directory for [`Op::OpenDir`],
    /// [`Op::SyncDir`] and [`Op::ReadDir`]).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The operating system's error kind (`AlreadyExists` when create-new found an entry).
    pub fn kind(&self) -> io::ErrorKind {
        self.source.kind()
    }

    /// The operating system's error.
    pub fn io_error(&self) -> &io::Error {
        &self.source
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.op.describe(), self.path.display())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// For callers whose errors carry an `io::Error`: same kind, this error as the message and
/// source.
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        io::Error::new(e.kind(), e)
    }
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The directory of `path` (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

fn split(path: &Path) -> Result<(&Path, &OsStr)> {
    let name = path.file_name().ok_or_else(|| {
        Error::new(
            Op::NoFileName,
            path,
            io::Error::from(io::ErrorKind::InvalidInput),
        )
    })?;
    Ok((parent_dir(path), name))
}

fn open_dir(dir: &Path) -> Result<OwnedFd> {
    rustix::fs::open(
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        RawMode::empty(),
    )
    .map_err(|e| Error::new(Op::OpenDir, dir, e))
}

fn raw_mode(bits: u32) -> RawMode {
    RawMode::from_raw_mode(bits & 0o7777)
}

/// Creates `name` in `dir` exclusively, never through a link, with `mode`.
fn create_exclusive(dir: &OwnedFd, name: &OsStr, mode: Mode) -> io::Result<File> {
    let (Mode::Exact(bits) | Mode::Umask(bits)) = mode;
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        raw_mode(bits),
    )?;
    if let Mode::Exact(bits) = mode {
        // The umask may have taken bits away: set exactly what was asked.
        if let Err(e) = rustix::fs::fchmod(&fd, raw_mode(bits)) {
            let _ = rustix::fs::unlinkat(dir, name, AtFlags::empty());
            return Err(e.into());
        }
    }
    Ok(File::from(fd))
}

/// `.tmp-<name>-<16 hex digits>`; the name is cut to 200 bytes so that the whole stays within
/// the 255 bytes a file name may have.
fn temp_name(name: &OsStr) -> OsString {
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    let bytes = name.as_bytes();
    let mut out = TEMP_PREFIX.as_bytes().to_vec();
    out.extend_from_slice(&bytes[..bytes.len().min(200)]);
    out.extend_from_slice(format!("-{random:016x}").as_bytes());
    OsString::from_vec(out)
}

/// A file being written under a temporary name, which replaces its destination on
/// [`commit`](AtomicFile::commit). Dropped without a commit, it removes its temporary file.
#[derive(Debug)]
pub struct AtomicFile {
    dir: OwnedFd,
    path: PathBuf,
    name: OsString,
    temp: OsString,
    file: Option<File>,
}

enum Finish {
    Replace,
    New,
}

impl AtomicFile {
    /// Creates the temporary file for `path` in `path`'s directory, with `mode`.
    pub fn create(path: &Path, mode: Mode) -> Result<Self> {
        let (dir_path, name) = split(path)?;
        let dir = open_dir(dir_path)?;
        // A random name that exists already (a crash's leftover, a planted link) is skipped.
        let mut attempts = 0;
        loop {
            let temp = temp_name(name);
            match create_exclusive(&dir, &temp, mode) {
                Ok(file) => {
                    return Ok(Self {
                        dir,
                        path: path.to_path_buf(),
                        name: name.to_owned(),
                        temp,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempts < 100 => {
                    attempts += 1;
                }
                Err(e) => return Err(Error::new(Op::CreateTemp, path, e)),
            }
        }
    }

    /// The destination.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary file's path (for messages; it disappears on commit or drop).
    pub fn temp_path(&self) -> PathBuf {
        parent_dir(&self.path).join(&self.temp)
    }

    /// The open temporary file.
    pub fn as_file(&self) -> &File {
        self.file.as_ref().expect("present until commit or drop")
    }

    /// The open temporary file, mutably.
    pub fn as_file_mut(&mut self) -> &mut File {
        self.file.as_mut().expect("present until commit or drop")
    }

    /// fsync, rename over the destination (a link there is replaced, not followed), fsync of
    /// the directory.
    pub fn commit(self) -> Result<()> {
        self.finish(Finish::Replace, true)
    }

    /// Like [`commit`](AtomicFile::commit) but fails with `AlreadyExists` (and removes the
    /// temporary file) if the destination exists.
    pub fn commit_new(self) -> Result<()> {
        self.finish(Finish::New, true)
    }

    /// fsync and rename, leaving the directory's fsync to the caller, who calls [`sync_dir`]
    /// once after a batch of files. Until then the rename may not survive a power loss.
    pub fn commit_batched(self) -> Result<()> {
        self.finish(Finish::Replace, false)
    }

    fn finish(mut self, how: Finish, sync_dir: bool) -> Result<()> {
        let file = self.file.take().expect("present until commit or drop");
        file.sync_all()
            .map_err(|e| Error::new(Op::SyncFile, &self.path, e))?;
        drop(file);
        let renamed = match how {
            Finish::Replace => rustix::fs::renameat(&self.dir, &self.temp, &self.dir, &self.name),
            Finish::New => rename_noreplace(&self.dir, &self.temp, &self.name),
        };
        renamed.map_err(|e| Error::new(Op::Rename, &self.path, e))?;
        // Renamed: nothing to remove any more.
        self.temp.clear();
        if sync_dir {
            rustix::fs::fsync(&self.dir)
                .map_err(|e| Error::new(Op::SyncDir, parent_dir(&self.path), e))?;
        }
        Ok(())
    }
}

/// renameat2(RENAME_NOREPLACE), or link + unlink where the file system does not support it.
fn rename_noreplace(dir: &OwnedFd, from: &OsStr, to: &OsStr) -> rustix::io::Result<()> {
    match rustix::fs::renameat_with(dir, from, dir, to, RenameFlags::NOREPLACE) {
        Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {
            rustix::fs::linkat(dir, from, dir, to, AtFlags::empty())?;
            let _ = rustix::fs::unlinkat(dir, from, AtFlags::empty());
            Ok(())
        }
        other => other,
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.as_file_mut().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.as_file_mut().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.as_file_mut().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if !self.temp.is_empty() {
            drop(self.file.take());
            let _ = rustix::fs::unlinkat(&self.dir, &self.temp, AtFlags::empty());
        }
    }
}

/// Replaces `path` with `bytes`, atomically and durably, with `mode` (see the crate
/// documentation for the steps).
pub fn write_atomic(path: &Path, bytes: &[u8], mode: Mode) -> Result<()> {
    let mut file = AtomicFile::create(path, mode)?;
    file.write_all(bytes)
        .map_err(|e| Error::new(Op::Write, path, e))?;
    file.commit()
}

/// Writes `bytes` to a new `path`, atomically and durably, with `mode`: fails with
/// `AlreadyExists` if anything (a file, a directory, a link) is at `path`. Readers never see a
/// partial file.
pub fn write_new(path: &Path, bytes: &[u8], mode: Mode) -> Result<()> {
    let mut file = AtomicFile::create(path, mode)?;
    file.write_all(bytes)
        .map_err(|e| Error::new(Op::Write, path, e))?;
    file.commit_new()
}

/// Creates a new, empty `path` with `mode` and returns it open for writing. Exclusive:
/// fails with `AlreadyExists` if anything is at `path` (a link is neither followed nor
/// replaced). The directory entry is durable when this returns; the content is the caller's to
/// fsync ([`File::sync_all`]).
pub fn create_new(path: &Path, mode: Mode) -> Result<File> {
    let (dir_path, name) = split(path)?;
    let dir = open_dir(dir_path)?;
    let file = create_exclusive(&dir, name, mode).map_err(|e| Error::new(Op::Create, path, e))?;
    rustix::fs::fsync(&dir).map_err(|e| Error::new(Op::SyncDir, dir_path, e))?;
    Ok(file)
}

/// Removes the file (or link: it is not followed) at `path` and fsyncs its directory. Returns
/// whether there was something to remove. A directory is not removed (`EISDIR`).
pub fn remove(path: &Path) -> Result<bool> {
    let (dir_path, name) = split(path)?;
    let dir = match open_dir(dir_path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        other => other?,
    };
    match rustix::fs::unlinkat(&dir, name, AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(Error::new(Op::Remove, path, e)),
    }
    rustix::fs::fsync(&dir).map_err(|e| Error::new(Op::SyncDir, dir_path, e))?;
    Ok(true)
}

/// fsyncs a directory, so that the creations, renames and removals in it survive a power loss.
pub fn sync_dir(dir: &Path) -> Result<()> {
    let fd = open_dir(dir)?;
    rustix::fs::fsync(&fd).map_err(|e| Error::new(Op::SyncDir, dir, e))
}

/// fsyncs a regular file, without following a link (a link fails with `ELOOP`).
pub fn sync_file(path: &Path) -> Result<()> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        RawMode::empty(),
    )
    .map_err(|e| Error::new(Op::Open, path, e))?;
    rustix::fs::fsync(&fd).map_err(|e| Error::new(Op::SyncFile, path, e))
}

/// fsyncs every regular file under `dir`, then each directory after its content (`dir` last),
/// for a tree written without fsync (a staging directory before its rename into place). Links
/// are not followed and special files are not opened; their entries become durable with their
/// directory.
pub fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::new(Op::ReadDir, dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::new(Op::ReadDir, dir, e))?;
        let path = entry.path();
        // The entry's own type (lstat): a link to a directory is not a directory here.
        let ft = entry
            .file_type()
            .map_err(|e| Error::new(Op::ReadDir, dir, e))?;
        if ft.is_dir() {
            sync_tree(&path)?;
        } else if ft.is_file() {
            sync_file(&path)?;
        }
    }
    sync_dir(dir)
}

/// Drops the clean cached pages of `len` bytes at `offset` of `file` (`posix_fadvise`
/// `DONTNEED`), so that the next buffered read of them goes to the device. Best effort: tmpfs
/// keeps them (they are its storage), and dirty pages stay until written back.
pub fn drop_cached(file: &File, offset: u64, len: u64) {
    let _ = rustix::fs::fadvise(
        file,
        offset,
        std::num::NonZeroU64::new(len),
        rustix::fs::Advice::DontNeed,
    );
}

/// Makes the next buffered reads of a block device come from the device rather than from pages
/// an earlier reader or writer left in its page cache: the device is flushed (`fsync`: dirty
/// pages written back) and its clean cached pages dropped. A regular file (a disk image) is left
/// alone: its file system's cache is what every reader of the file sees. Returns whether `path`
/// is a block device.
pub fn read_from_device(path: &Path) -> Result<bool> {
    // A path that cannot be examined is not a device here: the caller's own open reports it.
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(false);
    };
    if !std::os::unix::fs::FileTypeExt::is_block_device(&meta.file_type()) {
        return Ok(false);
    }
    let file = File::open(path).map_err(|e| Error::new(Op::Open, path, e))?;
    rustix::fs::fsync(&file).map_err(|e| Error::new(Op::SyncFile, path, e))?;
    drop_cached(&file, 0, 0);
    Ok(true)
}

#[cfg(test)]
mod test {
    use super::*;

    /// Regular files and missing paths are left to the caller (its open reports a missing one);
    /// block devices are exercised by os-image's loop-device test.
    #[test]
    fn read_from_device_leaves_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("disk.img");
        std::fs::write(&f, b"data").unwrap();
        assert!(!read_from_device(&f).unwrap());
        assert!(!read_from_device(&dir.path().join("missing")).unwrap());
    }

    #[test]
    fn temp_names_are_recognised_and_bounded() {
        let long = OsString::from("x".repeat(255));
        let t = temp_name(&long);
        assert!(t.len() <= 255, "{}", t.len());
        assert!(is_temp_name(&t));
        assert_ne!(temp_name(OsStr::new("a")), temp_name(OsStr::new("a")));
        assert!(!is_temp_name(OsStr::new("timestamp.json")));
    }

    #[test]
    fn a_path_without_a_file_name_is_refused() {
        let e = write_atomic(Path::new("/"), b"x", PUBLIC).unwrap_err();
        assert_eq!(e.op(), Op::NoFileName);
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }
}
