//! Command line (clap derive) and its translation into a [`crate::Command`] and [`crate::Env`].

use crate::config::HostPaths;
use crate::reporter::Reporter;
use crate::workflow::{Activation, Command, DiskOverride, Env, Reboot, Waves};
use clap::{Args, Parser, Subcommand, ValueEnum};
use signpost::SetName;
use std::path::PathBuf;
use std::sync::Arc;
use update_metadata::{Arch, Variant, Version};

const AFTER_HELP: &str = "\
Files (all below --host-root, default /):
  /etc/updog.toml               repository URLs, seed, version_lock, ignore_waves, proxy
  /etc/os-release               VARIANT_ID, VERSION_ID, BUILD_ID of the running system
  /usr/share/updog/root.json    the trusted TUF root shipped with the OS
  /var/lib/updog/               trusted metadata (rollback protection), resume records, lock

Exit status:
   0 success (update available / written / applied / reverted)
   1 other failure        2 usage or configuration error
   3 nothing newer        4 not in this host's wave yet (the output says when it opens)
   5 version_lock holds   6 no updates for this variant/arch   7 --image version not offered
  10 another updog runs  11 verification failed   12 metadata expired   13 rollback detected
  14 clock went backwards 15 network              16 disk error         17 image too large
  18 partition flags do not allow this action
  19 a state file or directory is a link, not root's, or writable by others";

/// The on-host update agent: checks a TUF repository for OS updates, writes them to the
/// inactive partition set, verifies them and switches the next boot.
#[derive(Debug, Parser)]
#[command(name = "updog", version, after_long_help = AFTER_HELP)]
pub struct Cli {
    /// Directory that stands for `/` (config, os-release, trusted root, state, /sys, /dev).
    #[arg(long, global = true, value_name = "DIR", default_value = "/")]
    pub host_root: PathBuf,
    /// Act on this disk image (or device) instead of discovering the running system's disk.
    #[arg(long, global = true, value_name = "PATH", requires = "active")]
    pub disk: Option<PathBuf>,
    /// With --disk: the set that is running (a or b).
    #[arg(long, global = true, value_name = "a|b", requires = "disk", value_parser = parse_set)]
    pub active: Option<SetName>,
    /// Architecture to ask updates for (default: os-release ARCH, else this binary's).
    #[arg(long, global = true, value_parser = parse_arch)]
    pub arch: Option<Arch>,
    /// Variant to ask updates for instead of os-release's VARIANT_ID (as Bottlerocket's updog).
    #[arg(long, global = true, value_parser = parse_variant)]
    pub variant: Option<Variant>,
    /// Machine-readable output: the outcome as JSON on stdout, progress events as JSON lines on stderr.
    #[arg(short = 'j', long, global = true)]
    pub json: bool,
    /// Log level for messages on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogLevel::Info)]
    pub log_level: LogLevel,
    /// Evaluate wave schedules as if the time were this (RFC 3339); for simulation and tests.
    #[arg(long, global = true, hide = true, value_name = "TIME")]
    pub at: Option<jiff::Timestamp>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// Log levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal.
    Info,
    /// Warnings and errors.
    Warn,
    /// Errors only.
    Error,
}

impl LogLevel {
    /// As a tracing filter directive.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Selection options shared by check and update.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Choose exactly this version (allows downgrades).
    #[arg(short = 'i', long, value_name = "VERSION")]
    pub image: Option<Version>,
    /// Ignore the wave schedule.
    #[arg(short = 'n', long = "now", visible_alias = "ignore-waves")]
    pub now: bool,
}

