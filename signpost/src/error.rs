//! The crate's error type and the documented exit codes of the `signpost` binary.

use crate::state::{Command, DiskState};
use crate::{Flags, SetName};
use snafu::Snafu;
use std::path::PathBuf;
use std::time::Duration;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in signpost. Display shows this layer's message only; the cause
/// is reachable through [`std::error::Error::source`].
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// Opening the disk (image file or block device) failed.
    #[snafu(display("failed to open disk {}", path.display()))]
    OpenDisk {
        /// Disk path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// The disk cannot be written: read-only file, file system or device.
    #[snafu(display("disk {} is read-only, cannot change its partition table", path.display()))]
    DiskReadOnly {
        /// Disk path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// A write was attempted through a [`crate::Disk`] opened with `open_read_only`.
    #[snafu(display("disk {} was opened read-only; open it read-write to change flags", path.display()))]
    OpenedReadOnly {
        /// Disk path.
        path: PathBuf,
    },

    /// Another process holds the lock on the disk.
    #[snafu(display(
        "disk {} is locked by another signpost/updog{} (waited {:.1}s)",
        path.display(),
        holder.map(|p| format!(" (pid {p}?)")).unwrap_or_default(),
        waited.as_secs_f64()
    ))]
    DiskLocked {
        /// Disk path.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
        /// Pid holding the lock according to /proc/locks, if found.
        holder: Option<u32>,
    },

    /// Taking the lock failed for another reason than contention.
    #[snafu(display("failed to lock disk {}", path.display()))]
    LockDisk {
        /// Disk path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// The path is neither a regular file nor a block device.
    #[snafu(display("{} is neither a disk image file nor a block device", path.display()))]
    NotADisk {
        /// Path.
        path: PathBuf,
    },

    /// Asking the kernel for the block device's sector size failed.
    #[snafu(display("failed to get the sector size of block device {}", path.display()))]
    SectorSize {
        /// Device path.
        path: PathBuf,
        /// Cause.
        source: gptman::linux::BlockError,
    },

    /// Reading from the disk failed.
    #[snafu(display("failed to read the partition table of {}", path.display()))]
    ReadTable {
        /// Disk path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// Neither GPT header carries the "EFI PART" signature (at 512- or 4096-byte sectors).
    #[snafu(display(
        "{} has no GUID partition table (no \"EFI PART\" header at 512- or 4096-byte sectors)",
        path.display()
    ))]
    NotGpt {
        /// Disk path.
        path: PathBuf,
    },

    /// Both GPT copies are damaged.
    #[snafu(display(
        "{}: both GPT copies are invalid (primary: {primary}; backup: {backup})",
        path.display()
    ))]
    BothCopiesInvalid {
        /// Disk path.
        path: PathBuf,
        /// What is wrong with the primary.
        primary: crate::gpt::CopyProblem,
        /// What is wrong with the backup.
        backup: crate::gpt::CopyProblem,
    },

    /// The table's CRCs are valid but its header or entries cannot be right for this disk:
    /// entries outside the usable range or the disk, overlapping entries, a truncated disk.
    #[snafu(display("{}: the {copy} partition table is unusable: {problem}", path.display()))]
    BadPartitionTable {
        /// Disk path.
        path: PathBuf,
        /// The copy the reader would have used.
        copy: crate::gpt::CopyKind,
        /// What is wrong.
        problem: crate::gpt::TableProblem,
    },

    /// A partition's offset or length does not fit in 64 bits.
    #[snafu(display(
        "{}: partition {number} (sectors {first_lba}..={last_lba}) has a byte offset or length that does not fit in 64 bits",
        path.display()
    ))]
    PartitionOffsetOverflow {
        /// Disk path.
        path: PathBuf,
        /// Partition number.
        number: u32,
        /// First sector.
        first_lba: u64,
        /// Last sector.
        last_lba: u64,
    },

    /// A transition would make a set bootable (or mark it successful) although it holds nothing
    /// a bootloader could boot.
    #[snafu(display("refusing {command}: set {set} holds nothing bootable ({problem})"))]
    SetNotBootable {
        /// The refused command.
        command: Command,
        /// The set it would have made bootable.
        set: SetName,
        /// What is missing.
        problem: crate::content::ContentProblem,
    },

    /// Reading a set's partitions to check their content failed.
    #[snafu(display("failed to read partition {number} of {} at byte {offset}", path.display()))]
    ReadPartition {
        /// Disk path.
        path: PathBuf,
        /// Partition number.
        number: u32,
        /// Byte offset in the disk.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },

    /// The valid header says the backup is not at the end of the disk (disk grown?).
    #[snafu(display(
        "{}: the backup GPT header is recorded at sector {alternate_lba} but the disk's last sector is {last_lba}",
        path.display()
    ))]
    BackupNotAtEnd {
        /// Disk path.
        path: PathBuf,
        /// Where the header says the other copy is.
        alternate_lba: u64,
        /// Last sector of the disk.
        last_lba: u64,
    },

    /// No BOOT partition (Bottlerocket type GUID) on the disk.
    #[snafu(display("{}: no BOTTLEROCKET-BOOT partition (type {})", path.display(), crate::guids::BOOT))]
    NoBootPartition {
        /// Disk path.
        path: PathBuf,
    },

    /// More than two BOOT partitions.
    #[snafu(display(
        "{}: {count} BOOT partitions (at {numbers:?}); an A/B disk has one or two",
        path.display()
    ))]
    TooManyBootPartitions {
        /// Disk path.
        path: PathBuf,
        /// How many.
        count: usize,
        /// Their partition numbers.
        numbers: Vec<u32>,
    },

    /// A set's ROOT or HASH partition is missing or not where the bootloader looks for it.
    #[snafu(display(
        "{}: set {set} has BOOT at partition {boot_number}, so its {role} must be partition {expected} (PARTNROFF={offset}), but {found}",
        path.display()
    ))]
    BadSetLayout {
        /// Disk path.
        path: PathBuf,
        /// Which set.
        set: SetName,
        /// "ROOT" or "HASH".
        role: &'static str,
        /// BOOT partition number.
        boot_number: u32,
        /// Expected partition number.
        expected: u32,
        /// 1 for ROOT, 2 for HASH.
        offset: u32,
        /// What was found instead.
        found: String,
    },

    /// No BOTTLEROCKET-PRIVATE partition.
    #[snafu(display("{}: no BOTTLEROCKET-PRIVATE partition (type {})", path.display(), crate::guids::PRIVATE))]
    NoPrivatePartition {
        /// Disk path.
        path: PathBuf,
    },

    /// The named set is not on this disk.
    #[snafu(display("partition set {set} is not available: the disk has a single partition set"))]
    NoSuchSet {
        /// Which set.
        set: SetName,
    },

    /// An inactive-set operation on a single-set disk.
    #[snafu(display(
        "inactive partition set {set} is not available: the disk has a single partition set (built without in-place updates)"
    ))]
    InactiveMissing {
        /// Which set would be inactive.
        set: SetName,
    },

    /// upgrade-to-inactive: the inactive set is already marked for upgrade.
    #[snafu(display("inactive set {set} is already marked for upgrade ({flags})"))]
    AlreadyMarkedForUpgrade {
        /// Inactive set.
        set: SetName,
        /// Its flags.
        flags: Flags,
    },

    /// upgrade-to-inactive: the inactive set was not marked valid.
    #[snafu(display("inactive set {set} has not been marked valid for upgrade ({flags})"))]
    NotMarkedValid {
        /// Inactive set.
        set: SetName,
        /// Its flags.
        flags: Flags,
    },

    /// rollback-to-inactive: the inactive set never booted successfully and is not pending.
    #[snafu(display("inactive set {set} is not valid to roll back to ({flags})"))]
    NotValidForRollback {
        /// Inactive set.
        set: SetName,
        /// Its flags.
        flags: Flags,
    },

    /// The command would leave nothing the bootloader can pick.
    #[snafu(display(
        "refusing {command}: afterwards no set would be bootable (A: {}, B: {})",
        after.a,
        after.b.map(|f| f.to_string()).unwrap_or_else(|| "absent".into())
    ))]
    WouldLeaveNothingBootable {
        /// The refused command.
        command: Command,
        /// The state it would have produced.
        after: DiskState,
    },

    /// A plan was made against a different table than the one on disk now.
    #[snafu(display("{}: the partition table changed since the plan was made", path.display()))]
    StalePlan {
        /// Disk path.
        path: PathBuf,
    },

    /// The table read back after a write is not what was written.
    #[snafu(display(
        "after writing, the partition table read back from {} does not match what was written",
        path.display()
    ))]
    VerifyWrite {
        /// Disk path.
        path: PathBuf,
    },

    /// Writing the partition table failed.
    #[snafu(display("failed to write the partition table of {} at byte {offset}", path.display()))]
    WriteTable {
        /// Disk path.
        path: PathBuf,
        /// Where.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },

    /// fsync of the disk failed.
    #[snafu(display("failed to flush {} to stable storage", path.display()))]
    SyncDisk {
        /// Disk path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// Serialising a GPT structure failed (gptman).
    #[snafu(display("failed to encode the partition table for {}", path.display()))]
    EncodeTable {
        /// Disk path.
        path: PathBuf,
        /// Cause.
        source: gptman::Error,
    },

    /// The partitions given to `write_new_table` are not a valid table.
    #[snafu(display("invalid partition layout for {}: {reason}", path.display()))]
    InvalidLayout {
        /// Image path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// Discovery: stat of the root directory failed.
    #[snafu(display("failed to stat {}", path.display()))]
    StatRoot {
        /// Path stat'ed.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// Discovery: reading sysfs failed.
    #[snafu(display("failed to read {}", path.display()))]
    ReadSysfs {
        /// Path in sysfs.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// Discovery: a sysfs file had unexpected content.
    #[snafu(display("unexpected content in {}: {content:?}", path.display()))]
    ParseSysfs {
        /// Path in sysfs.
        path: PathBuf,
        /// The content.
        content: String,
    },

    /// Discovery: the root device is not a partition and has no lower devices.
    #[snafu(display(
        "root device {device} ({}) has no lower devices and is not a partition",
        path.display()
    ))]
    NoLowerDevices {
        /// Device name (e.g. dm-0).
        device: String,
        /// Its sysfs directory.
        path: PathBuf,
    },

    /// Discovery: the root device's partitions are on more than one disk.
    #[snafu(display("root device's lower devices are on different disks: {disks:?}"))]
    SeveralDisks {
        /// The disk names.
        disks: Vec<String>,
    },

    /// Discovery: the partitions under the root are not in either set.
    #[snafu(display(
        "active partition(s) {numbers:?} of {} are not in either detected partition set",
        disk.display()
    ))]
    ActiveNotInSets {
        /// Disk path.
        disk: PathBuf,
        /// Partition numbers under the root device.
        numbers: Vec<u32>,
    },

    /// `--disk` without `--active`, and the disk is not the running host's OS disk.
    #[snafu(display(
        "--active a|b is required with --disk {} (it is not the running host's OS disk)",
        disk.display()
    ))]
    ActiveRequired {
        /// The disk given.
        disk: PathBuf,
    },

    /// Writing man pages / completions failed.
    #[snafu(display("failed to write documentation to {}", path.display()))]
    WriteDocs {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// Exit codes of the `signpost` binary. Stable: never renumbered or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: success (also `has-boot-ever-succeeded` when the answer is "no").
    Success = 0,
    /// 1: any other failure (I/O, documentation output).
    Failure = 1,
    /// 2: usage error (clap).
    Usage = 2,
    /// 3: the disk or its partition table is unusable (not a GPT, both copies bad, bad layout,
    /// overlapping or out-of-range entries, truncated disk).
    InvalidDisk = 3,
    /// 4: the command was refused by a precondition (state unchanged).
    Refused = 4,
    /// 5: the disk is locked by another process.
    Locked = 5,
    /// 6: the disk is read-only.
    ReadOnly = 6,
    /// 7: `boot-select` found no bootable set.
    NothingBootable = 7,
    /// 8: the OS disk or active set could not be discovered.
    Discovery = 8,
}

