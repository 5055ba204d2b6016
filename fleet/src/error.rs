//! The crate's one error type.

use snafu::Snafu;

use crate::model::{Halt, WaitStatus};

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while coordinating a fleet.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// A group, host or endpoint given by the caller is not acceptable.
    #[snafu(display("invalid {what} '{value}': {reason}"))]
    InvalidInput {
        /// What was being parsed (group name, host name, endpoint...).
        what: &'static str,
        /// The rejected text.
        value: String,
        /// Why it was rejected.
        reason: String,
    },

    /// No etcd endpoint answered (connection refused, timeout, or every member unavailable).
    #[snafu(display("etcd unreachable: no endpoint answered {path} ({tried})"))]
    Unreachable {
        /// The gateway path that was requested.
        path: String,
        /// Each endpoint with its failure, `url: reason; ...`.
        tried: String,
    },

    /// An endpoint answered with an error (HTTP status and etcd's message).
    #[snafu(display("etcd at {url} refused {path}: HTTP {status}: {message}"))]
    EtcdRefused {
        /// The endpoint that answered.
        url: String,
        /// The gateway path.
        path: String,
        /// HTTP status code.
        status: u16,
        /// etcd's error text.
        message: String,
    },

    /// An endpoint answered with a body that is not what the gateway documents.
    #[snafu(display("unexpected answer from etcd at {url} to {path}: {reason}"))]
    BadResponse {
        /// The endpoint that answered.
        url: String,
        /// The gateway path.
        path: String,
        /// What was wrong.
        reason: String,
    },

    /// A value stored under a fleet key could not be decoded.
    #[snafu(display("value stored at etcd key {key} is not valid: {reason}"))]
    BadValue {
        /// The etcd key.
        key: String,
        /// What was wrong.
        reason: String,
    },

    /// The version is halted for this group: no host may reboot into it until it is resumed.
    #[snafu(display(
        "version {} is halted for this group (by {} at {}: {})",
        halt.version, halt.by_host, halt.at, halt.reason
    ))]
    Halted {
        /// The halt record.
        halt: Box<Halt>,
    },

    /// No slot was granted before the deadline; the last status says why (slots full, halted, or
    /// etcd unreachable).
    #[snafu(display("no reboot slot granted within {waited_secs:.1}s: {status}"))]
    AcquireTimeout {
        /// How long the caller waited.
        waited_secs: f64,
        /// The last observed status.
        status: Box<WaitStatus>,
    },

    /// The slot's lease is gone (expired or revoked): the host no longer holds a slot.
    #[snafu(display(
        "reboot slot of host {host} in group {group} is lost: lease {lease:x} {reason}"
    ))]
    SlotLost {
        /// Group.
        group: String,
        /// Host.
        host: String,
        /// Lease id.
        lease: i64,
        /// Expired or revoked.
        reason: String,
    },
}

/// Exit codes of `fleetctl`, never renumbered (README.md's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExitStatus {
    /// 0: success.
    Success = 0,
    /// 1: any other failure.
    Failure = 1,
    /// 2: usage or invalid input.
    Usage = 2,
    /// 3: no etcd endpoint answered.
    Unreachable = 3,
    /// 4: etcd refused the request or answered something unexpected.
    EtcdError = 4,
    /// 5: the version is halted (acquire refused).
    Halted = 5,
    /// 6: no slot within the deadline.
    Timeout = 6,
    /// 7: `hold`: the command run under the slot failed (the slot was released).
    CommandFailed = 7,
}

impl Error {
    /// The documented exit status for this error.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Error::InvalidInput { .. } => ExitStatus::Usage,
            Error::Unreachable { .. } => ExitStatus::Unreachable,
            Error::EtcdRefused { .. } | Error::BadResponse { .. } | Error::BadValue { .. } => {
                ExitStatus::EtcdError
            }
            Error::Halted { .. } => ExitStatus::Halted,
            Error::AcquireTimeout { .. } => ExitStatus::Timeout,
            Error::SlotLost { .. } => ExitStatus::Failure,
        }
    }

    /// A hint for the operator, when there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::Unreachable { .. } => Some(
                "check --endpoints (client URLs such as http://10.0.0.1:2379) and that the etcd members are up",
            ),
            Error::Halted { .. } => {
                Some("after fixing the release, resume it with `fleetctl resume GROUP VERSION`")
            }
            Error::AcquireTimeout { .. } => Some(
                "`fleetctl status GROUP` shows who holds the slots; a dead host frees its slot when its lease expires",
            ),
            _ => None,
        }
    }
}
