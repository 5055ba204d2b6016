//! Atomic, durable file writes.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Writes `bytes` to `path` atomically and durably: a temp file in the same directory, write,
/// fsync, rename over `path`, fsync the directory. A failure never leaves a half-written `path`.
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Unique per process and call, so concurrent writers never share a temp file.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.tmp.{}.{n}", std::process::id()));
    let write = || -> std::result::Result<(), (&'static str, std::io::Error)> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| ("create temp file", e))?;
        f.write_all(bytes).map_err(|e| ("write temp file", e))?;
        f.sync_all().map_err(|e| ("fsync temp file", e))?;
        drop(f);
        fs::rename(&tmp, path).map_err(|e| ("rename temp file", e))?;
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| ("fsync directory", e))?;
        Ok(())
    };
    write().map_err(|(step, source)| {
        let _ = fs::remove_file(&tmp);
        Error::WriteFile {
            path: path.to_path_buf(),
            step,
            source,
        }
    })
}
