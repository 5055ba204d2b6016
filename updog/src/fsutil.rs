//! Durable file helpers: temp file in the same directory, write, fsync, rename, fsync the directory.

use crate::error::{self, Result};
use snafu::ResultExt;
use std::io::Write;
use std::path::Path;

/// Atomically and durably replaces `path` with `bytes`.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    std::fs::create_dir_all(dir).context(error::CreateDirSnafu { path: dir })?;
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

/// fsyncs a directory (so a rename or unlink in it is durable).
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .context(error::WriteFileSnafu { path: dir })
}

/// Removes `path` durably; a missing file is fine.
pub fn remove_durable(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).context(error::WriteFileSnafu { path }),
    }
    sync_dir(path.parent().unwrap_or_else(|| Path::new(".")))
}

/// fsyncs every regular file in `dir` and then `dir` itself (used on tough's datastore, which
/// writes its files without fsync).
pub fn sync_tree(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).context(error::ReadFileSnafu { path: dir })?;
    for entry in entries.flatten() {
        let p = entry.path();
        if p.is_file() {
            std::fs::File::open(&p)
                .and_then(|f| f.sync_all())
                .context(error::WriteFileSnafu { path: &p })?;
        }
    }
    sync_dir(dir)
}
