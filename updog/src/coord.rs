//! Reboot coordination with the fleet (`[fleet]` in updog.toml): `update` takes a reboot slot
//! of the host's group before it activates the staged set and reboots; `health-check` releases
//! it when the new boot is healthy, or halts the release for the group (and releases) when it
//! is not. Without `[fleet]` nothing here runs and the host is stand-alone.

use crate::config::HostPaths;
use crate::error::{self, Result};
use fleet::{AcquireObserver, AcquireOptions, Coordinator, HostReport, HostState, Name};
use snafu::ResultExt;
use std::sync::Arc;
use updog_config::{Config, FleetSettings};

/// A connected coordinator with this host's identity.
#[derive(Debug, Clone)]
pub struct Fleet {
    /// The backend (etcd).
    pub coordinator: Arc<dyn Coordinator>,
    /// The host's group.
    pub group: Name,
    /// The host's name.
    pub host: Name,
    /// How to acquire.
    pub options: AcquireOptions,
}

/// The fleet of `config`, or None when `[fleet]` is not configured.
pub fn connect(config: &Config, paths: &HostPaths) -> Result<Option<Fleet>> {
    let Some(settings) = &config.fleet else {
        return Ok(None);
    };
    Ok(Some(from_settings(settings, paths)?))
}

fn from_settings(s: &FleetSettings, paths: &HostPaths) -> Result<Fleet> {
    let op = "read the [fleet] settings";
    let host = match &s.host {
        Some(h) => h.clone(),
        None => std::fs::read_to_string(paths.root.join("etc/hostname"))
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .ok_or_else(|| error::Error::FleetHost {
                config: paths.config(),
                hostname: paths.root.join("etc/hostname"),
            })?,
    };
    let client = fleet::EtcdClient::new(s.endpoints.clone(), fleet::ClientTimeouts::default())
        .context(error::FleetSnafu { op })?;
    Ok(Fleet {
        coordinator: Arc::new(fleet::EtcdCoordinator::new(client)),
        group: Name::new("group", &s.group).context(error::FleetSnafu { op })?,
        host: Name::new("host", &host).context(error::FleetSnafu { op })?,
        options: AcquireOptions {
            deadline: s.acquire_deadline,
            poll: s.poll,
            ttl: s.slot_ttl,
        },
    })
}

/// Logs why the host waits for a slot (stderr; libraries do not print).
#[derive(Debug)]
pub struct LogObserver;

impl AcquireObserver for LogObserver {
    fn waiting(&self, status: &fleet::WaitStatus) {
        tracing::info!("reboot slot: {status}");
    }
}

impl Fleet {
    /// Reports the host's state; a failure is logged, never fatal (the report is informational).
    pub async fn report(&self, report: HostReport) {
        if let Err(e) = self
            .coordinator
            .report(&self.group, &self.host, &report)
            .await
        {
            tracing::warn!("could not report {} to the fleet: {e}", report.state);
        }
    }

    /// A report in `state`.
    pub fn host_report(
        state: HostState,
        running: &update_metadata::Version,
        target: Option<&update_metadata::Version>,
        detail: Option<String>,
    ) -> HostReport {
        HostReport {
            state,
            version: running.clone(),
            target: target.cloned(),
            detail,
            at: None,
        }
    }
}
