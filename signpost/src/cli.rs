//! Command-line interface of the `signpost` binary: clap derive types only. The entry point
//! `main` calls is `commands::run`.

use abos_shell::log::LogLevel;
use clap::{Args, Parser, Subcommand};
use signpost::SetName;
use std::path::PathBuf;

const ABOUT: &str =
    "A/B partition sets on the OS disk: boot flags, atomic switching, boot selection";
const LONG_ABOUT: &str = "\
signpost reads and changes the boot flags of the two partition sets (A and B) on a \
Bottlerocket-layout GPT disk. Each set is a BOOT, ROOT and HASH partition; the flags (priority, \
tries_left, successful) live in the BOOT partition's GPT attribute bits 48-56.

Every change rewrites both GPT copies in a crash-safe order and flushes them before returning. \
The disk is locked while a change is made, so concurrent signpost/updog runs are serialised.

On a running host the OS disk and the active set are discovered from the root filesystem's \
device. On a disk image, pass --disk PATH --active a|b.";

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
    /// Log level for messages on stderr.
    #[arg(long, global = true, value_name = "LEVEL", value_enum, default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
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

#[cfg(test)]
mod test {
    use super::*;
    use clap::CommandFactory;

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
