//! Durable file writes through `abos-fsio` (temp file in the same directory, write, fsync,
//! rename, fsync the directory), with this crate's error context.

use crate::error::{self, Result};
use snafu::ResultExt;
use std::path::Path;

/// Mode of files a mirror serves and of written metadata: 0666 less the umask (0644 with the
/// usual 022), as tuftool writes them, so a web server that does not run as this user can read
/// them.
pub const READABLE: abos_fsio::Mode = abos_fsio::PUBLIC;

/// Mode of directories that become part of a served tree: 0777 less the umask.
pub fn readable_dir() -> std::fs::Permissions {
    use std::os::unix::fs::PermissionsExt;
    std::fs::Permissions::from_mode(0o777)
}

/// Writes `bytes` to `path` atomically and durably (mode [`READABLE`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    abos_fsio::write_atomic(path, bytes, READABLE).context(error::DurableSnafu { path })
}

/// Like [`write_atomic`] but with exactly `mode` and refusing to replace an existing file.
pub fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    abos_fsio::write_new(path, bytes, abos_fsio::Mode::Exact(mode)).map_err(|source| {
        if source.kind() == std::io::ErrorKind::AlreadyExists {
            error::Error::OutputExists {
                path: path.to_owned(),
            }
        } else {
            error::Error::Durable {
                path: path.to_owned(),
                source,
            }
        }
    })
}

/// fsyncs a directory so that renames and creations inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    abos_fsio::sync_dir(dir).context(error::DurableSnafu { path: dir })
}

/// Reads a whole file, naming it on failure.
pub fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).context(error::ReadFileSnafu { path })
}
