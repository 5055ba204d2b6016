//! Command-line interface of the `signpost` binary (clap derive types only) and the single entry
//! point [`run`] that `main` calls.

use crate::boot::{BootChoice, boot_select};
use crate::device::Access;
use crate::discovery::{self, DevNum};
use crate::error::{self, ExitStatus, Result};
use crate::state::{Command as StateCommand, DiskState};
use crate::{Disk, SetName, Signpost, Status};
use clap::{Args, CommandFactory, Parser, Subcommand};
use serde::Serialize;
use snafu::ResultExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

const ABOUT: &str =
    "A/B partition sets on the OS disk: boot flags, atomic switching, boot selection";
const LONG_ABOUT: &str = "\
signpost reads and changes the boot flags of the two partition sets (A and B) on a \
Bottlerocket-layout GPT disk. Each set is a BOOT, ROOT and HASH partition; the flags (priority, \
tries_left, successful) live in the BOOT partition's GPT attribute bits 48-56.

Every change rewrites both GPT copies in a crash-safe order and flushes them before returning. \
The disk is locked while a change is made, so concurrent signpost/updog runs are serialised.

On a running host the OS disk and the active set are discovered from the root filesystem's \
device. On a disk image, pass --disk PATH --active a|b.

Exit codes: 0 success; 1 failure; 2 usage; 3 unusable disk or partition table; 4 refused by a \
precondition (nothing changed); 5 disk locked by another process; 6 disk read-only; 7 boot-select \
found nothing bootable; 8 OS disk or active set not discoverable.";

/// `signpost` command line.
#[derive(Debug, Parser)]
#[command(name = "signpost", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Options valid for every subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The OS disk (image file or block device) instead of discovering it from `/`.
    #[arg(long, global = true, value_name = "PATH")]
    pub disk: Option<PathBuf>,
    /// The running set when --disk is given (a or b).
    #[arg(long, global = true, value_name = "a|b")]
    pub active: Option<SetName>,
    /// Root of the sysfs tree used for discovery.
    #[arg(long, global = true, value_name = "DIR", default_value = "/sys")]
    pub sysfs_root: PathBuf,
    /// Directory holding the disk device nodes used for discovery.
    #[arg(long, global = true, value_name = "DIR", default_value = "/dev")]
    pub dev_root: PathBuf,
    /// Longest wait, in seconds, for another signpost/updog to release the disk.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10.0)]
    pub lock_timeout: f64,
    /// Log level for messages on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, value_name = "LEVEL", default_value = "warn")]
    pub log_level: tracing::Level,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Show each set's partitions and flags, the active set and the set that boots next.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Mark the running set as successfully booted (run once the system is up).
    MarkSuccessfulBoot,
    /// Make the inactive set unbootable before writing new images to it.
    ClearInactive,
    /// Give the inactive set one boot attempt (after its images are written and verified).
    MarkInactiveValid,
    /// Boot the inactive set next; if it fails before mark-successful-boot, the running set boots again.
    UpgradeToInactive,
    /// Undo upgrade-to-inactive: the running set boots next.
    CancelUpgrade,
    /// Boot the previous (inactive) set next.
    RollbackToInactive,
    /// Print "true" if a boot ever succeeded on this disk, nothing otherwise (exit 0 either way).
    HasBootEverSucceeded {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Act as the bootloader once: pick the set GRUB's gptprio.next would, count down its tries.
    BootSelect {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// Write man pages and shell completions.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

impl Cli {
    /// Whether JSON output was asked for.
    pub fn json(&self) -> bool {
        matches!(
            self.command,
            Cmd::Status { json: true }
                | Cmd::HasBootEverSucceeded { json: true }
                | Cmd::BootSelect { json: true }
        )
    }
}

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

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_globals_after_subcommand() {
        let cli = Cli::try_parse_from([
            "signpost", "status", "--json", "--disk", "x.img", "--active", "b",
        ])
        .unwrap();
        assert_eq!(cli.global.active, Some(SetName::B));
        assert!(cli.json());
        assert!(Cli::try_parse_from(["signpost", "status", "--active", "c"]).is_err());
    }
}
