//! Command line (clap derive) and its translation into a [`crate::Command`] and [`crate::Env`].

use crate::config::HostPaths;
use crate::reporter::Reporter;
use crate::workflow::{Activation, Command, DiskOverride, Env, Reboot, Waves};
use clap::{Parser, Subcommand};
use signpost::SetName;
use std::path::PathBuf;
use std::sync::Arc;
use update_metadata::{Arch, Variant, Version};

const AFTER_HELP: &str = "\
Files (all below --host-root, default /):
  /etc/updog.toml               repository URLs, seed, version_lock, ignore_waves, proxy
  /etc/os-release               VARIANT_ID, VERSION_ID, BUILD_ID of the running system
  /usr/share/updog/root.json    the trusted TUF root shipped with the OS
  /var/lib/updog/               trusted metadata (rollback protection), resume records, lock";

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
    /// check-update: list every update applicable to this host, older ones too.
    #[arg(short = 'a', long, global = true)]
    pub all: bool,
    /// check-update, update, update-image: choose exactly this version (allows downgrades).
    #[arg(short = 'i', long, global = true, value_name = "VERSION")]
    pub image: Option<Version>,
    /// check-update, update, update-image: ignore the wave schedule.
    #[arg(
        short = 'n',
        long = "now",
        visible_alias = "ignore-waves",
        global = true
    )]
    pub now: bool,
    /// update, update-apply: reboot afterwards (runs `reboot_command`, default `shutdown -r now`).
    #[arg(short = 'r', long, global = true)]
    pub reboot: bool,
    /// Evaluate wave schedules as if the time were this (RFC 3339); for simulation and tests.
    #[arg(long, global = true, hide = true, value_name = "TIME")]
    pub at: Option<jiff::Timestamp>,
    /// What to do.
    #[command(subcommand)]
    pub command: Cmd,
}

/// The log level for messages on stderr (one type for every binary).
pub use abos_shell::log::LogLevel;

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Report the update this host would take (exit 0), or why there is none (exit 3-7).
    #[command(visible_alias = "whats")]
    CheckUpdate,
    /// Download, write and verify the chosen update, then make it the next to boot.
    Update,
    /// Download, write and verify the chosen update, but leave it staged (see update-apply).
    UpdateImage,
    /// Make the staged update the next to boot.
    UpdateApply,
    /// Undo update-apply: the running set boots next again.
    UpdateRevert,
    /// Show the update state (/var/lib/updog/status.json): state, versions, last check, failure.
    Status,
    /// After a boot into a new set: run /etc/updog/health.d/*, then mark the boot successful,
    /// or roll back (health_failure_action) and exit 20.
    HealthCheck {
        /// Seconds each check may run (default health_check_timeout_secs, else 60).
        #[arg(long, value_name = "SECS")]
        timeout: Option<u64>,
    },
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

/// A flag given with a subcommand it means nothing to (Bottlerocket's updog ignores it; we say so).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MisplacedFlag {
    /// The flag as spelt in `--help`.
    pub flag: &'static str,
    /// The subcommands it applies to.
    pub applies_to: &'static str,
}

impl std::fmt::Display for MisplacedFlag {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} only applies to {}", self.flag, self.applies_to)
    }
}

impl Cli {
    fn waves(&self) -> Waves {
        if self.now {
            Waves::Ignore
        } else {
            Waves::Respect
        }
    }

    fn reboot(&self) -> Reboot {
        if self.reboot {
            Reboot::Reboot
        } else {
            Reboot::NoReboot
        }
    }

    /// Flags are accepted before or after the subcommand, as Bottlerocket's updog accepts them
    /// anywhere (`updog --now update`); a flag that means nothing to the subcommand is a usage
    /// error instead of being silently ignored.
    pub fn misplaced_flag(&self) -> Option<MisplacedFlag> {
        let (selects, lists, reboots) = match self.command {
            Cmd::CheckUpdate => (true, true, false),
            Cmd::Update => (true, false, true),
            Cmd::UpdateImage => (true, false, false),
            Cmd::UpdateApply => (false, false, true),
            Cmd::UpdateRevert
            | Cmd::Status
            | Cmd::HealthCheck { .. }
            | Cmd::GenerateDocs { .. } => (false, false, false),
        };
        let flag = |flag, applies_to| Some(MisplacedFlag { flag, applies_to });
        if self.all && !lists {
            return flag("--all", "check-update");
        }
        if self.image.is_some() && !selects {
            return flag("--image", "check-update, update and update-image");
        }
        if self.now && !selects {
            return flag("--now", "check-update, update and update-image");
        }
        if self.reboot && !reboots {
            return flag("--reboot", "update and update-apply");
        }
        None
    }

    /// The command to run (None for generate-docs).
    pub fn to_command(&self) -> Option<Command> {
        Some(match &self.command {
            Cmd::CheckUpdate => Command::CheckUpdate {
                all: self.all,
                image: self.image.clone(),
                waves: self.waves(),
            },
            Cmd::Update => Command::Update {
                image: self.image.clone(),
                waves: self.waves(),
                activation: Activation::Activate,
                reboot: self.reboot(),
            },
            Cmd::UpdateImage => Command::Update {
                image: self.image.clone(),
                waves: self.waves(),
                activation: Activation::StageOnly,
                reboot: Reboot::NoReboot,
            },
            Cmd::UpdateApply => Command::UpdateApply {
                reboot: self.reboot(),
            },
            Cmd::UpdateRevert => Command::UpdateRevert,
            Cmd::Status => Command::Status,
            Cmd::HealthCheck { timeout } => Command::HealthCheck {
                timeout: timeout.map(std::time::Duration::from_secs),
            },
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

    /// Bottlerocket's callers put flags before the subcommand (`updog --now update`,
    /// `updog -i 1.2.3 --json whats`): the same command as with the flags after it.
    #[test]
    fn flags_before_the_subcommand() {
        for (before, after) in [
            (
                vec!["updog", "--now", "-r", "update"],
                vec!["updog", "update", "--now", "-r"],
            ),
            (
                vec!["updog", "-i", "1.2.3", "--json", "whats"],
                vec!["updog", "whats", "-i", "1.2.3", "--json"],
            ),
            (
                vec!["updog", "--all", "-j", "check-update"],
                vec!["updog", "check-update", "--all", "-j"],
            ),
            (
                vec!["updog", "--ignore-waves", "update-image"],
                vec!["updog", "update-image", "-n"],
            ),
            (
                vec!["updog", "--reboot", "update-apply"],
                vec!["updog", "update-apply", "-r"],
            ),
        ] {
            let b = Cli::try_parse_from(&before).unwrap();
            let a = Cli::try_parse_from(&after).unwrap();
            assert_eq!(
                format!("{:?}", b.to_command()),
                format!("{:?}", a.to_command()),
                "{before:?}"
            );
            assert_eq!(b.json, a.json);
            assert_eq!(b.misplaced_flag(), None, "{before:?}");
        }
    }

    #[test]
    fn flags_that_mean_nothing_to_the_subcommand_are_named() {
        for (args, flag) in [
            (vec!["updog", "--all", "update"], "--all"),
            (vec!["updog", "update-apply", "--now"], "--now"),
            (vec!["updog", "-i", "1.0.0", "update-revert"], "--image"),
            (vec!["updog", "-r", "check-update"], "--reboot"),
            (vec!["updog", "update-image", "--reboot"], "--reboot"),
        ] {
            let c = Cli::try_parse_from(&args).unwrap();
            assert_eq!(c.misplaced_flag().map(|m| m.flag), Some(flag), "{args:?}");
        }
    }
}