impl ExitStatus {
    /// Numeric exit code.
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
            InvalidDisk,
            Refused,
            Locked,
            ReadOnly,
            NothingBootable,
            Discovery,
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
            InvalidDisk => "invalid-disk",
            Refused => "refused",
            Locked => "locked",
            ReadOnly => "read-only",
            NothingBootable => "nothing-bootable",
            Discovery => "discovery",
        }
    }
    fn meaning(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Failure => "failure",
            Usage => "usage",
            InvalidDisk => "unusable disk or partition table",
            Refused => "refused by a precondition (nothing changed)",
            Locked => "disk locked by another process",
            ReadOnly => "disk read-only",
            NothingBootable => "boot-select found nothing bootable",
            Discovery => "OS disk or active set not discoverable",
        }
    }
}

impl Error {
    /// The exit code the binary returns for this error.
    pub fn exit_code(&self) -> ExitStatus {
        use Error::*;
        match self {
            NotGpt { .. }
            | BothCopiesInvalid { .. }
            | BackupNotAtEnd { .. }
            | BadPartitionTable { .. }
            | PartitionOffsetOverflow { .. }
            | NoBootPartition { .. }
            | TooManyBootPartitions { .. }
            | BadSetLayout { .. }
            | NoPrivatePartition { .. }
            | NotADisk { .. }
            | InvalidLayout { .. } => ExitStatus::InvalidDisk,
            NoSuchSet { .. }
            | InactiveMissing { .. }
            | AlreadyMarkedForUpgrade { .. }
            | NotMarkedValid { .. }
            | NotValidForRollback { .. }
            | WouldLeaveNothingBootable { .. }
            | SetNotBootable { .. } => ExitStatus::Refused,
            DiskLocked { .. } => ExitStatus::Locked,
            DiskReadOnly { .. } | OpenedReadOnly { .. } => ExitStatus::ReadOnly,
            StatRoot { .. }
            | ReadSysfs { .. }
            | ParseSysfs { .. }
            | NoLowerDevices { .. }
            | SeveralDisks { .. }
            | ActiveNotInSets { .. }
            | ActiveRequired { .. } => ExitStatus::Discovery,
            _ => ExitStatus::Failure,
        }
    }

