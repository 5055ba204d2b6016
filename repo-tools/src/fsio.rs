//! Durable file writes: temp file in the same directory, write, fsync, rename, fsync the directory.

use crate::error::{self, Result};
use snafu::{OptionExt, ResultExt};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .context(error::WriteFileSnafu { path })?;
    tmp.write_all(bytes)
        .context(error::WriteFileSnafu { path })?;
    tmp.as_file()
        .sync_all()
        .context(error::WriteFileSnafu { path })?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .context(error::WriteFileSnafu { path })?;
    sync_dir(dir)
}

/// Like [`write_atomic`] but refuses to replace an existing file.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = parent_dir(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .context(error::WriteFileSnafu { path })?;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))
        .context(error::WriteFileSnafu { path })?;
    tmp.write_all(bytes)
        .context(error::WriteFileSnafu { path })?;
    tmp.as_file()
        .sync_all()
        .context(error::WriteFileSnafu { path })?;
    tmp.persist_noclobber(path)
        .map_err(|e| e.error)
        .map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                error::Error::OutputExists {
                    path: path.to_owned(),
                }
            } else {
                error::Error::WriteFile {
                    path: path.to_owned(),
                    source,
                }
            }
        })?;
    sync_dir(dir)
}

/// fsyncs a directory so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context(error::SyncDirSnafu { path: dir })
}

/// Reads a whole file, naming it on failure.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).context(error::ReadFileSnafu { path })
}

fn parent_dir(path: &Path) -> Result<&Path> {
    let dir = path.parent().context(error::NoParentSnafu { path })?;
    Ok(if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    })
}
