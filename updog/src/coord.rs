//! Reboot coordination with the fleet (`[fleet]` in updog.toml): `update` takes a reboot slot
//! of the host's group before it activates the staged set and reboots; `health-check` releases
//! it when the new boot is healthy, or halts the release for the group (and releases) when it
//! is not. Without `[fleet]` nothing here runs and the host is stand-alone.

use crate::config::HostPaths;
use crate::error::{self, Result};
use crate::status::{self, Status, Waiting};
use fleet::{AcquireObserver, AcquireOptions, Coordinator, HostReport, HostState, Name};
use jiff::Timestamp;
use snafu::ResultExt;
use std::sync::{Arc, Mutex};
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

/// Logs why the host waits for a slot and records it in the status file (`waiting`: reason,
/// since, deadline), so `updog status` shows a waiting host and why while `update` runs. The
/// file is rewritten only when the reason changes.
#[derive(Debug)]
pub struct StatusObserver {
    paths: HostPaths,
    status: Mutex<Status>,
    since: Timestamp,
    deadline: Timestamp,
}

impl StatusObserver {
    /// Records onto a copy of `status` (the caller's copy is written over when the wait ends).
    pub fn new(paths: &HostPaths, status: &Status, deadline: std::time::Duration) -> Self {
        let since = Timestamp::now();
        let deadline = jiff::SignedDuration::try_from(deadline)
            .ok()
            .and_then(|d| since.checked_add(d).ok())
            .unwrap_or(since);
        StatusObserver {
            paths: paths.clone(),
            status: Mutex::new(status.clone()),
            since,
            deadline,
        }
    }
}

impl AcquireObserver for StatusObserver {
    fn waiting(&self, wait: &fleet::WaitStatus) {
        LogObserver.waiting(wait);
        let reason = wait.to_string();
        let mut st = self.status.lock().unwrap_or_else(|p| p.into_inner());
        if st.waiting.as_ref().is_some_and(|w| w.reason == reason) {
            return;
        }
        st.waiting = Some(Waiting {
            what: "reboot-slot".to_owned(),
            reason,
            since: self.since,
            deadline: self.deadline,
        });
        if let Err(e) = status::store(&self.paths, &mut st, Timestamp::now()) {
            tracing::warn!("could not record the wait in the status file: {e}");
        }
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
