//! `fleetctl` subcommands over any [`Coordinator`]; each returns a serialisable [`Outcome`].

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use semver::Version;
use serde::Serialize;

use crate::cli::Command;
use crate::error::{Error, Result};
use crate::model::{AcquireObserver, AcquireOptions, FleetView, Halt, Name, Slot};
use crate::{Coordinator, SlotKeeper};

/// What `hold` tells its caller while it runs (the binary prints it on stderr).
pub trait HoldReporter: AcquireObserver {
    /// The slot is granted; the command starts now.
    fn acquired(&self, slot: &Slot);
}

/// The result of one subcommand.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Outcome {
    /// `status`.
    Status(FleetView),
    /// `halt`: the halt in force (the first one if it was already halted).
    Halt(Halt),
    /// `resume`: the halt that was lifted, if any.
    Resume {
        /// Group.
        group: Name,
        /// Version.
        version: Version,
        /// The lifted halt (none: it was not halted).
        lifted: Option<Halt>,
    },
    /// `set-concurrency`.
    SetConcurrency {
        /// Group.
        group: Name,
        /// Previous limit.
        previous: u32,
        /// New limit.
        max: u32,
    },
    /// `release`.
    Release {
        /// Group.
        group: Name,
        /// Host.
        host: Name,
        /// Whether it held a slot.
        held: bool,
    },
    /// `hold`: the command's exit code (none: killed by a signal).
    Hold {
        /// The slot that was held.
        slot: Slot,
        /// The command's exit code.
        exit_code: Option<i32>,
    },
}

fn version(text: &str) -> Result<Version> {
    text.parse()
        .map_err(|e: semver::Error| Error::InvalidInput {
            what: "version",
            value: text.to_string(),
            reason: e.to_string(),
        })
}

/// Run one subcommand.
pub async fn run(
    command: &Command,
    coordinator: Arc<dyn Coordinator>,
    reporter: &dyn HoldReporter,
) -> Result<Outcome> {
    match command {
        Command::Status { group } => {
            let group = Name::new("group", group)?;
            Ok(Outcome::Status(coordinator.fleet_view(&group).await?))
        }
        Command::Halt {
            group,
            version: v,
            reason,
            by,
        } => {
            let group = Name::new("group", group)?;
            let halt = coordinator.halt(&group, &version(v)?, reason, by).await?;
            Ok(Outcome::Halt(halt))
        }
        Command::Resume { group, version: v } => {
            let group = Name::new("group", group)?;
            let version = version(v)?;
            let lifted = coordinator.resume(&group, &version).await?;
            Ok(Outcome::Resume {
                group,
                version,
                lifted,
            })
        }
        Command::SetConcurrency { group, max } => {
            let group = Name::new("group", group)?;
            let previous = coordinator.set_max_concurrency(&group, *max).await?;
            Ok(Outcome::SetConcurrency {
                group,
                previous,
                max: *max,
            })
        }
        Command::Release { group, host } => {
            let group = Name::new("group", group)?;
            let host = Name::new("host", host)?;
            let view = coordinator.fleet_view(&group).await?;
            let holder = view.slots.into_iter().find(|s| s.host == host);
            if let Some(h) = &holder {
                let slot = Slot {
                    group: group.clone(),
                    host: host.clone(),
                    version: h.version.clone(),
                    lease: h.lease,
                    ttl_secs: 0,
                    acquired_at: h.acquired_at,
                };
                coordinator.release(&slot).await?;
            }
            Ok(Outcome::Release {
                group,
                host,
                held: holder.is_some(),
            })
        }
        Command::Hold {
            group,
            host,
            version: v,
            ttl_secs,
            deadline_secs,
            poll_ms,
            command,
        } => {
            let group = Name::new("group", group)?;
            let host = Name::new("host", host)?;
            let version = version(v)?;
            let options = AcquireOptions {
                deadline: Duration::from_secs(*deadline_secs),
                poll: Duration::from_millis(*poll_ms),
                ttl: Duration::from_secs(*ttl_secs),
            };
            let program = command.first().ok_or_else(|| Error::InvalidInput {
                what: "command",
                value: String::new(),
                reason: "nothing to run".to_string(),
            })?;
            let slot = coordinator
                .acquire_reboot_slot(&group, &host, &version, &options, reporter)
                .await?;
            reporter.acquired(&slot);
            let keeper = SlotKeeper::start(Arc::clone(&coordinator), slot.clone());
            let (program_owned, rest) = (program.clone(), command[1..].to_vec());
            let status = tokio::task::spawn_blocking(move || {
                std::process::Command::new(program_owned)
                    .args(rest)
                    .status()
            })
            .await
            .unwrap_or_else(|e| Err(std::io::Error::other(e.to_string())));
            keeper.stop();
            coordinator.release(&slot).await?;
            let status = status.map_err(|e| Error::InvalidInput {
                what: "command",
                value: program.to_string_lossy().into_owned(),
                reason: format!("cannot run it: {e}"),
            })?;
            Ok(Outcome::Hold {
                slot,
                exit_code: status.code(),
            })
        }
    }
}

