//! The documented process exit statuses of `updog` (one enum, never renumbered).
//!
//! Scripts and fleet tooling key on these numbers. A value, once published, keeps its meaning
//! forever; new situations get new numbers.

use serde::Serialize;

/// Every exit status `updog` can return.
///
/// | code | name | meaning |
/// |---:|---|---|
/// | 0 | `Success` | the command did what was asked: an update is available (`check-update`), was written and activated (`update`), staged (`update-image`), applied or reverted |
/// | 1 | `Failure` | an operational error not covered by a more specific code |
/// | 2 | `Usage` | bad command line or configuration (`/etc/updog.toml`, `/etc/os-release`) |
/// | 3 | `NothingNewer` | the repository has nothing newer than the running version |
/// | 4 | `NotInWaveYet` | an update exists but this host's wave has not opened yet (the output says when) |
/// | 5 | `VersionLocked` | `version_lock` pins this host and nothing matching it is available |
/// | 6 | `NoUpdateForHost` | the manifest has no entry at all for this variant and architecture |
/// | 7 | `ImageNotFound` | `--image VERSION` names a version the manifest does not offer this host |
/// | 10 | `LockHeld` | another `updog` holds the update lock |
/// | 11 | `VerificationFailed` | a signature, length or hash check failed (TUF metadata, a target, or the written partitions), or this host's trust state (`/var/lib/updog/tuf`) is damaged |
/// | 12 | `MetadataExpired` | repository metadata has expired (possible freeze attack) |
/// | 13 | `RollbackDetected` | the repository offered older metadata than this host already trusts |
/// | 14 | `ClockSteppedBack` | the system clock is earlier than a time this host has already seen |
/// | 15 | `Network` | the repository could not be reached or kept failing after retries |
/// | 16 | `Disk` | reading or writing the OS disk or its partition table failed |
/// | 17 | `ImageTooLarge` | a decompressed image does not fit its partition |
/// | 18 | `BadState` | the partition flags do not allow this action (e.g. nothing staged to apply, nothing applied to revert) |
/// | 19 | `UnsafeState` | a state file or directory (`/var/lib/updog`, the migration caches) is a symbolic link, not owned by root, or writable by others; nothing was written through it |
/// | 20 | `HealthCheckFailed` | `health-check`: a health check failed or timed out; the boot was not marked successful (and was rolled back unless `health_failure_action = "report"`) |
/// | 21 | `OutsideWindow` | `update`: the update was staged (written, verified) but not activated, because `update_window` is closed (the output says when it opens) |
/// | 22 | `ReleaseHalted` | `update` with `[fleet]`: the release is halted for this host's group (a host's health check failed, or an operator halted it); staged, not activated. Also `update`/`update-image` for a version whose health check failed on this host (taken again only with `--image`) |
/// | 23 | `NoRebootSlot` | `update` with `[fleet]`: no reboot slot within `acquire_deadline_secs` (slots full, or etcd unreachable); staged, not activated, never rebooted uncoordinated |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum ExitStatus {
    /// The command did what was asked.
    Success = 0,
    /// An operational error not covered by a more specific code.
    Failure = 1,
    /// Bad command line or configuration.
    Usage = 2,
    /// Nothing newer than the running version.
    NothingNewer = 3,
    /// An update exists but this host's wave has not opened yet.
    NotInWaveYet = 4,
    /// `version_lock` pins this host and nothing matching it is available.
    VersionLocked = 5,
    /// No entry at all for this variant and architecture.
    NoUpdateForHost = 6,
    /// `--image VERSION` is not offered to this host.
    ImageNotFound = 7,
    /// Another updog holds the update lock.
    LockHeld = 10,
    /// A signature, length or hash check failed.
    VerificationFailed = 11,
    /// Repository metadata has expired.
    MetadataExpired = 12,
    /// The repository offered older metadata than already trusted.
    RollbackDetected = 13,
    /// The system clock went backwards.
    ClockSteppedBack = 14,
    /// The repository could not be reached.
    Network = 15,
    /// Disk or partition table I/O failed.
    Disk = 16,
    /// A decompressed image does not fit its partition.
    ImageTooLarge = 17,
    /// The partition flags do not allow this action.
    BadState = 18,
    /// A state file or directory is a link, not ours, or writable by others.
    UnsafeState = 19,
    /// A health check failed or timed out after a boot into a new set.
    HealthCheckFailed = 20,
    /// `update` staged the update but did not activate it: the maintenance window is closed.
    OutsideWindow = 21,
    /// The release is halted for the host's fleet group.
    ReleaseHalted = 22,
    /// No fleet reboot slot before the deadline.
    NoRebootSlot = 23,
}

