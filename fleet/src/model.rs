//! The coordination vocabulary: names, host states and reports, slots, halts and the fleet view.
//! Pure values; the backends store them as JSON.

use std::fmt;
use std::time::Duration;

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A validated group or host name: 1 to 128 characters out of `A-Z a-z 0-9 . _ -`, so it is
/// safe as one component of an etcd key (no `/`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Name(String);

impl Name {
    /// Validate `value` as a group or host name.
    pub fn new(what: &'static str, value: &str) -> Result<Self> {
        let reason = if value.is_empty() {
            Some("it is empty".to_string())
        } else if value.len() > 128 {
            Some(format!(
                "it is {} characters long (at most 128)",
                value.len()
            ))
        } else if value == "." || value == ".." {
            Some("'.' and '..' are not names".to_string())
        } else {
            value
                .chars()
                .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
                .map(|c| format!("character {c:?} is not allowed (use A-Z a-z 0-9 . _ -)"))
        };
        match reason {
            Some(reason) => Err(Error::InvalidInput {
                what,
                value: value.to_string(),
                reason,
            }),
            None => Ok(Name(value.to_string())),
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Name {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        Name::new("name", &value)
    }
}

impl From<Name> for String {
    fn from(name: Name) -> String {
        name.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a host is in its update, as updog reports it (the host-side states of issue 14).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostState {
    /// Nothing to do.
    Idle,
    /// A newer release is offered to this host.
    Available,
    /// Writing the inactive set.
    Staging,
    /// The inactive set holds the new release, verified.
    Staged,
    /// Waiting for (or holding) a reboot slot.
    RebootPending,
    /// Booted into the new set; health checks running.
    VerifyingHealth,
    /// Healthy on the new set (boot marked successful).
    Healthy,
    /// Health failed; back on the previous set.
    RolledBack,
    /// Something failed; see the detail.
    Failed,
}

impl HostState {
    /// The state's name as stored and printed.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Idle => "idle",
            HostState::Available => "available",
            HostState::Staging => "staging",
            HostState::Staged => "staged",
            HostState::RebootPending => "reboot-pending",
            HostState::VerifyingHealth => "verifying-health",
            HostState::Healthy => "healthy",
            HostState::RolledBack => "rolled-back",
            HostState::Failed => "failed",
        }
    }
}

impl fmt::Display for HostState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a host tells the fleet about itself (stored under `hosts/<host>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostReport {
    /// Current state.
    pub state: HostState,
    /// The release the host runs.
    pub version: Version,
    /// The release it is moving to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Version>,
    /// Free text: the failing step and its output, and the like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// When the host wrote this report (filled in by `report` when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Timestamp>,
}

impl HostReport {
    /// A report in `state` on `version`, without target or detail.
    pub fn new(state: HostState, version: Version) -> Self {
        HostReport {
            state,
            version,
            target: None,
            detail: None,
            at: None,
        }
    }
}

/// A halted version of a group (stored under `halted/<version>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Halt {
    /// The halted release.
    pub version: Version,
    /// Why (a failed health check and its output, an operator's note).
    pub reason: String,
    /// The host (or operator) that halted it.
    pub by_host: String,
    /// When.
    pub at: Timestamp,
}

/// A granted reboot slot. Plain data: a host persists it across its reboot and resumes the
/// keepalives of the same lease afterwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    /// Group.
    pub group: Name,
    /// Host holding the slot.
    pub host: Name,
    /// The version the host reboots into.
    pub version: Version,
    /// The backend's lease id (etcd lease).
    pub lease: i64,
    /// Lease time to live in seconds.
    pub ttl_secs: u64,
    /// When the slot was granted.
    pub acquired_at: Timestamp,
}

/// One held slot as seen in the fleet view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotHolder {
    /// Host.
    pub host: Name,
    /// Version it reboots into.
    pub version: Version,
    /// When it was granted.
    pub acquired_at: Timestamp,
    /// Lease id.
    pub lease: i64,
}

/// One host in the fleet view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostEntry {
    /// Host.
    pub host: Name,
    /// Its last report.
    pub report: HostReport,
}

