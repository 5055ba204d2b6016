//! Where a repository is written: the [`RepoStore`] seam and its local-directory backend.
//!
//! The release logic only ever asks a store to hold a target file under its consistent name,
//! and to hold a metadata file. The store makes each write atomic and durable; the caller makes
//! the order safe (targets, then versioned metadata, then `timestamp.json` last). The
//! object-store backend ([`s3::S3Store`], `s3://bucket/prefix`) implements the same trait
//! without touching the release logic.

pub mod s3;

use crate::error::{self, Result};
use snafu::ResultExt;
use std::fmt;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use update_metadata::{Arch, Variant};
use url::Url;

/// How a local target file is put into the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetMode {
    /// Copy the bytes (default; the repository does not depend on the build directory).
    #[default]
    Copy,
    /// Hard-link the file when it is on the same filesystem, else copy.
    Hardlink,
}

/// The writing side of a repository.
pub trait RepoStore: fmt::Debug + Send + Sync {
    /// Human description for logs and errors (a path or a bucket URL).
    fn describe(&self) -> String;
    /// URL a TUF client reads this store's metadata from.
    fn metadata_url(&self) -> Result<Url>;
    /// URL a TUF client reads this store's targets from.
    fn targets_url(&self) -> Result<Url>;
    /// Whether a metadata file (`timestamp.json`, `3.root.json`, …) exists.
    fn has_metadata(&self, file_name: &str) -> Result<bool>;
    /// Reads a metadata file back (`None` if absent).
    fn read_metadata(&self, file_name: &str) -> Result<Option<Vec<u8>>>;
    /// Stores a target from a local file under its consistent name (`<sha256>.<name>`),
    /// atomically. A target already present under that name is kept (the name fixes the
    /// content). Durable once [`RepoStore::sync_targets`] returns. Says whether this call
    /// created the file (a failed publish removes only what it created).
    fn put_target_file(&self, file_name: &str, source: &Path, mode: TargetMode) -> Result<Placed>;
    /// Stores a target from bytes under its consistent name, atomically. Durable once
    /// [`RepoStore::sync_targets`] returns.
    fn put_target_bytes(&self, file_name: &str, bytes: &[u8]) -> Result<Placed>;
    /// Removes a target this run created and no metadata references (cleanup after a failed
    /// publish). A target that is already gone is not an error.
    fn remove_target(&self, file_name: &str) -> Result<()>;
    /// Removes a versioned metadata file this run wrote and that nothing references (cleanup
    /// after a publish that lost to another one before its `timestamp.json` landed). Absent is
    /// not an error. (Default: leave it; an unreferenced versioned file is harmless.)
    fn remove_metadata(&self, file_name: &str) -> Result<()> {
        let _ = file_name;
        Ok(())
    }
    /// Whether versioned metadata (`V.snapshot.json`, …) is written create-only, so a
    /// publish must pick a version whose files are not there yet (an object store shared by
    /// publishers without a lock). Default: false (replaced in place under the writer lock).
    fn versioned_metadata_is_create_only(&self) -> bool {
        false
    }
    /// Makes every target stored so far durable (called once, before any metadata is written).
    fn sync_targets(&self) -> Result<()>;
    /// Stores a metadata file atomically and durably, replacing any previous one of that name.
    fn put_metadata(&self, file_name: &str, bytes: &[u8]) -> Result<()>;
    /// Takes the exclusive writer lock for this variant/arch's metadata, held until the guard
    /// is dropped, so two publishers cannot both read version N and both write N+1 (the later
    /// timestamp would silently drop the other's release). Fails at once if it is held.
    fn lock(&self) -> Result<StoreLock>;
}

/// Whether a target put created the file or found it already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placed {
    /// This call created the file.
    Created,
    /// The file was already present (from an earlier release, or another publisher); it is
    /// never removed by this run's cleanup.
    Present,
}

/// A held writer lock (released on drop).
#[derive(Debug)]
pub struct StoreLock {
    _file: Option<File>,
}

impl StoreLock {
    /// A lock guard for stores whose backend serialises writers by other means.
    pub fn none() -> StoreLock {
        StoreLock { _file: None }
    }
}

/// Name of the lock file in a local metadata directory.
pub const LOCK_FILE: &str = ".pubsys.lock";

/// A repository in local directories: metadata in one, targets in another.
#[derive(Debug, Clone)]
pub struct LocalStore {
    metadata_dir: PathBuf,
    targets_dir: PathBuf,
}