impl ExitStatus {
    /// The numeric process exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        use ExitStatus::*;
        &[
            Success,
            Failure,
            Usage,
            NothingNewer,
            NotInWaveYet,
            VersionLocked,
            NoUpdateForHost,
            ImageNotFound,
            LockHeld,
            VerificationFailed,
            MetadataExpired,
            RollbackDetected,
            ClockSteppedBack,
            Network,
            Disk,
            ImageTooLarge,
            BadState,
            UnsafeState,
            HealthCheckFailed,
            OutsideWindow,
            ReleaseHalted,
            NoRebootSlot,
        ]
    }
    fn code(self) -> u8 {
        self as u8
    }
    fn name(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Failure => "failure",
            Usage => "usage",
            NothingNewer => "nothing-newer",
            NotInWaveYet => "not-in-wave-yet",
            VersionLocked => "version-locked",
            NoUpdateForHost => "no-update-for-host",
            ImageNotFound => "image-not-found",
            LockHeld => "lock-held",
            VerificationFailed => "verification-failed",
            MetadataExpired => "metadata-expired",
            RollbackDetected => "rollback-detected",
            ClockSteppedBack => "clock-stepped-back",
            Network => "network",
            Disk => "disk",
            ImageTooLarge => "image-too-large",
            BadState => "bad-state",
            UnsafeState => "unsafe-state",
            HealthCheckFailed => "health-check-failed",
            OutsideWindow => "outside-window",
            ReleaseHalted => "release-halted",
            NoRebootSlot => "no-reboot-slot",
        }
    }
    fn meaning(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success (update available / written / applied / reverted)",
            Failure => "other failure",
            Usage => "usage or configuration",
            NothingNewer => "nothing newer",
            NotInWaveYet => "not in this host's wave yet (output says when it opens)",
            VersionLocked => "version_lock holds",
            NoUpdateForHost => "no updates for this variant/arch",
            ImageNotFound => "--image version not offered",
            LockHeld => "another updog runs",
            VerificationFailed => {
                "verification failed (also: this host's trust state in /var/lib/updog/tuf is damaged; the message says how to recover)"
            }
            MetadataExpired => "metadata expired",
            RollbackDetected => "rollback detected",
            ClockSteppedBack => "clock went backwards (more than 5 minutes behind the last run)",
            Network => "network (unreachable, not found, or no data within the retry deadline)",
            Disk => "disk error",
            ImageTooLarge => "image too large",
            BadState => {
                "partition flags do not allow this action (nothing staged to apply, nothing applied to revert)"
            }
            UnsafeState => {
                "a state file or directory (/var/lib/updog, the migration caches) is a symbolic link, not owned by root or writable by others: nothing was written through it"
            }
            HealthCheckFailed => {
                "health-check: a health check failed or timed out (the boot was not marked successful; rolled back unless health_failure_action = \"report\")"
            }
            OutsideWindow => {
                "update staged but did not activate or reboot: the maintenance window (update_window) is closed (output says when it opens)"
            }
            ReleaseHalted => {
                "update with [fleet]: the release is halted for the host's group (also: the version failed its health check on this host; --image takes it anyway)"
            }
            NoRebootSlot => {
                "update with [fleet]: no reboot slot before the deadline (slots full or etcd unreachable; never reboots uncoordinated)"
            }
        }
    }
}

#[cfg(test)]
mod test {
    use super::ExitStatus;