impl SelectArgs {
    fn waves(&self) -> Waves {
        if self.now {
            Waves::Ignore
        } else {
            Waves::Respect
        }
    }
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Report the update this host would take (exit 0), or why there is none (exit 3-7).
    #[command(visible_alias = "whats")]
    CheckUpdate {
        /// List every update applicable to this host, older ones too.
        #[arg(short = 'a', long)]
        all: bool,
        /// Selection options.
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Download, write and verify the chosen update, then make it the next to boot.
    Update {
        /// Selection options.
        #[command(flatten)]
        select: SelectArgs,
        /// Reboot afterwards (runs `reboot_command`, default `shutdown -r now`).
        #[arg(short = 'r', long)]
        reboot: bool,
    },
    /// Download, write and verify the chosen update, but leave it staged (see update-apply).
    UpdateImage {
        /// Selection options.
        #[command(flatten)]
        select: SelectArgs,
    },
    /// Make the staged update the next to boot.
    UpdateApply {
        /// Reboot afterwards.
        #[arg(short = 'r', long)]
        reboot: bool,
    },
    /// Undo update-apply: the running set boots next again.
    UpdateRevert,
    /// Write man pages and shell completions to a directory.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

fn parse_set(s: &str) -> Result<SetName, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a set name (a or b)"))
}

fn parse_variant(s: &str) -> Result<Variant, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not a valid variant name"))
}

fn parse_arch(s: &str) -> Result<Arch, String> {
    s.parse()
        .map_err(|_| format!("{s:?} is not an architecture (x86_64 or aarch64)"))
}

impl Cli {
    /// The command to run (None for generate-docs).
    pub fn to_command(&self) -> Option<Command> {
        Some(match &self.command {
            Cmd::CheckUpdate { all, select } => Command::CheckUpdate {
                all: *all,
                image: select.image.clone(),
                waves: select.waves(),
            },
            Cmd::Update { select, reboot } => Command::Update {
                image: select.image.clone(),
                waves: select.waves(),
                activation: Activation::Activate,
                reboot: if *reboot {
                    Reboot::Reboot
                } else {
                    Reboot::NoReboot
                },
            },
            Cmd::UpdateImage { select } => Command::Update {
                image: select.image.clone(),
                waves: select.waves(),
                activation: Activation::StageOnly,
                reboot: Reboot::NoReboot,
            },
            Cmd::UpdateApply { reboot } => Command::UpdateApply {
                reboot: if *reboot {
                    Reboot::Reboot
                } else {
                    Reboot::NoReboot
                },
            },
            Cmd::UpdateRevert => Command::UpdateRevert,
            Cmd::GenerateDocs { .. } => return None,
        })
    }

    /// The environment for the command; `now` is the real clock unless `--at` was given.
    pub fn env(&self, now: jiff::Timestamp, reporter: Arc<dyn Reporter>) -> Env {
        Env {
            paths: HostPaths::new(&self.host_root),
            disk: match (&self.disk, self.active) {
                (Some(path), Some(active)) => Some(DiskOverride {
                    path: path.clone(),
                    active,
                }),
                _ => None,
            },
            arch: self.arch,
            variant: self.variant.clone(),
            now: self.at.unwrap_or(now),
            reporter,
        }
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
    fn bottlerocket_spellings_parse() {
        let c = Cli::try_parse_from(["updog", "whats", "--all", "--json"]).unwrap();
        assert!(c.json);
        assert!(matches!(
            c.to_command(),
            Some(Command::CheckUpdate { all: true, .. })
        ));
        let c = Cli::try_parse_from(["updog", "update", "-i", "1.2.3", "--ignore-waves", "-r"])
            .unwrap();
        assert!(matches!(
            c.to_command(),
            Some(Command::Update {
                waves: Waves::Ignore,
                reboot: Reboot::Reboot,
                activation: Activation::Activate,
                ..
            })
        ));
        assert!(Cli::try_parse_from(["updog", "update", "--disk", "x"]).is_err());
        let c = Cli::try_parse_from(["updog", "update-image", "--disk", "d.img", "--active", "a"])
            .unwrap();
        assert!(
            c.env(jiff::Timestamp::UNIX_EPOCH, Arc::new(crate::NullReporter))
                .disk
                .is_some()
        );
    }
}
