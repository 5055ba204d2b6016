//! updog's state on disk, handled as root should handle it: no symbolic link is ever followed
//! below a state directory, directories are created and then checked (a real directory, owned by
//! this user or root, not writable by group or others), files are opened with `O_NOFOLLOW`, and
//! every replacement is a new temporary file (created exclusively, mode 0600) + fsync + rename +
//! fsync of the directory. The durable steps are `abos-fsio`'s, shared with every abos crate;
//! the checks above are updog's policy on top of them.
//!
//! Why the checks are enough: once a directory is ours and not writable by anyone else, nobody
//! else can plant a link in it or swap it, so what was checked stays true while updog works. The
//! directories are checked top-down from the state root (`/var/lib/updog`, the migration
//! caches), so a link anywhere on the way is refused before anything below it is touched.

use crate::error::{self, Result};
use snafu::ResultExt;
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Mode of the state directories updog creates.
pub const DIR_MODE: u32 = 0o755;

fn unsafe_state(path: &Path, problem: impl Into<String>) -> error::Error {
    error::Error::UnsafeState {
        path: path.to_path_buf(),
        problem: problem.into(),
    }
}

/// This process's effective user id (from `/proc/self/status`; the workspace forbids `unsafe`,
/// so no `geteuid`). `None` where /proc is not mounted: then only root may own state.
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// Checks one existing directory (by `lstat`): a real directory, owned by this user or root,
/// not writable by group or others.
pub fn check_dir(path: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(path).context(error::ReadFileSnafu { path })?;
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(path)
            .map(|t| format!(" (pointing to {})", t.display()))
            .unwrap_or_default();
        return Err(unsafe_state(
            path,
            format!("is a symbolic link{target}; updog does not follow links in its state"),
        ));
    }
    if !ft.is_dir() {
        return Err(unsafe_state(path, "is not a directory"));
    }
    let me = euid();
    if meta.uid() != 0 && Some(meta.uid()) != me {
        return Err(unsafe_state(
            path,
            format!(
                "is owned by uid {}, not by root or by this user (uid {})",
                meta.uid(),
                me.map_or_else(|| "unknown".to_owned(), |u| u.to_string())
            ),
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & 0o022 != 0 {
        let what = if mode & 0o002 != 0 {
            "is world-writable"
        } else {
            "is writable by its group"
        };
        return Err(unsafe_state(path, format!("{what} (mode {mode:04o})")));
    }
    Ok(())
}

/// Creates (mode [`DIR_MODE`]) or checks `top` and every directory from `top` down to `dir`
/// (which must be `top` or below it), refusing links, foreign owners and group/world-writable
/// directories. The parents of `top` are created if missing but not checked (they belong to the
/// system, e.g. `/var/lib`).
pub fn ensure_state_dir(top: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(top).map_err(|_| {
        unsafe_state(
            dir,
            format!("is not below the state directory {}", top.display()),
        )
    })?;
    if let Some(parent) = top.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).context(error::CreateDirSnafu { path: parent })?;
    }
    let mut path = top.to_path_buf();
    make_and_check(&path)?;
    for component in rel.components() {
        match component {
            std::path::Component::Normal(c) => path.push(c),
            _ => return Err(unsafe_state(dir, "contains `..` or `.` components")),
        }
        make_and_check(&path)?;
    }
    Ok(())
}

fn make_and_check(path: &Path) -> Result<()> {
    match std::fs::DirBuilder::new().mode(DIR_MODE).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).context(error::CreateDirSnafu { path }),
    }
    check_dir(path)
}

/// Refuses any entry of `dir` (one level) that is not a regular file or a checked directory:
/// a link, a FIFO, a device.
pub fn check_entries(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context(error::ReadFileSnafu { path: dir }),
    };
    for entry in entries {
        let entry = entry.context(error::ReadFileSnafu { path: dir })?;
        let path = entry.path();
        let ft = entry
            .file_type()
            .context(error::ReadFileSnafu { path: &path })?;
        if ft.is_dir() {
            check_dir(&path)?;
            check_entries(&path)?;
        } else if ft.is_symlink() {
            return Err(unsafe_state(
                &path,
                "is a symbolic link; updog does not follow links in its state",
            ));
        } else if !ft.is_file() {
            return Err(unsafe_state(&path, "is not a regular file"));
        }
    }
    Ok(())
}

fn nofollow(opts: &mut OpenOptions) -> &mut OpenOptions {
    opts.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
}

/// Maps an `open` error: `ELOOP` from `O_NOFOLLOW` means the last component is a link.
fn open_error(path: &Path, e: std::io::Error) -> error::Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        unsafe_state(
            path,
            "is a symbolic link; updog does not follow links in its state",
        )
    } else {
        error::Error::ReadFile {
            path: path.to_path_buf(),
            source: e,
        }
    }
}