    #[test]
    fn codes_are_stable() {
        // Never renumber: this table is the contract with operators.
        let table = [
            (ExitStatus::Success, 0),
            (ExitStatus::Failure, 1),
            (ExitStatus::Usage, 2),
            (ExitStatus::NothingNewer, 3),
            (ExitStatus::NotInWaveYet, 4),
            (ExitStatus::VersionLocked, 5),
            (ExitStatus::NoUpdateForHost, 6),
            (ExitStatus::ImageNotFound, 7),
            (ExitStatus::LockHeld, 10),
            (ExitStatus::VerificationFailed, 11),
            (ExitStatus::MetadataExpired, 12),
            (ExitStatus::RollbackDetected, 13),
            (ExitStatus::ClockSteppedBack, 14),
            (ExitStatus::Network, 15),
            (ExitStatus::Disk, 16),
            (ExitStatus::ImageTooLarge, 17),
            (ExitStatus::BadState, 18),
            (ExitStatus::UnsafeState, 19),
            (ExitStatus::HealthCheckFailed, 20),
            (ExitStatus::OutsideWindow, 21),
            (ExitStatus::ReleaseHalted, 22),
            (ExitStatus::NoRebootSlot, 23),
        ];
        for (status, code) in table {
            assert_eq!(status.code(), code, "{status:?}");
        }
    }
}

/// Which exit codes the binary returns.
///
/// The default is ours: distinct, documented codes ([`ExitStatus`]). A caller written for
/// Bottlerocket's updog (which returns 0 or 1 only, and 0 for "No update required", fact sheet
/// §1.11, Bottlerocket#990) can ask for that behaviour with the environment variable
/// `UPDOG_EXIT_CODES=bottlerocket`; the output is unchanged, only the number differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExitCodeStyle {
    /// Our distinct codes.
    #[default]
    Abos,
    /// Bottlerocket's: 0 success, 1 any error; "nothing to do" is 0 for `update` and
    /// `update-image`, 1 for `check-update` ("No update available").
    Bottlerocket,
}

/// The environment variable that selects the [`ExitCodeStyle`].
pub const EXIT_CODES_ENV: &str = "UPDOG_EXIT_CODES";

impl ExitCodeStyle {
    /// From `UPDOG_EXIT_CODES` (`abos`, the default, or `bottlerocket`); any other value is a
    /// usage error naming the accepted values.
    pub fn from_env() -> Result<ExitCodeStyle, String> {
        match std::env::var(EXIT_CODES_ENV) {
            Err(std::env::VarError::NotPresent) => Ok(ExitCodeStyle::Abos),
            Ok(v) if v.is_empty() || v == "abos" => Ok(ExitCodeStyle::Abos),
            Ok(v) if v == "bottlerocket" => Ok(ExitCodeStyle::Bottlerocket),
            Ok(v) => Err(format!(
                "{EXIT_CODES_ENV}={v:?} is not known: use `abos` (the default) or `bottlerocket`"
            )),
            Err(e) => Err(format!("{EXIT_CODES_ENV}: {e}")),
        }
    }

    /// The process exit code for `status`, returned by a `check-update` run (`check`) or another
    /// command.
    pub fn code(self, status: ExitStatus, check: bool) -> u8 {
        match self {
            ExitCodeStyle::Abos => status.code(),
            ExitCodeStyle::Bottlerocket => match status {
                ExitStatus::Success => 0,
                ExitStatus::NothingNewer
                | ExitStatus::NotInWaveYet
                | ExitStatus::VersionLocked
                | ExitStatus::NoUpdateForHost
                | ExitStatus::ImageNotFound => u8::from(check),
                _ => 1,
            },
        }
    }
}

#[cfg(test)]
mod style_test {
    use super::*;

    #[test]
    fn bottlerocket_style_is_zero_or_one() {
        let b = ExitCodeStyle::Bottlerocket;
        assert_eq!(b.code(ExitStatus::Success, false), 0);
        assert_eq!(
            b.code(ExitStatus::NotInWaveYet, false),
            0,
            "update: no-op is 0"
        );
        assert_eq!(
            b.code(ExitStatus::NothingNewer, true),
            1,
            "check-update: none is 1"
        );
        assert_eq!(b.code(ExitStatus::Network, false), 1);
        assert_eq!(b.code(ExitStatus::Usage, true), 1);
        assert_eq!(ExitCodeStyle::Abos.code(ExitStatus::NotInWaveYet, false), 4);
    }
}
