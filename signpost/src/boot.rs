//! The boot selector: what GRUB's `gptprio.next` does, on a [`Disk`].

use crate::disk::Disk;
use crate::error::Result;
use crate::gpt::WritePlan;
use crate::state::{self, DiskState};
use crate::{PartitionSet, SetName};
use serde::Serialize;

/// The outcome of one boot decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootChoice {
    /// The chosen set.
    pub set: SetName,
    /// Its partitions (GRUB: `boot_uuid` = `partitions.boot.unique_guid`, ROOT and HASH at
    /// PARTNROFF 1 and 2).
    pub partitions: PartitionSet,
    /// The set's tries_left after this decision.
    pub tries_left_after: u8,
}

/// A planned boot decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootPlan {
    /// The choice.
    pub choice: BootChoice,
    /// Flags before.
    pub before: DiskState,
    /// Flags after (tries_left decremented if it was > 0).
    pub after: DiskState,
    /// The writes, if tries_left was decremented.
    pub writes: Option<WritePlan>,
}

/// Plans one boot decision without writing.
pub fn plan_boot(disk: &Disk) -> Result<Option<BootPlan>> {
    let before = disk.state();
    let Some((set, after)) = state::boot_decision(&before) else {
        return Ok(None);
    };
    let writes = if after != before {
        Some(disk.plan_state(&after)?)
    } else {
        None
    };
    let choice = BootChoice {
        set,
        partitions: disk.set(set)?,
        tries_left_after: after.get(set).map_or(0, |f| f.tries_left),
    };
    Ok(Some(BootPlan {
        choice,
        before,
        after,
        writes,
    }))
}

/// GRUB `gptprio.next` on a disk: choose, decrement tries, write; `None` if nothing bootable.
///
/// Among BOOT partitions with `priority > 0` and (`tries_left > 0` or `successful`), the
/// strictly highest priority wins (ties go to the earlier partition). If the winner has
/// `tries_left > 0`, it is decremented and both table copies are written durably before this
/// returns.
pub fn boot_select(disk: &mut Disk) -> Result<Option<BootChoice>> {
    let Some(plan) = plan_boot(disk)? else {
        return Ok(None);
    };
    if let Some(writes) = &plan.writes {
        disk.apply_plan(writes, &plan.after)?;
    }
    Ok(Some(plan.choice))
}