/// Checks an opened state file: a regular file with no other hard links.
fn check_opened(path: &Path, file: &File) -> Result<()> {
    let meta = file.metadata().context(error::ReadFileSnafu { path })?;
    if !meta.file_type().is_file() {
        return Err(unsafe_state(path, "is not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(unsafe_state(
            path,
            format!(
                "has {} hard links; a state file must have exactly one",
                meta.nlink()
            ),
        ));
    }
    Ok(())
}

/// Opens (creating if missing, never truncating) a state file for reading and writing without
/// following a link.
pub fn open_state_file(path: &Path) -> Result<File> {
    let file = nofollow(
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644),
    )
    .open(path)
    .map_err(|e| open_error(path, e))?;
    check_opened(path, &file)?;
    Ok(file)
}

/// Reads a state file without following a link; `None` if it does not exist.
pub fn read_state_file(path: &Path) -> Result<Option<Vec<u8>>> {
    let mut file = match nofollow(OpenOptions::new().read(true)).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(open_error(path, e)),
    };
    check_opened(path, &file)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .context(error::ReadFileSnafu { path })?;
    Ok(Some(bytes))
}

/// Atomically and durably replaces `path` with `bytes`, mode 0600 ([`abos_fsio::write_atomic`]:
/// a new temporary file in the same directory, created exclusively with `O_NOFOLLOW`, fsync,
/// rename over `path` (which replaces a link instead of following it), fsync the directory). The
/// directory must exist and have been checked (see [`ensure_state_dir`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    abos_fsio::write_atomic(path, bytes, abos_fsio::PRIVATE).context(error::StateFileSnafu { path })
}

/// fsyncs a directory (so a rename or unlink in it is durable). Callers pass directories checked
/// by [`check_dir`] or [`ensure_state_dir`], which refuse links.
pub fn sync_dir(dir: &Path) -> Result<()> {
    abos_fsio::sync_dir(dir).context(error::StateFileSnafu { path: dir })
}

/// Removes `path` durably (a link is removed, not followed); a missing file is fine.
pub fn remove_durable(path: &Path) -> Result<()> {
    abos_fsio::remove(path).context(error::StateFileSnafu { path })?;
    Ok(())
}

/// fsyncs every regular file in `dir` and below, then the directories (used on trees tough
/// writes without fsync). A link or a special file is refused, never followed.
pub fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).context(error::ReadFileSnafu { path: dir })?;
    let mut subdirs: Vec<PathBuf> = Vec::new();
    for entry in entries {
        let entry = entry.context(error::ReadFileSnafu { path: dir })?;
        let p = entry.path();
        let ft = entry
            .file_type()
            .context(error::ReadFileSnafu { path: &p })?;
        if ft.is_dir() {
            subdirs.push(p);
        } else if ft.is_file() {
            abos_fsio::sync_file(&p).map_err(|e| {
                if e.io_error().raw_os_error() == Some(libc::ELOOP) {
                    unsafe_state(
                        &p,
                        "is a symbolic link; updog does not follow links in its state",
                    )
                } else {
                    error::Error::StateFile {
                        path: p.clone(),
                        source: e,
                    }
                }
            })?;
        } else {
            return Err(unsafe_state(
                &p,
                if ft.is_symlink() {
                    "is a symbolic link; updog does not follow links in its state"
                } else {
                    "is not a regular file"
                },
            ));
        }
    }
    for sub in subdirs {
        check_dir(&sub)?;
        sync_tree(&sub)?;
    }
    sync_dir(dir)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_and_checks_each_level() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("var/lib/updog");
        ensure_state_dir(&top, &top.join("tuf")).unwrap();
        let mode = std::fs::metadata(top.join("tuf")).unwrap().mode() & 0o777;
        assert_eq!(mode & 0o022, 0, "{mode:o}");
    }

    #[test]
    fn refuses_links_and_writable_dirs() {
        let t = tempfile::tempdir().unwrap();
        let top = t.path().join("state");
        std::fs::create_dir(t.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(t.path().join("elsewhere"), &top).unwrap();
        let e = ensure_state_dir(&top, &top).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        std::fs::remove_file(&top).unwrap();
        std::fs::create_dir(&top).unwrap();
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = ensure_state_dir(&top, &top.join("x")).unwrap_err();
        assert!(e.to_string().contains("world-writable"), "{e}");
        assert!(!top.join("x").exists());
    }

    #[test]
    fn write_atomic_replaces_a_link_instead_of_following_it() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = t.path().join("state.json");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = read_state_file(&link).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        write_atomic(&link, b"new").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!std::fs::symlink_metadata(&link).unwrap().is_symlink());
    }
}
