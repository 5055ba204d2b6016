//! Command line of the `kernel-config` binary (clap derive types only).

use crate::fragment::RootFs;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

const LONG_ABOUT: &str = "\
kernel-config knows which kernel options a dm-verity A/B image needs: device-mapper, DM_INIT \
and the verity target built in (the root is set up from `dm-mod.create=` on the command line, \
without an initramfs), the root filesystem, virtio for VMs, and Bottlerocket's security options.

`check` reads a kernel .config and reports every required or recommended option that is \
missing, wrong, or only a module. `merge` applies fragments onto a base config (later wins) and \
reports what changed and which fragments conflict. `fragments` writes the built-in fragments.";

/// `kernel-config` command line.
#[derive(Debug, Parser)]
#[command(name = "kernel-config", version, about = "Kernel config fragments, merge and boot checker", long_about = LONG_ABOUT)]
pub struct Cli {
    /// Machine-readable output (JSON on stdout).
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level for messages on stderr (KERNEL_CONFIG_LOG, an EnvFilter such as `debug`, wins).
    #[arg(long, global = true, value_enum, default_value_t = abos_shell::log::LogLevel::Warn)]
    pub log_level: abos_shell::log::LogLevel,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Fragment selection shared by check and merge.
#[derive(Debug, Args)]
pub struct FragmentArgs {
    /// Fragment file (repeatable, applied in order); default: the built-in fragments.
    #[arg(long = "fragment", value_name = "FILE")]
    pub fragments: Vec<PathBuf>,
    /// Root filesystem type of the image (selects the root-fs fragment).
    #[arg(long, value_name = "ext4|erofs", default_value = "ext4")]
    pub root_fs: RootFs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Check a .config: missing, wrong and module-only options; exit 1 if the image cannot boot.
    Check {
        /// The kernel config (e.g. /boot/config-6.1.0-26-amd64).
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Fragments.
        #[command(flatten)]
        fragments: FragmentArgs,
    },
    /// Merge fragments onto a base config (later wins) and report changes and conflicts.
    Merge {
        /// Base config.
        #[arg(long, value_name = "FILE")]
        base: PathBuf,
        /// Fragments.
        #[command(flatten)]
        fragments: FragmentArgs,
        /// Where to write the merged config.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Exit 1 if a fragment changes a value an earlier fragment set; the output is then not
        /// written (an existing file is left as it was).
        #[arg(long)]
        fail_on_conflict: bool,
    },
    /// Write the built-in fragments into a directory.
    Fragments {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Write man pages and shell completions.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[cfg(test)]
mod test {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