/// Everything an operator needs to see about a group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetView {
    /// Group.
    pub group: Name,
    /// Maximum number of hosts between "about to reboot" and "healthy".
    pub max_concurrency: u32,
    /// Slots held now.
    pub slots: Vec<SlotHolder>,
    /// Halted versions.
    pub halted: Vec<Halt>,
    /// Every host that reported, by name.
    pub hosts: Vec<HostEntry>,
}

impl FleetView {
    /// Number of hosts per (state, version), sorted, for a summary line.
    pub fn counts(&self) -> Vec<(HostState, Version, usize)> {
        let mut counts: Vec<(HostState, Version, usize)> = Vec::new();
        for entry in &self.hosts {
            let key = (entry.report.state, entry.report.version.clone());
            match counts.iter_mut().find(|(s, v, _)| (*s, v.clone()) == key) {
                Some(c) => c.2 += 1,
                None => counts.push((key.0, key.1, 1)),
            }
        }
        counts.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.as_str().cmp(b.0.as_str())));
        counts
    }
}

/// Why a host is still waiting for a slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WaitStatus {
    /// Every slot is held.
    SlotsFull {
        /// Slots held.
        held: u32,
        /// The group's limit.
        max: u32,
        /// Who holds them.
        holders: Vec<String>,
    },
    /// Another host changed the semaphore between our read and our write; retrying.
    Contended,
    /// No etcd endpoint answers.
    Unreachable {
        /// The last error.
        error: String,
    },
}

impl fmt::Display for WaitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitStatus::SlotsFull { held, max, holders } => {
                write!(
                    f,
                    "waiting: {held}/{max} slots held by [{}]",
                    holders.join(", ")
                )
            }
            WaitStatus::Contended => write!(f, "waiting: contended, retrying"),
            WaitStatus::Unreachable { error } => {
                write!(
                    f,
                    "waiting: coordinator unreachable ({error}); not rebooting"
                )
            }
        }
    }
}

/// How to acquire: how long to wait, how often to look again, and the lease's time to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquireOptions {
    /// Give up after this long (`Error::AcquireTimeout`).
    pub deadline: Duration,
    /// Pause between two looks while the slots are full or etcd is unreachable.
    pub poll: Duration,
    /// Lease time to live: a host that stops its keepalives loses its slot after this. It must
    /// cover a reboot when the slot is held across one (the host resumes keepalives afterwards).
    pub ttl: Duration,
}

impl Default for AcquireOptions {
    fn default() -> Self {
        AcquireOptions {
            deadline: Duration::from_secs(3600),
            poll: Duration::from_secs(5),
            ttl: Duration::from_secs(900),
        }
    }
}

/// Receives the wait status while `acquire_reboot_slot` waits (libraries do not print).
pub trait AcquireObserver: Send + Sync {
    /// Called each time the status changes.
    fn waiting(&self, status: &WaitStatus);
}

/// An observer that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl AcquireObserver for NoObserver {
    fn waiting(&self, _status: &WaitStatus) {}
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn names_are_key_safe() {
        assert!(Name::new("host", "node-1.example_a").is_ok());
        for bad in ["", "a/b", "..", "a b", "é", &"x".repeat(129)] {
            let err = Name::new("host", bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid host '"), "{err}");
        }
    }

    #[test]
    fn wait_status_text() {
        let s = WaitStatus::SlotsFull {
            held: 2,
            max: 2,
            holders: vec!["a".into(), "b".into()],
        };
        assert_eq!(s.to_string(), "waiting: 2/2 slots held by [a, b]");
    }

    #[test]
    fn host_state_serde_names() {
        for state in [
            HostState::Idle,
            HostState::Available,
            HostState::Staging,
            HostState::Staged,
            HostState::RebootPending,
            HostState::VerifyingHealth,
            HostState::Healthy,
            HostState::RolledBack,
            HostState::Failed,
        ] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
    }
}
