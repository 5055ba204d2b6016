//! The subcommands of the `signpost` binary as library calls: [`run`] takes parsed arguments and
//! returns a serialisable [`Outcome`]; `output` renders it.

use crate::cli::{Cli, Cmd, GlobalArgs};
use serde::Serialize;
use signpost::device::Access;
use signpost::discovery;
use signpost::state::{Command as StateCommand, DiskState};
use signpost::{BootChoice, Disk, ExitStatus, Result, SetName, Signpost, Status, boot_select};
use std::time::Duration;

/// The result of one invocation, rendered by `output`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// `status`.
    Status(Status),
    /// A state-changing command.
    Changed {
        /// The command.
        command: StateCommand,
        /// Flags before.
        before: DiskState,
        /// Flags after.
        after: DiskState,
        /// Set booting next.
        next_boot: Option<SetName>,
    },
    /// `has-boot-ever-succeeded`.
    EverBooted {
        /// The answer.
        has_boot_ever_succeeded: bool,
    },
    /// `boot-select`.
    BootSelected {
        /// The choice, or none.
        choice: Option<BootChoice>,
    },
    /// Nothing to print (`generate-docs` is answered by main).
    Nothing,
}

impl Outcome {
    /// Exit status of a successful run.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::BootSelected { choice: None } => ExitStatus::NothingBootable,
            _ => ExitStatus::Success,
        }
    }
}

fn lock_wait(g: &GlobalArgs) -> Duration {
    Duration::from_secs_f64(g.lock_timeout.clamp(0.0, 86_400.0))
}

fn signpost(g: &GlobalArgs, access: Access) -> Result<Signpost> {
    discovery::open_os_disk(
        g.disk.as_deref(),
        g.active,
        &g.sysfs_root,
        &g.dev_root,
        access,
    )
}

/// Runs one invocation.
pub fn run(cli: &Cli) -> Result<Outcome> {
    let g = &cli.global;
    let rw = Access::ReadWrite {
        lock_wait: lock_wait(g),
    };
    let change = |command: StateCommand| -> Result<Outcome> {
        let mut sp = signpost(g, rw)?;
        let plan = sp.plan(command)?;
        sp.apply(&plan)?;
        Ok(Outcome::Changed {
            command,
            before: plan.before,
            after: plan.after,
            next_boot: sp.next_boot(),
        })
    };
    match &cli.command {
        Cmd::Status { .. } => Ok(Outcome::Status(signpost(g, Access::ReadOnly)?.status())),
        Cmd::MarkSuccessfulBoot => change(StateCommand::MarkSuccessfulBoot),
        Cmd::ClearInactive => change(StateCommand::ClearInactive),
        Cmd::MarkInactiveValid => change(StateCommand::MarkInactiveValid),
        Cmd::UpgradeToInactive => change(StateCommand::UpgradeToInactive),
        Cmd::CancelUpgrade => change(StateCommand::CancelUpgrade),
        Cmd::RollbackToInactive => change(StateCommand::RollbackToInactive),
        Cmd::HasBootEverSucceeded { .. } => Ok(Outcome::EverBooted {
            has_boot_ever_succeeded: signpost(g, Access::ReadOnly)?.has_boot_ever_succeeded(),
        }),
        Cmd::BootSelect { .. } => {
            let mut disk = match &g.disk {
                Some(path) => Disk::open_with(path, rw)?,
                None => signpost(g, rw)?.into_disk(),
            };
            Ok(Outcome::BootSelected {
                choice: boot_select(&mut disk)?,
            })
        }
        // Answered by main (abos-shell's docs generator) before `run`.
        Cmd::GenerateDocs { .. } => Ok(Outcome::Nothing),
    }
}
