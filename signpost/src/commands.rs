//! The subcommands of the `signpost` binary as library calls: [`run`] takes parsed arguments and
//! returns a serialisable [`Outcome`]; [`crate::output`] renders it.

use crate::boot::{BootChoice, boot_select};
use crate::cli::{Cli, Cmd, GlobalArgs};
use crate::device::Access;
use crate::discovery::{self, DevNum};
use crate::error::{self, ExitStatus, Result};
use crate::state::{Command as StateCommand, DiskState};
use crate::{Disk, SetName, Signpost, Status};
use clap::CommandFactory;
use serde::Serialize;
use snafu::ResultExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The result of one invocation, rendered by [`crate::output`].
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
    /// `generate-docs`.
    DocsWritten {
        /// Files written.
        files: Vec<PathBuf>,
    },
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
    match (&g.disk, g.active) {
        (Some(disk), Some(active)) => Signpost::new(Disk::open_with(disk, access)?, active),
        (Some(disk), None) => {
            // Without --active, the disk must be the host's OS disk, whose active set we discover.
            let found = discovery::discover_with(
                DevNum::of_path(Path::new("/"))?,
                &g.sysfs_root,
                &g.dev_root,
                access,
            );
            match found {
                Ok(sp) if same_file(sp.disk().path(), disk) => Ok(sp),
                _ => error::ActiveRequiredSnafu { disk: disk.clone() }.fail(),
            }
        }
        (None, _) => discovery::discover_with(
            DevNum::of_path(Path::new("/"))?,
            &g.sysfs_root,
            &g.dev_root,
            access,
        ),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
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
        Cmd::GenerateDocs { out } => generate_docs(out).map(|files| Outcome::DocsWritten { files }),
    }
}

/// Writes `signpost.1`, one `signpost-<sub>.1` per subcommand, and bash/zsh/fish completions.
pub fn generate_docs(out: &Path) -> Result<Vec<PathBuf>> {
    use clap_complete::{Shell, generate_to};
    let mut files = Vec::new();
    let man_dir = out.join("man");
    let comp_dir = out.join("completions");
    for dir in [&man_dir, &comp_dir] {
        std::fs::create_dir_all(dir).context(error::WriteDocsSnafu { path: dir })?;
    }
    let cmd = Cli::command();
    let mut write_man = |cmd: clap::Command, name: String| -> Result<()> {
        let path = man_dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd.display_name(name.clone()))
            .render(&mut buf)
            .context(error::WriteDocsSnafu { path: &path })?;
        std::fs::write(&path, buf).context(error::WriteDocsSnafu { path: &path })?;
        files.push(path);
        Ok(())
    };
    write_man(cmd.clone(), "signpost".into())?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        write_man(sub.clone(), format!("signpost-{}", sub.get_name()))?;
    }
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        let mut cmd = Cli::command();
        let path = generate_to(shell, &mut cmd, "signpost", &comp_dir)
            .context(error::WriteDocsSnafu { path: &comp_dir })?;
        files.push(path);
    }
    Ok(files)
}
