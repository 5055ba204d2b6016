//! `fleetctl` arguments (clap derive only).

use std::ffi::OsString;

use clap::{Parser, Subcommand};

/// See and steer a fleet rollout coordinated on etcd.
#[derive(Debug, Parser)]
#[command(name = "fleetctl", version)]
pub struct Args {
    /// etcd client URLs, comma-separated; tried in turn.
    #[arg(long, value_name = "URL[,URL..]", env = "FLEETCTL_ENDPOINTS")]
    pub endpoints: String,
    /// Print the outcome as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Per-request timeout towards one endpoint, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECS")]
    pub request_timeout: u64,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// The group's hosts (state and version), slots held, halted versions and the limit.
    Status {
        /// Group name.
        group: String,
    },
    /// Halt a version: no host of the group reboots into it until it is resumed.
    Halt {
        /// Group name.
        group: String,
        /// Version to halt.
        version: String,
        /// Why (shown by `status` and in every refused acquire).
        #[arg(long)]
        reason: String,
        /// Who halts it.
        #[arg(long, default_value = "operator")]
        by: String,
    },
    /// Resume a halted version.
    Resume {
        /// Group name.
        group: String,
        /// Version to resume.
        version: String,
    },
    /// Set how many hosts may be between reboot and healthy at once (0 pauses the group).
    SetConcurrency {
        /// Group name.
        group: String,
        /// The new limit.
        max: u32,
    },
    /// Free the slot of a host (one that will not come back), without waiting for its lease.
    Release {
        /// Group name.
        group: String,
        /// Host whose slot to free.
        host: String,
    },
    /// Take a slot as HOST for VERSION, run COMMAND while holding it (with keepalives), then
    /// release it. A script's way to take part in the rollout (like `locksmithctl`).
    Hold {
        /// Group name.
        group: String,
        /// Host name.
        host: String,
        /// Version the host moves to.
        version: String,
        /// Lease time to live in seconds (a dead holder frees the slot after this).
        #[arg(long, default_value_t = 60)]
        ttl_secs: u64,
        /// Give up waiting for a slot after this many seconds.
        #[arg(long, default_value_t = 3600)]
        deadline_secs: u64,
        /// Pause between two looks while waiting, in milliseconds.
        #[arg(long, default_value_t = 1000)]
        poll_ms: u64,
        /// The command to run while holding the slot.
        #[arg(last = true, required = true, value_name = "COMMAND")]
        command: Vec<OsString>,
    },
}

#[cfg(test)]
mod test {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Args::command().debug_assert();
    }
}
