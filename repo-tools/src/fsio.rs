//! Durable file writes: temp file in the same directory, write, fsync, rename, fsync the directory.

use crate::error::{self, Result};
use snafu::{OptionExt, ResultExt};
use std::io::Write;
use std::path::Path;

/// Mode of files a mirror serves and of written metadata: 0666 filtered by the umask (0644
/// with the usual 022), as tuftool writes them, so a web server that does not run as this user
/// can read them. (tempfile's own default is 0600.)
pub fn readable() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o666)
}

/// Mode of directories that become part of a served tree: 0777 less the umask.
pub fn readable_dir() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o777)
}

/// Writes `bytes` to `path` atomically and durably (mode 0666 less the umask).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .permissions(readable())
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
