//! The host's update state, persisted in `/var/lib/updog/status.json` and read by `updog status`.
//!
//! Every command that changes what the host would boot keeps this file true: `staging` before the
//! inactive set is touched, `staged` once the written set is verified and valid, `reboot-pending`
//! after activation, `failed` (with the step) on error, `verifying-health` while health checks
//! run, then `healthy` or `rolled-back`. The file is versioned (`status_version`), replaced
//! atomically and durably ([`crate::fsutil::write_atomic`]: new file, fsync, rename, fsync of the
//! directory) and never read or written through a link.
//!
//! A run killed in the middle leaves `staging` (or `verifying-health`) with its pid: the next
//! command, holding the update lock, knows that pid no longer works on the host, records the
//! interruption as the last failure and carries on (an image write resumes from its checkpoint).

use crate::config::HostPaths;
use crate::error::{self, Result};
use crate::fsutil;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::path::{Path, PathBuf};
use update_metadata::Version;

/// The version of the status file's schema this updog writes and reads.
pub const STATUS_VERSION: u32 = 1;

/// Longest captured output of a failing health check (the tail is kept).
pub const MAX_OUTPUT_BYTES: usize = 4096;

/// The update state of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Nothing to do: no update known, or the last check found nothing newer.
    #[default]
    Idle,
    /// `check-update` found an update this host may take.
    Available,
    /// An update is being written to the inactive set (the set is not bootable meanwhile).
    Staging,
    /// The inactive set holds a written and verified update, valid but not the next boot.
    Staged,
    /// The staged set boots next (activated); a reboot takes the host into it.
    RebootPending,
    /// Booted into a new set; health checks are running before the boot is marked successful.
    VerifyingHealth,
    /// Health checks passed and the boot was marked successful.
    Healthy,
    /// Health checks failed; the previous set boots next.
    RolledBack,
    /// The last command failed (see `last_failure`).
    Failed,
}

impl State {
    /// The kebab-case name (as in the JSON).
    pub fn as_str(self) -> &'static str {
        match self {
            State::Idle => "idle",
            State::Available => "available",
            State::Staging => "staging",
            State::Staged => "staged",
            State::RebootPending => "reboot-pending",
            State::VerifyingHealth => "verifying-health",
            State::Healthy => "healthy",
            State::RolledBack => "rolled-back",
            State::Failed => "failed",
        }
    }

    /// A state held only while a process works (a kill leaves it behind).
    pub fn is_transient(self) -> bool {
        matches!(self, State::Staging | State::VerifyingHealth)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The last failure: which step, why, when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The step that failed (`load-metadata`, `write-images`, `verify`, `health-check`, …).
    pub step: String,
    /// The error, as printed.
    pub reason: String,
    /// When.
    pub at: Timestamp,
    /// The failing health check (file name), if the step was a health check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check: Option<String>,
    /// The tail of the failing check's output (at most [`MAX_OUTPUT_BYTES`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// What a host waits for before it may reboot into a staged update (`[fleet]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    /// What is awaited: `reboot-slot`.
    pub what: String,
    /// Why, as the coordinator says it (`waiting: 2/2 slots held by [a, b]`, `waiting:
    /// coordinator unreachable (…); not rebooting`).
    pub reason: String,
    /// When the wait began.
    pub since: Timestamp,
    /// When `update` gives up (exit 23) if nothing changes; the update stays staged.
    pub deadline: Timestamp,
}

/// The contents of `status.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Schema version ([`STATUS_VERSION`]).
    pub status_version: u32,
    /// The state.
    pub state: State,
    /// The process working while the state is `staging` or `verifying-health`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The version running (os-release `VERSION_ID`) when the file was written.
    #[serde(default)]
    pub running_version: Option<Version>,
    /// The version staged in the inactive set (written, verified, valid).
    #[serde(default)]
    pub staged_version: Option<Version>,
    /// The set holding `staged_version` (`A` or `B`).
    #[serde(default)]
    pub staged_set: Option<String>,
    /// The update chosen by the last check or update (what the host moves to next).
    #[serde(default)]
    pub next_version: Option<Version>,
    /// When the repository was last checked successfully.
    #[serde(default)]
    pub last_check: Option<Timestamp>,
    /// When this host's wave opens for `next_version`, if it was closed at the last check.
    #[serde(default)]
    pub wave_opens_at: Option<Timestamp>,
    /// When the maintenance window next opens, if activation waits for it.
    #[serde(default)]
    pub window_opens_at: Option<Timestamp>,
    /// A version whose health check failed on this host: `update`/`update-image` do not take it
    /// again unless `--image` names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_failed_version: Option<Version>,
    /// The fleet reboot slot this host holds (from activation until health passes or fails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fleet_slot: Option<fleet::Slot>,
    /// While `update` waits for a fleet reboot slot (the state stays `staged`): why it waits
    /// (slots full, etcd unreachable), since when and until when. Null when not waiting.
    #[serde(default)]
    pub waiting: Option<Waiting>,
    /// The last failure, kept until a later success of the same kind replaces the state.
    #[serde(default)]
    pub last_failure: Option<Failure>,
    /// What the last check found about a delta for `next_version` (when a delta is
    /// published): planned bytes, or why it is not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta: Option<crate::delta_update::DeltaAvailability>,
    /// When the file was written.
    pub updated_at: Timestamp,
}

