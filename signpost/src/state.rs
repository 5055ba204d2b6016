//! The pure core: boot flags of both sets as a value, the transitions (with Bottlerocket's
//! preconditions and ours), and the bootloader's choice. No I/O here.
//!
//! # Transitions
//!
//! | command | preconditions | inactive set | active set |
//! |---|---|---|---|
//! | mark-successful-boot | — | — | successful=1; PRIVATE "ever booted" = 1 |
//! | clear-inactive | inactive exists | priority=0 tries_left=0 successful=0 | — |
//! | mark-inactive-valid | inactive exists | tries_left=1 | — |
//! | upgrade-to-inactive | inactive priority=0 and not successful; tries_left>0 | priority=2 successful=0 | priority=1 |
//! | cancel-upgrade | inactive exists | priority=0 | priority=2 |
//! | rollback-to-inactive | inactive successful, or priority>0 and tries_left>0 | priority=2 | priority=1 |
//!
//! These are Bottlerocket's. Our additions:
//! - "Will boot" and "next boot" follow the bootloader's rule ([`Flags::bootable`], [`next_boot`]),
//!   not Bottlerocket's `(priority>0 && tries_left>0) || successful`, which calls a successful set
//!   with priority 0 bootable although GRUB never picks it.
//! - A command that would leave **no** set the bootloader can pick, on a disk where one could be
//!   picked before, is refused ([`crate::Error::WouldLeaveNothingBootable`]). Example: while a new
//!   set is on its trial boot (priority 2, tries_left 0, not yet successful), Bottlerocket's
//!   `cancel-upgrade` or `clear-inactive` would remove the only fallback.
//! - A command may not promote a set ([`promoted`]: mark it successful, make it bootable or
//!   raise it, make it the next boot) that holds nothing bootable. That check reads the disk, so
//!   it is made by [`crate::Signpost::plan`] ([`crate::content`]), not here.

use crate::error::{self, Result};
use crate::{Flags, SetName};
use serde::Serialize;
use snafu::{OptionExt, ensure};
use std::fmt;

/// The boot-relevant state of a disk: the flags of each set and the PRIVATE "ever booted" bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct DiskState {
    /// Flags of set A.
    pub a: Flags,
    /// Flags of set B; `None` on a single-set disk.
    pub b: Option<Flags>,
    /// Bit 57 of the PRIVATE partition: a boot has ever succeeded on this disk.
    pub ever_booted: bool,
}

/// A state-changing command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Command {
    /// The active set booted fine: mark it successful and record that a boot ever succeeded.
    MarkSuccessfulBoot,
    /// Make the inactive set unbootable (before writing new images to it).
    ClearInactive,
    /// The inactive set holds complete, verified images: give it one try.
    MarkInactiveValid,
    /// Boot the inactive set next (once; falls back if it fails before marking success).
    UpgradeToInactive,
    /// Undo `upgrade-to-inactive`: boot the active set next.
    CancelUpgrade,
    /// Boot the previous (inactive) set next.
    RollbackToInactive,
}

impl Command {
    /// All commands, in a fixed order.
    pub const ALL: [Command; 6] = [
        Command::MarkSuccessfulBoot,
        Command::ClearInactive,
        Command::MarkInactiveValid,
        Command::UpgradeToInactive,
        Command::CancelUpgrade,
        Command::RollbackToInactive,
    ];

