//! [`Signpost`]: the disk as seen from the running set, and the state-changing commands.

use crate::device::DiskKind;
use crate::disk::{Disk, TableWarning};
use crate::error::{self, Result};
use crate::gpt::WritePlan;
use crate::state::{self, Command, DiskState};
use crate::{Flags, Partition, SetName};
use serde::Serialize;
use snafu::{OptionExt, ensure};
use std::path::PathBuf;

/// State of the disk from the point of view of a running set.
#[derive(Debug)]
pub struct Signpost {
    disk: Disk,
    active: SetName,
}

/// A planned change: the states before and after, and the exact writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The command.
    pub command: Command,
    /// Flags before.
    pub before: DiskState,
    /// Flags after.
    pub after: DiskState,
    /// The writes, in order, with fsync barriers.
    pub writes: WritePlan,
}

/// One partition in a [`Status`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionStatus {
    /// The partition.
    #[serde(flatten)]
    pub partition: Partition,
    /// Device node, for block devices.
    pub path: Option<PathBuf>,
}

/// One set in a [`Status`]: its own partitions and its own flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetStatus {
    /// Which set.
    pub name: SetName,
    /// BOOT partition.
    pub boot: PartitionStatus,
    /// ROOT partition.
    pub root: PartitionStatus,
    /// HASH partition.
    pub hash: PartitionStatus,
    /// Flags from this set's BOOT partition.
    pub flags: Flags,
    /// Whether the bootloader may pick it.
    pub bootable: bool,
    /// Whether it is the running set.
    pub active: bool,
}

/// What `signpost status` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Status {
    /// The OS disk.
    pub disk: PathBuf,
    /// Image file or block device.
    pub kind: DiskKind,
    /// Logical sector size.
    pub sector_size: u64,
    /// Disk GUID.
    pub disk_guid: String,
    /// Sets in table order.
    pub sets: Vec<SetStatus>,
    /// The running set.
    pub active: SetName,
    /// The set the bootloader picks next (GRUB's rule), if any.
    pub next_boot: Option<SetName>,
    /// Whether a boot ever succeeded (PRIVATE bit 57).
    pub ever_booted: bool,
    /// Problems with the table copies that were tolerated.
    pub warnings: Vec<TableWarning>,
}

impl Signpost {
    /// Wraps a disk with the running set. The set must exist and the disk must have a PRIVATE
    /// partition.
    pub fn new(disk: Disk, active: SetName) -> Result<Signpost> {
        disk.set(active)?;
        disk.private()
            .context(error::NoPrivatePartitionSnafu { path: disk.path() })?;
        Ok(Signpost { disk, active })
    }

    /// Finds the OS disk and the running set on a running host (see [`crate::discovery`]).
    pub fn discover(sysfs_root: &std::path::Path, dev_root: &std::path::Path) -> Result<Signpost> {
        crate::discovery::discover(sysfs_root, dev_root)
    }

    /// The disk.
    pub fn disk(&self) -> &Disk {
        &self.disk
    }

    /// Gives the disk back.
    pub fn into_disk(self) -> Disk {
        self.disk
    }

    /// The running set.
    pub fn active(&self) -> SetName {
        self.active
    }

    /// The other set; an error on a single-set disk.
    pub fn inactive(&self) -> Result<SetName> {
        let other = self.active.other();
        ensure!(
            self.disk.is_dual(),
            error::InactiveMissingSnafu { set: other }
        );
        Ok(other)
    }

    /// The current flags.
    pub fn state(&self) -> DiskState {
        self.disk.state()
    }

    /// The set the bootloader picks next.
    pub fn next_boot(&self) -> Option<SetName> {
        state::next_boot(&self.state())
    }

    /// Whether a boot ever succeeded on this disk (PRIVATE bit 57).
    pub fn has_boot_ever_succeeded(&self) -> bool {
        self.state().ever_booted
    }

    /// The full status.
    pub fn status(&self) -> Status {
        let state = self.state();
        let ps = |p: &Partition| PartitionStatus {
            partition: p.clone(),
            path: self.disk.partition_path(p),
        };
        let sets = self
            .disk
            .sets()
            .iter()
            .map(|s| {
                let flags = state.get(s.name).unwrap_or_default();
                SetStatus {
                    name: s.name,
                    boot: ps(&s.boot),
                    root: ps(&s.root),
                    hash: ps(&s.hash),
                    flags,
                    bootable: flags.bootable(),
                    active: s.name == self.active,
                }
            })
            .collect();
        Status {
            disk: self.disk.path().to_path_buf(),
            kind: self.disk.kind(),
            sector_size: self.disk.sector_size(),
            disk_guid: self.disk.table().disk_guid(),
            sets,
            active: self.active,
            next_boot: state::next_boot(&state),
            ever_booted: state.ever_booted,
            warnings: self.disk.warnings(),
        }
    }

    /// Plans a command without writing anything.
    pub fn plan(&self, command: Command) -> Result<Plan> {
        let before = self.state();
        let after = state::transition(&before, self.active, command)?;
        for set in state::promoted(&before, &after) {
            if let Err(problem) = self.disk.check_content(set)? {
                return error::SetNotBootableSnafu {
                    command,
                    set,
                    problem,
                }
                .fail();
            }
        }
        let writes = self.disk.plan_state(&after)?;
        Ok(Plan {
            command,
            before,
            after,
            writes,
        })
    }

    /// Applies a plan made by [`Signpost::plan`] on the current table: writes both GPT copies
    /// durably, re-reads and verifies them.
    pub fn apply(&mut self, plan: &Plan) -> Result<()> {
        ensure!(
            self.state() == plan.before,
            error::StalePlanSnafu {
                path: self.disk.path()
            }
        );
        self.disk.apply_plan(&plan.writes, &plan.after)
    }

    /// Plans and applies a command.
    pub fn run(&mut self, command: Command) -> Result<()> {
        let plan = self.plan(command)?;
        self.apply(&plan)
    }

    /// Marks the active set successful and records that a boot succeeded.
    pub fn mark_successful_boot(&mut self) -> Result<()> {
        self.run(Command::MarkSuccessfulBoot)
    }

    /// Makes the inactive set unbootable (priority, tries_left, successful = 0).
    pub fn clear_inactive(&mut self) -> Result<()> {
        self.run(Command::ClearInactive)
    }

    /// Gives the inactive set one try (tries_left = 1).
    pub fn mark_inactive_valid(&mut self) -> Result<()> {
        self.run(Command::MarkInactiveValid)
    }

    /// Boots the inactive set next (priority 2 vs 1).
    pub fn upgrade_to_inactive(&mut self) -> Result<()> {
        self.run(Command::UpgradeToInactive)
    }

    /// Undoes `upgrade_to_inactive`.
    pub fn cancel_upgrade(&mut self) -> Result<()> {
        self.run(Command::CancelUpgrade)
    }

    /// Boots the previous set next.
    pub fn rollback_to_inactive(&mut self) -> Result<()> {
        self.run(Command::RollbackToInactive)
    }
}