impl Default for Status {
    fn default() -> Self {
        Status {
            status_version: STATUS_VERSION,
            state: State::Idle,
            pid: None,
            running_version: None,
            staged_version: None,
            staged_set: None,
            next_version: None,
            last_check: None,
            wave_opens_at: None,
            window_opens_at: None,
            fleet_slot: None,
            waiting: None,
            health_failed_version: None,
            last_failure: None,
            delta: None,
            updated_at: Timestamp::UNIX_EPOCH,
        }
    }
}

/// `status.json` of a host.
pub fn path(paths: &HostPaths) -> PathBuf {
    paths.state_dir().join("status.json")
}

/// Reads the status file; a missing file is the default (idle) status. A link or an unsafe
/// directory is refused ([`crate::Error::UnsafeState`]); a file that does not parse, or one
/// written by a newer updog, is an error naming the file.
pub fn load(paths: &HostPaths) -> Result<Status> {
    let p = path(paths);
    if let Some(parent) = p.parent()
        && parent.exists()
    {
        fsutil::check_dir(parent)?;
    }
    let Some(bytes) = fsutil::read_state_file(&p)? else {
        return Ok(Status::default());
    };
    parse(&bytes, &p)
}

fn parse(bytes: &[u8], p: &Path) -> Result<Status> {
    #[derive(Deserialize)]
    struct Probe {
        status_version: u32,
    }
    let probe: Probe =
        serde_json::from_slice(bytes).context(error::StatusParseSnafu { path: p })?;
    if probe.status_version > STATUS_VERSION {
        return error::StatusVersionSnafu {
            path: p,
            found: probe.status_version,
            supported: STATUS_VERSION,
        }
        .fail();
    }
    serde_json::from_slice(bytes).context(error::StatusParseSnafu { path: p })
}

/// Like [`load`], but a damaged file (not JSON, a newer schema) is logged and replaced by the
/// default: the next write repairs it. Unsafe state (links, foreign directories) is still an error.
pub fn load_or_repair(paths: &HostPaths) -> Result<Status> {
    match load(paths) {
        Ok(s) => Ok(s),
        Err(e @ crate::Error::UnsafeState { .. }) => Err(e),
        Err(e) => {
            tracing::warn!("{e}; starting a new status file");
            Ok(Status::default())
        }
    }
}

/// Writes the status file atomically and durably (stamping `updated_at` with `now`).
pub fn store(paths: &HostPaths, status: &mut Status, now: Timestamp) -> Result<()> {
    let dir = paths.state_dir();
    fsutil::ensure_state_dir(&dir, &dir)?;
    status.status_version = STATUS_VERSION;
    status.updated_at = now;
    let mut bytes = serde_json::to_vec_pretty(status).context(error::StatusEncodeSnafu)?;
    bytes.push(b'\n');
    fsutil::write_atomic(&path(paths), &bytes)
}

/// Keeps the last `max` bytes of `text` (on a character boundary), marking the cut.
pub fn tail(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("[… {start} bytes cut]\n{}", &text[start..])
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn round_trip_and_versioning() {
        let t = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(t.path());
        assert_eq!(load(&paths).unwrap().state, State::Idle);
        let mut s = Status {
            state: State::Staged,
            staged_version: Some(Version::new(1, 1, 0)),
            staged_set: Some("B".into()),
            ..Status::default()
        };
        store(&paths, &mut s, Timestamp::from_second(1_000).unwrap()).unwrap();
        let back = load(&paths).unwrap();
        assert_eq!(back, s);
        let text = std::fs::read_to_string(path(&paths)).unwrap();
        assert!(text.contains("\"state\": \"staged\""), "{text}");

        std::fs::write(
            path(&paths),
            text.replace("\"status_version\": 1", "\"status_version\": 9"),
        )
        .unwrap();
        let e = load(&paths).unwrap_err();
        assert!(e.to_string().contains("version 9"), "{e}");
        assert_eq!(load_or_repair(&paths).unwrap().state, State::Idle);
        std::fs::write(path(&paths), b"{not json").unwrap();
        let e = load(&paths).unwrap_err();
        assert!(e.to_string().contains("status.json"), "{e}");
    }

    #[test]
    fn a_linked_status_file_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(t.path());
        let dir = paths.state_dir();
        fsutil::ensure_state_dir(&dir, &dir).unwrap();
        let victim = t.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, path(&paths)).unwrap();
        let e = load_or_repair(&paths).unwrap_err();
        assert_eq!(e.exit_code(), crate::ExitStatus::UnsafeState);
        store(&paths, &mut Status::default(), Timestamp::UNIX_EPOCH).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn tail_keeps_the_end() {
        assert_eq!(tail("abc", 10), "abc");
        let t = tail(&"x".repeat(100), 10);
        assert!(
            t.ends_with(&"x".repeat(10)) && t.contains("90 bytes cut"),
            "{t}"
        );
    }
}