impl LocalStore {
    /// A store over two explicit directories (created when first written).
    pub fn new(metadata_dir: impl Into<PathBuf>, targets_dir: impl Into<PathBuf>) -> Self {
        LocalStore {
            metadata_dir: metadata_dir.into(),
            targets_dir: targets_dir.into(),
        }
    }

    /// Our layout: `DIR/metadata/<variant>/<arch>/` and a shared `DIR/targets/`.
    pub fn repo_dir(dir: &Path, variant: &Variant, arch: Arch) -> Self {
        Self::new(
            dir.join("metadata")
                .join(variant.to_string())
                .join(arch.to_string()),
            dir.join("targets"),
        )
    }

    /// Bottlerocket's `--outdir` layout: `DIR/<variant>/<arch>/` and a shared `DIR/targets/`.
    pub fn outdir(dir: &Path, variant: &Variant, arch: Arch) -> Self {
        Self::new(
            dir.join(variant.to_string()).join(arch.to_string()),
            dir.join("targets"),
        )
    }

    /// The metadata directory.
    pub fn metadata_dir(&self) -> &Path {
        &self.metadata_dir
    }

    /// The targets directory.
    pub fn targets_dir(&self) -> &Path {
        &self.targets_dir
    }
}

/// A `file://` URL for a directory, with the trailing slash URL joining needs.
pub fn dir_url(path: &Path) -> Result<Url> {
    Ok(abos_repo_core::dir_path_url(path)?)
}

fn ensure_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).context(error::StoreIoSnafu {
        action: "create directory",
        path: dir,
    })
}

/// Mode of published files: 0666 less the umask (0644 under the usual 022), as tuftool writes
/// them, so a web server that does not run as our user can read them (tempfile's 0600 once made
/// a non-root web server answer 404 for `timestamp.json`).
const PUBLISHED: abos_fsio::Mode = abos_fsio::PUBLIC;

/// Writes `bytes` to `dir/name` atomically and durably (`abos-fsio`: temp file in `dir`, fsync,
/// rename, fsync of the directory).
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    ensure_dir(dir)?;
    let dest = dir.join(name);
    abos_fsio::write_atomic(&dest, bytes, PUBLISHED).context(error::StoreFileSnafu { path: &dest })
}

impl RepoStore for LocalStore {
    fn describe(&self) -> String {
        format!(
            "metadata {} / targets {}",
            self.metadata_dir.display(),
            self.targets_dir.display()
        )
    }

    fn metadata_url(&self) -> Result<Url> {
        dir_url(&self.metadata_dir)
    }

    fn targets_url(&self) -> Result<Url> {
        dir_url(&self.targets_dir)
    }

