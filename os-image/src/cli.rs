//! Command line of the `os-image` binary: clap derive types only. `main` calls
//! [`crate::commands::run`].

use crate::identity::{BuildId, ImageName};
use crate::rootfs::FsKind;
use clap::{Args, Parser, Subcommand};
use signpost::SetName;
use std::path::PathBuf;
use update_metadata::{Arch, Variant, Version};

const ABOUT: &str = "Build and check dm-verity A/B disk images and their update artifacts";
const LONG_ABOUT: &str = "\
os-image builds a Bottlerocket-layout disk image from a root filesystem tree: the root \
filesystem (ext4 or erofs) protected by a dm-verity hash tree, a boot partition whose grub.cfg \
carries the dm-mod.create table (and verity.json/verity.env for other boot stages), the three \
LZ4-compressed update artifacts, and a JSON build description for pubsys.

It also reads images back: `verify` checks the layout and every populated set's root against \
its hash tree and the root hash in its boot partition; `boot-check` does what the bootloader and \
the kernel's dm-verity would do for one set and prints its os-release.";

/// `os-image` command line.
#[derive(Debug, Parser)]
#[command(name = "os-image", version, about = ABOUT, long_about = LONG_ABOUT)]
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
    /// Machine-readable output: the result as JSON on stdout, progress as JSON lines on stderr.
    #[arg(long, global = true)]
    pub json: bool,
    /// Log level for messages on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, value_name = "LEVEL", value_enum, default_value_t = abos_shell::log::LogLevel::Warn)]
    pub log_level: abos_shell::log::LogLevel,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Build the disk image, the three update artifacts and the build description.
    #[command(long_about = BUILD_ABOUT)]
    Build(Box<BuildArgs>),
    /// Verify a disk image: layout, filesystems, every populated set against its hash tree.
    Verify {
        /// Disk image (or block device).
        #[arg(value_name = "DISK")]
        disk: PathBuf,
    },
    /// Emulate the boot of one set: verify its root with its boot partition's parameters, read
    /// its os-release.
    BootCheck {
        /// Disk image (or block device).
        #[arg(long, value_name = "DISK")]
        disk: PathBuf,
        /// Which set (a or b).
        #[arg(long, value_name = "a|b")]
        set: SetName,
    },
    /// Write man pages and shell completions.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

const BUILD_ABOUT: &str = "\
Build the disk image (set A populated; set B empty unless --both-sets), the update artifacts \
<name>-<variant>-<arch>-<version>-<build>-{boot.ext4,root.ext4,root.verity}.lz4 and the build \
description <prefix>.json in --out.

Outputs are made in a hidden directory inside --out and moved into place when complete; the \
description is written last. With SOURCE_DATE_EPOCH (or --source-date-epoch) the same inputs \
give byte-identical outputs.

Example:
  os-image build --rootfs ./rootfs --variant aws-dev --arch x86_64 --version 1.0.0 \\
      --build-id abcdef12 --root-json root.json --updog-toml updog.toml --out ./build";

/// Arguments of `build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Root filesystem: a directory (copied, not modified) or an uncompressed tar archive.
    #[arg(long, value_name = "DIR|TAR")]
    pub rootfs: PathBuf,
    /// Variant, e.g. aws-k8s-1.32.
    #[arg(long)]
    pub variant: Variant,
    /// Architecture: x86_64 or aarch64.
    #[arg(long)]
    pub arch: Arch,
    /// OS version (semver, e.g. 1.2.0).
    #[arg(long, value_name = "SEMVER")]
    pub version: Version,
    /// Build id, e.g. a short commit hash.
    #[arg(long, value_name = "ID")]
    pub build_id: BuildId,
    /// Image name, the first part of every file name.
    #[arg(long, default_value = "bottlerocket")]
    pub name: ImageName,
    /// Kernel to install as /vmlinuz on the boot partition.
    #[arg(long, value_name = "FILE")]
    pub kernel: Option<PathBuf>,
    /// Extra kernel parameter, placed before Bottlerocket's (repeatable), e.g. console=ttyS0.
    #[arg(long = "kernel-param", value_name = "PARAM")]
    pub kernel_params: Vec<String>,
    /// Init argument after `--` (repeatable); replaces Bottlerocket's systemd arguments.
    #[arg(long = "init-param", value_name = "PARAM")]
    pub init_params: Vec<String>,
    /// Initramfs to install as /initrd.img on the boot partition (grub.cfg loads it).
    #[arg(long, value_name = "FILE")]
    pub initrd: Option<PathBuf>,
    /// GRUB build with the gptprio module (the directory scripts/build-grub.sh prints) to install:
    /// boot.img + core.img for BIOS, EFI/BOOT/BOOTX64.EFI for UEFI. Without it the disk has no
    /// bootloader.
    #[arg(long, value_name = "DIR")]
    pub bootloader: Option<PathBuf>,
    /// TUF trusted root to install at /usr/share/updog/root.json.
    #[arg(long, value_name = "FILE")]
    pub root_json: Option<PathBuf>,
    /// updog configuration to install at /etc/updog.toml.
    #[arg(long, value_name = "FILE")]
    pub updog_toml: Option<PathBuf>,
    /// OS image size in GiB (sizes every partition as Bottlerocket does).
    #[arg(long, value_name = "N", default_value_t = crate::layout::DEFAULT_OS_GIB, conflicts_with = "small_layout")]
    pub os_size_gib: u32,
    /// The 2 GiB layout at one tenth scale (208 MiB disk; for tests, no room for a kernel).
    #[arg(long)]
    pub small_layout: bool,
    /// Root filesystem type.
    #[arg(long, value_name = "ext4|erofs", default_value = "ext4")]
    pub fs: FsKind,
    /// Put the OS in set B too (B's flags stay 0/0/0: A boots).
    #[arg(long)]
    pub both_sets: bool,
    /// Output directory (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Build time in Unix seconds: every timestamp, and the seed of salt and UUIDs.
    #[arg(long, env = "SOURCE_DATE_EPOCH", value_name = "SECONDS")]
    pub source_date_epoch: Option<i64>,
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
    fn bad_version_is_a_usage_error() {
        let err = Cli::try_parse_from([
            "os-image",
            "build",
            "--rootfs",
            "r",
            "--variant",
            "v",
            "--arch",
            "x86_64",
            "--version",
            "1.x",
            "--build-id",
            "b",
            "--out",
            "o",
        ])
        .unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("--version <SEMVER>"), "{err}");
    }
}