    /// A hint for the operator, if there is a useful one.
    pub fn hint(&self) -> Option<String> {
        use Error::*;
        Some(match self {
            DiskLocked { .. } => {
                "another update or flag change is in progress; retry when it has finished".into()
            }
            DiskReadOnly { .. } => {
                "check the file's permissions or the device's read-only flag (blockdev --getro)"
                    .into()
            }
            NotMarkedValid { .. } => {
                "write the new images to the inactive set, then run mark-inactive-valid".into()
            }
            AlreadyMarkedForUpgrade { .. } => {
                "run clear-inactive before writing new images, or cancel-upgrade to undo".into()
            }
            WouldLeaveNothingBootable { .. } => {
                "the active set has not been marked successful yet; run mark-successful-boot first"
                    .into()
            }
            BackupNotAtEnd { .. } => "move the backup table to the end with `sgdisk -e`".into(),
            BadPartitionTable {
                problem: crate::gpt::TableProblem::Truncated { .. },
                ..
            } => "the disk image was cut short; restore it from a complete copy".into(),
            BadPartitionTable { path, .. } => format!(
                "the table was not written by signpost or os-image; inspect it with `sgdisk -v {}`",
                path.display()
            ),
            SetNotBootable { set, .. } => format!(
                "set {set} was never written or was damaged; check --active (the running set) and write the set's images first"
            ),
            BadSetLayout { .. } => {
                "the bootloader finds ROOT and HASH as the two partitions right after BOOT".into()
            }
            ActiveNotInSets { .. } | NoLowerDevices { .. } => {
                "on a disk image, pass --disk PATH --active a|b".into()
            }
            _ => return None,
        })
    }
}