    /// The command's CLI name.
    pub fn name(self) -> &'static str {
        match self {
            Command::MarkSuccessfulBoot => "mark-successful-boot",
            Command::ClearInactive => "clear-inactive",
            Command::MarkInactiveValid => "mark-inactive-valid",
            Command::UpgradeToInactive => "upgrade-to-inactive",
            Command::CancelUpgrade => "cancel-upgrade",
            Command::RollbackToInactive => "rollback-to-inactive",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl DiskState {
    /// Flags of a set, `None` if the disk has no such set.
    pub fn get(&self, set: SetName) -> Option<Flags> {
        match set {
            SetName::A => Some(self.a),
            SetName::B => self.b,
        }
    }

    fn get_mut(&mut self, set: SetName) -> Option<&mut Flags> {
        match set {
            SetName::A => Some(&mut self.a),
            SetName::B => self.b.as_mut(),
        }
    }

    /// The sets present, in table order.
    pub fn sets(&self) -> impl Iterator<Item = (SetName, Flags)> + '_ {
        [(SetName::A, Some(self.a)), (SetName::B, self.b)]
            .into_iter()
            .filter_map(|(n, f)| f.map(|f| (n, f)))
    }
}

/// The set GRUB's `gptprio.next` picks: among sets with `tries_left > 0 || successful`, the one
/// with the strictly highest priority above 0; ties go to the earlier set in table order (A).
pub fn next_boot(state: &DiskState) -> Option<SetName> {
    let mut best: Option<(SetName, u8)> = None;
    for (name, flags) in state.sets() {
        let eligible = flags.tries_left > 0 || flags.successful;
        if eligible && flags.priority > best.map_or(0, |(_, p)| p) {
            best = Some((name, flags.priority));
        }
    }
    best.map(|(n, _)| n)
}

/// One boot decision: the chosen set and the state after it (tries_left decremented if > 0).
pub fn boot_decision(state: &DiskState) -> Option<(SetName, DiskState)> {
    let chosen = next_boot(state)?;
    let mut after = *state;
    if let Some(f) = after.get_mut(chosen) {
        f.tries_left = f.tries_left.saturating_sub(1);
    }
    Some((chosen, after))
}

/// The sets a change from `before` to `after` promotes: sets it marks successful, sets it makes
/// bootable or raises in priority while bootable, and the set it makes the next boot. Each of
/// them must hold something bootable ([`crate::content`]); a change that only demotes sets or
/// decrements tries promotes nothing.
pub fn promoted(before: &DiskState, after: &DiskState) -> Vec<SetName> {
    let mut sets = Vec::new();
    for (name, a) in after.sets() {
        let b = before.get(name).unwrap_or_default();
        let newly_successful = a.successful && !b.successful;
        let raised = a.bootable() && (!b.bootable() || a.priority > b.priority);
        if newly_successful || raised {
            sets.push(name);
        }
    }
    if let Some(next) = next_boot(after)
        && next_boot(before) != Some(next)
        && !sets.contains(&next)
    {
        sets.push(next);
    }
    sets.sort();
    sets
}

/// Applies `command` to `state` as seen from the running `active` set.
///
/// Returns the new state, or an error naming the unmet precondition. Pure.
pub fn transition(state: &DiskState, active: SetName, command: Command) -> Result<DiskState> {
    ensure!(
        state.get(active).is_some(),
        error::NoSuchSetSnafu { set: active }
    );
    let inactive = active.other();
    let mut next = *state;
    match command {
        Command::MarkSuccessfulBoot => {
            if let Some(f) = next.get_mut(active) {
                f.successful = true;
            }
            next.ever_booted = true;
        }
        Command::ClearInactive => {
            let f = next
                .get_mut(inactive)
                .context(error::InactiveMissingSnafu { set: inactive })?;
            *f = Flags::default();
        }
        Command::MarkInactiveValid => {
            let f = next
                .get_mut(inactive)
                .context(error::InactiveMissingSnafu { set: inactive })?;
            f.tries_left = 1;
        }
        Command::UpgradeToInactive => {
            let f = next
                .get_mut(inactive)
                .context(error::InactiveMissingSnafu { set: inactive })?;
            ensure!(
                f.priority == 0 && !f.successful,
                error::AlreadyMarkedForUpgradeSnafu {
                    set: inactive,
                    flags: *f
                }
            );
            ensure!(
                f.tries_left > 0,
                error::NotMarkedValidSnafu {
                    set: inactive,
                    flags: *f
                }
            );
            f.priority = 2;
            f.successful = false;
            if let Some(a) = next.get_mut(active) {
                a.priority = 1;
            }
        }
        Command::CancelUpgrade => {
            let f = next
                .get_mut(inactive)
                .context(error::InactiveMissingSnafu { set: inactive })?;
            f.priority = 0;
            if let Some(a) = next.get_mut(active) {
                a.priority = 2;
            }
        }
        Command::RollbackToInactive => {
            let f = next
                .get_mut(inactive)
                .context(error::InactiveMissingSnafu { set: inactive })?;
            ensure!(
                f.successful || (f.priority > 0 && f.tries_left > 0),
                error::NotValidForRollbackSnafu {
                    set: inactive,
                    flags: *f
                }
            );
            f.priority = 2;
            if let Some(a) = next.get_mut(active) {
                a.priority = 1;
            }
        }
    }
    ensure!(
        next_boot(&next).is_some() || next_boot(state).is_none(),
        error::WouldLeaveNothingBootableSnafu {
            command,
            after: next
        }
    );
    Ok(next)
}

#[cfg(test)]
mod test;
