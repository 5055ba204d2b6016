//! Fleet rollout coordination: at most N hosts of a group between "about to reboot into the new
//! release" and "healthy on it", halting a release for the whole group when a host's health
//! fails, and a view of the fleet for operators (`fleetctl`).
//!
//! The [`Coordinator`] trait is what a host agent (updog) and the operator command call; its
//! etcd implementation, [`EtcdCoordinator`], talks to etcd v3 through the JSON gRPC gateway
//! (plain HTTP, base64 keys), trying each endpoint in turn. Another backend (a Kubernetes
//! `Lease`, a FleetLock server) implements the same trait.
//!
//! ```no_run
//! # async fn demo() -> fleet::Result<()> {
//! use fleet::{AcquireOptions, Coordinator, EtcdClient, EtcdCoordinator, HostReport, HostState,
//!             Name, NoObserver, parse_endpoints};
//! let client = EtcdClient::new(parse_endpoints("http://127.0.0.1:2379")?, Default::default())?;
//! let fleet = EtcdCoordinator::new(client);
//! let (group, host) = (Name::new("group", "web")?, Name::new("host", "node-1")?);
//! let version: semver::Version = "1.2.0".parse().unwrap();
//! let slot = fleet
//!     .acquire_reboot_slot(&group, &host, &version, &AcquireOptions::default(), &NoObserver)
//!     .await?;
//! // ... reboot into the new set, run the health checks ...
//! fleet.report(&group, &host, &HostReport::new(HostState::Healthy, version)).await?;
//! fleet.release(&slot).await?;
//! # Ok(()) }
//! ```
//!
//! The tests start a real 3-member etcd cluster on 127.0.0.1 (`etcd` from Debian's
//! `etcd-server`): `cargo test -p fleet`.
#![deny(missing_docs)]

pub mod cli;
pub mod commands;
mod error;
pub mod etcd;
mod exit_table;
mod model;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use semver::Version;

pub use error::{Error, ExitStatus, Result};
pub use etcd::client::{ClientTimeouts, EtcdClient, parse_endpoints};
pub use etcd::{DEFAULT_MAX_CONCURRENCY, EtcdCoordinator};
pub use model::{
    AcquireObserver, AcquireOptions, FleetView, Halt, HostEntry, HostReport, HostState, Name,
    NoObserver, Slot, SlotHolder, WaitStatus,
};

/// Reboot coordination for a group of hosts. Implemented on etcd ([`EtcdCoordinator`]); a
/// Kubernetes `Lease` or FleetLock backend would implement the same calls.
#[async_trait]
pub trait Coordinator: Send + Sync + std::fmt::Debug {
    /// Wait for one of the group's reboot slots for `host` rebooting into `version`. Returns at
    /// once with [`Error::Halted`] when the version is halted; tells `observer` why it waits
    /// ("waiting: 2/2 slots held by [a, b]", or the coordinator is unreachable); after
    /// `options.deadline` returns [`Error::AcquireTimeout`] and holds nothing. A host that
    /// already holds a slot of the group gets it back (after its reboot, or a lost answer).
    async fn acquire_reboot_slot(
        &self,
        group: &Name,
        host: &Name,
        version: &Version,
        options: &AcquireOptions,
        observer: &dyn AcquireObserver,
    ) -> Result<Slot>;

    /// Renew the slot's lease once; returns the new time to live, or [`Error::SlotLost`].
    async fn keep_alive(&self, slot: &Slot) -> Result<Duration>;

    /// Give the slot back (after the host is healthy, or rolled back).
    async fn release(&self, slot: &Slot) -> Result<()>;

    /// Record the host's state for the fleet view.
    async fn report(&self, group: &Name, host: &Name, report: &HostReport) -> Result<()>;

    /// Halt `version` for the group: no host acquires a slot for it until it is resumed. The
    /// first halt's record is kept and returned.
    async fn halt(
        &self,
        group: &Name,
        version: &Version,
        reason: &str,
        by_host: &str,
    ) -> Result<Halt>;

    /// Lift a halt; returns the halt that was lifted, if there was one.
    async fn resume(&self, group: &Name, version: &Version) -> Result<Option<Halt>>;

    /// The halt of `version`, if it is halted.
    async fn is_halted(&self, group: &Name, version: &Version) -> Result<Option<Halt>>;

    /// Set the number of hosts that may hold a slot at once; returns the previous limit. Slots
    /// already held are kept; the new limit applies to the next acquire.
    async fn set_max_concurrency(&self, group: &Name, max: u32) -> Result<u32>;

    /// Slots, halts, limit and every host's last report.
    async fn fleet_view(&self, group: &Name) -> Result<FleetView>;
}

/// Keeps a slot's lease alive from a background task until stopped. Dropping the keeper stops
/// the keepalives without releasing: the slot then frees itself when the lease expires, as it
/// does when the host dies.
#[derive(Debug)]
pub struct SlotKeeper {
    task: tokio::task::JoinHandle<()>,
    lost: Arc<Mutex<Option<String>>>,
}

impl SlotKeeper {
    /// Start renewing `slot` every third of its time to live (must run inside a tokio runtime).
    pub fn start(coordinator: Arc<dyn Coordinator>, slot: Slot) -> Self {
        let lost = Arc::new(Mutex::new(None));
        let flag = Arc::clone(&lost);
        let period =
            Duration::from_millis(slot.ttl_secs * 1000 / 3).max(Duration::from_millis(200));
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                match coordinator.keep_alive(&slot).await {
                    Ok(_) => {}
                    Err(e @ Error::SlotLost { .. }) => {
                        *flag.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_string());
                        return;
                    }
                    // Unreachable for now: keep trying; the lease runs on meanwhile.
                    Err(_) => {}
                }
            }
        });
        SlotKeeper { task, lost }
    }

    /// Why the slot was lost, if the keepalives found it gone.
    pub fn lost(&self) -> Option<String> {
        self.lost.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Stop the keepalives (release the slot separately).
    pub fn stop(self) {}
}

impl Drop for SlotKeeper {
    fn drop(&mut self) {
        self.task.abort();
    }
}