impl Outcome {
    /// Whether the outcome is a success (a `hold` whose command failed is not).
    pub fn is_success(&self) -> bool {
        !matches!(self, Outcome::Hold { exit_code, .. } if *exit_code != Some(0))
    }

    /// JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Human text.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        match self {
            Outcome::Status(view) => {
                let _ = writeln!(
                    out,
                    "group {}: {}/{} slots held",
                    view.group,
                    view.slots.len(),
                    view.max_concurrency
                );
                for s in &view.slots {
                    let _ = writeln!(
                        out,
                        "  slot: {} -> {} since {}",
                        s.host, s.version, s.acquired_at
                    );
                }
                for h in &view.halted {
                    let _ = writeln!(
                        out,
                        "halted: {} by {} at {}: {}",
                        h.version, h.by_host, h.at, h.reason
                    );
                }
                let _ = writeln!(out, "hosts: {}", view.hosts.len());
                for (state, version, n) in view.counts() {
                    let _ = writeln!(out, "  {n:>5} {state} on {version}");
                }
                for e in &view.hosts {
                    let r = &e.report;
                    let _ = write!(out, "  {} {} {}", e.host, r.state, r.version);
                    if let Some(t) = &r.target {
                        let _ = write!(out, " -> {t}");
                    }
                    if let Some(at) = &r.at {
                        let _ = write!(out, " at {at}");
                    }
                    if let Some(d) = &r.detail {
                        let _ = write!(out, ": {d}");
                    }
                    out.push('\n');
                }
            }
            Outcome::Halt(h) => {
                let _ = writeln!(out, "halted {} (by {}: {})", h.version, h.by_host, h.reason);
            }
            Outcome::Resume {
                group,
                version,
                lifted,
            } => match lifted {
                Some(h) => {
                    let _ = writeln!(
                        out,
                        "resumed {version} in group {group} (was halted by {}: {})",
                        h.by_host, h.reason
                    );
                }
                None => {
                    let _ = writeln!(out, "{version} was not halted in group {group}");
                }
            },
            Outcome::SetConcurrency {
                group,
                previous,
                max,
            } => {
                let _ = writeln!(out, "group {group}: max concurrency {previous} -> {max}");
            }
            Outcome::Release { group, host, held } => {
                let what = if *held { "released" } else { "held no slot" };
                let _ = writeln!(out, "{host} in group {group}: {what}");
            }
            Outcome::Hold { slot, exit_code } => {
                let code = exit_code.map_or("killed by a signal".to_string(), |c| c.to_string());
                let _ = writeln!(
                    out,
                    "{} held a slot of group {} for {}; command exit: {code}",
                    slot.host, slot.group, slot.version
                );
            }
        }
        out
    }
}