    fn has_metadata(&self, file_name: &str) -> Result<bool> {
        let path = self.metadata_dir.join(file_name);
        match fs::symlink_metadata(&path) {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).context(error::StoreIoSnafu {
                action: "stat",
                path,
            }),
        }
    }

    fn read_metadata(&self, file_name: &str) -> Result<Option<Vec<u8>>> {
        let path = self.metadata_dir.join(file_name);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context(error::StoreIoSnafu {
                action: "read",
                path,
            }),
        }
    }

    fn put_target_file(&self, file_name: &str, source: &Path, mode: TargetMode) -> Result<Placed> {
        ensure_dir(&self.targets_dir)?;
        let dest = self.targets_dir.join(file_name);
        let src_len = fs::metadata(source)
            .context(error::ReadInputSnafu { path: source })?
            .len();
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == src_len) {
            return Ok(Placed::Present);
        }
        // Either way the directory entry is made durable by `sync_targets`, once for all targets.
        if mode == TargetMode::Hardlink {
            // The same inode under a temporary name (its mode is the source's), then renamed.
            let tmp_path = self.targets_dir.join(format!(
                "{}{}-{file_name}",
                abos_fsio::TEMP_PREFIX,
                std::process::id()
            ));
            let _ = fs::remove_file(&tmp_path);
            if fs::hard_link(source, &tmp_path).is_ok() {
                let placed = abos_fsio::sync_file(&tmp_path)
                    .context(error::StoreFileSnafu { path: &tmp_path })
                    .and_then(|()| {
                        fs::rename(&tmp_path, &dest).context(error::StoreIoSnafu {
                            action: "rename into place",
                            path: &dest,
                        })
                    });
                if placed.is_err() {
                    let _ = fs::remove_file(&tmp_path);
                }
                return placed.map(|()| Placed::Created);
            }
        }
        let mut output = abos_fsio::AtomicFile::create(&dest, PUBLISHED)
            .context(error::StoreFileSnafu { path: &dest })?;
        File::open(source)
            .and_then(|mut input| std::io::copy(&mut input, &mut output))
            .context(error::StoreIoSnafu {
                action: "copy target to",
                path: output.temp_path(),
            })?;
        output
            .commit_batched()
            .context(error::StoreFileSnafu { path: &dest })?;
        Ok(Placed::Created)
    }

    fn put_target_bytes(&self, file_name: &str, bytes: &[u8]) -> Result<Placed> {
        let dest = self.targets_dir.join(file_name);
        if fs::metadata(&dest).is_ok_and(|m| m.is_file() && m.len() == bytes.len() as u64) {
            return Ok(Placed::Present);
        }
        write_atomic(&self.targets_dir, file_name, bytes)?;
        Ok(Placed::Created)
    }

    fn remove_target(&self, file_name: &str) -> Result<()> {
        let path = self.targets_dir.join(file_name);
        abos_fsio::remove(&path).context(error::StoreFileSnafu { path })?;
        Ok(())
    }

    fn remove_metadata(&self, file_name: &str) -> Result<()> {
        let path = self.metadata_dir.join(file_name);
        abos_fsio::remove(&path).context(error::StoreFileSnafu { path })?;
        Ok(())
    }

    fn lock(&self) -> Result<StoreLock> {
        ensure_dir(&self.metadata_dir)?;
        let path = self.metadata_dir.join(LOCK_FILE);
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .context(error::StoreIoSnafu {
                action: "open lock file",
                path: &path,
            })?;
        match file.try_lock() {
            Ok(()) => Ok(StoreLock { _file: Some(file) }),
            Err(fs::TryLockError::WouldBlock) => error::RepoLockedSnafu { path }.fail(),
            Err(fs::TryLockError::Error(e)) => Err(e).context(error::StoreIoSnafu {
                action: "lock",
                path,
            }),
        }
    }

    fn sync_targets(&self) -> Result<()> {
        if self.targets_dir.exists() {
            abos_fsio::sync_dir(&self.targets_dir).context(error::StoreFileSnafu {
                path: &self.targets_dir,
            })?;
        }
        Ok(())
    }

    fn put_metadata(&self, file_name: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.metadata_dir, file_name, bytes)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("m"), dir.path().join("t"));
        store.put_metadata("timestamp.json", b"one").unwrap();
        store.put_metadata("timestamp.json", b"two").unwrap();
        assert_eq!(
            fs::read(dir.path().join("m/timestamp.json")).unwrap(),
            b"two"
        );
        let names: Vec<_> = fs::read_dir(dir.path().join("m")).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert!(store.has_metadata("timestamp.json").unwrap());
        assert!(!store.has_metadata("1.root.json").unwrap());
    }

    #[test]
    fn a_second_writer_is_refused_while_the_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path().join("m"), dir.path().join("t"));
        let held = store.lock().unwrap();
        let err = store.lock().unwrap_err();
        assert!(matches!(err, crate::Error::RepoLocked { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 5);
        drop(held);
        store.lock().unwrap();
    }

    #[test]
    fn target_files_copy_and_link() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("img");
        fs::write(&src, b"image bytes").unwrap();
        let store = LocalStore::new(dir.path().join("m"), dir.path().join("t"));
        assert_eq!(
            store
                .put_target_file("aa.img", &src, TargetMode::Copy)
                .unwrap(),
            Placed::Created
        );
        store
            .put_target_file("bb.img", &src, TargetMode::Hardlink)
            .unwrap();
        // Present already: kept.
        assert_eq!(
            store
                .put_target_file("aa.img", &src, TargetMode::Copy)
                .unwrap(),
            Placed::Present
        );
        assert_eq!(
            fs::read(dir.path().join("t/aa.img")).unwrap(),
            b"image bytes"
        );
        assert_eq!(
            fs::read(dir.path().join("t/bb.img")).unwrap(),
            b"image bytes"
        );
        assert_eq!(fs::read_dir(dir.path().join("t")).unwrap().count(), 2);
        let url = store.targets_url().unwrap();
        assert!(
            url.as_str().starts_with("file:///") && url.as_str().ends_with("/t/"),
            "{url}"
        );
    }
}
