//! The persistent datastore: the exact bytes of every metadata file received and verified
//! (`root.json`, `timestamp.json`, `snapshot.json`, `targets.json`, `<role>.json` for delegated
//! roles, the role name percent-encoded), plus the clock file for the clock check (§5.1):
//! `last-cycle-time` by default, or another name given in `Config::clock_file` (updog keeps
//! tough's `latest_known_time.json`, so a host upgraded from a tough-based client keeps its clock
//! record). A clock file whose name ends in `.json` holds a JSON string, as tough wrote it;
//! otherwise one line of text. Both forms are read from either.
//!
//! Writes are atomic and durable (`abos-fsio`: temp file in the same directory, write, fsync,
//! rename, fsync the directory), mode 0600. Removals fsync the directory too.

use crate::error::{self, Result};
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// Default name of the file holding the start time of the last cycle.
pub const DEFAULT_CLOCK_FILE: &str = "last-cycle-time";

/// Percent-encodes everything but `A-Za-z0-9_.-~` (Python's `urllib.parse.quote(name, "")`,
/// which python-tuf uses for metadata file names and URLs).
pub(crate) fn quote(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The datastore directory.
#[derive(Debug, Clone)]
pub(crate) struct Datastore {
    dir: PathBuf,
    clock_file: String,
}

impl Datastore {
    pub(crate) fn open(dir: &Path, clock_file: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).context(error::DatastoreCreateSnafu { path: dir })?;
        Ok(Self {
            dir: dir.to_path_buf(),
            clock_file: clock_file.to_owned(),
        })
    }

    /// Path of the metadata file for `role`.
    pub(crate) fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{}.json", quote(role)))
    }

    /// The stored bytes for `role`, if any.
    pub(crate) fn read(&self, role: &str) -> Result<Option<Vec<u8>>> {
        read_optional(&self.path(role))
    }

    /// Stores `bytes` for `role`, atomically and durably.
    pub(crate) fn write(&self, role: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(role), bytes)
    }

    /// Removes the file for `role`, durably; a missing file is fine.
    pub(crate) fn remove(&self, role: &str) -> Result<()> {
        let path = self.path(role);
        abos_fsio::remove(&path).context(error::DatastoreRemoveSnafu { path })?;
        Ok(())
    }

    /// The start time of the last cycle, if recorded.
    pub(crate) fn last_cycle_time(&self) -> Result<Option<jiff::Timestamp>> {
        let path = self.dir.join(&self.clock_file);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes).trim().to_owned();
        let unquoted = match serde_json::from_str::<String>(&text) {
            Ok(s) => s,
            Err(_) => text.clone(),
        };
        match unquoted.parse() {
            Ok(t) => Ok(Some(t)),
            Err(_) => error::DatastoreTimeSnafu { path, text }.fail(),
        }
    }

    /// Records the start time of this cycle.
    pub(crate) fn set_last_cycle_time(&self, time: jiff::Timestamp) -> Result<()> {
        let text = if self.clock_file.ends_with(".json") {
            serde_json::to_string(&time.to_string()).expect("a string serialises")
        } else {
            format!("{time}\n")
        };
        write_atomic(&self.dir.join(&self.clock_file), text.as_bytes())
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).context(error::DatastoreReadSnafu { path }),
    }
}

/// Temp file in the same directory, write, fsync, rename over `path`, fsync the directory.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    abos_fsio::write_atomic(path, bytes, abos_fsio::PRIVATE)
        .context(error::DatastoreWriteSnafu { path })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn quote_is_pythons() {
        assert_eq!(quote("targets"), "targets");
        assert_eq!(quote("a/b c"), "a%2Fb%20c");
        assert_eq!(quote("x~y_z.w-1"), "x~y_z.w-1");
        assert_eq!(quote(".."), "..");
    }

    #[test]
    fn clock_file_in_both_forms() {
        let dir = tempfile::tempdir().unwrap();
        let t: jiff::Timestamp = "2030-01-02T03:04:05Z".parse().unwrap();
        let plain = Datastore::open(dir.path(), DEFAULT_CLOCK_FILE).unwrap();
        plain.set_last_cycle_time(t).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(DEFAULT_CLOCK_FILE)).unwrap(),
            "2030-01-02T03:04:05Z\n"
        );
        let json = Datastore::open(dir.path(), "latest_known_time.json").unwrap();
        assert_eq!(json.last_cycle_time().unwrap(), None);
        // As tough writes it.
        std::fs::write(
            dir.path().join("latest_known_time.json"),
            "\"2099-01-01T00:00:00.123456Z\"",
        )
        .unwrap();
        assert_eq!(
            json.last_cycle_time().unwrap(),
            Some("2099-01-01T00:00:00.123456Z".parse().unwrap())
        );
        json.set_last_cycle_time(t).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("latest_known_time.json")).unwrap(),
            "\"2030-01-02T03:04:05Z\""
        );
        assert_eq!(json.last_cycle_time().unwrap(), Some(t));
        std::fs::write(dir.path().join("latest_known_time.json"), "\"x\"").unwrap();
        assert!(json.last_cycle_time().is_err());
    }

    #[test]
    fn writes_exact_bytes_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let ds = Datastore::open(&dir.path().join("store"), DEFAULT_CLOCK_FILE).unwrap();
        assert_eq!(ds.read("timestamp").unwrap(), None);
        ds.write("timestamp", b"{ \"x\" :1 }").unwrap();
        assert_eq!(ds.read("timestamp").unwrap().unwrap(), b"{ \"x\" :1 }");
        ds.write("a/b", b"1").unwrap();
        assert!(dir.path().join("store/a%2Fb.json").is_file());
        ds.remove("timestamp").unwrap();
        ds.remove("timestamp").unwrap();
        assert_eq!(ds.read("timestamp").unwrap(), None);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("store"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
