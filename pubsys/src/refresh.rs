//! `refresh-repo`: new expirations and versions, re-signed; targets, manifest and root untouched.
//!
//! With a new root (`--new-root`, version N+1 cross-signed by root N), the same re-signing moves
//! the snapshot/targets/timestamp roles to the keys that root names; `N+1.root.json` is written
//! just before the new metadata, timestamp last.

use crate::error::Result;
use crate::keys::{KeySpec, SigningKeys};
use crate::policy::{ExpirationPolicy, Expirations};
use crate::repo::{self, Committed, Edit, Expiry, LoadOptions, RepoSource};
use crate::store::{RepoStore, TargetMode};
use crate::{Phase, Reporter};
use jiff::Timestamp;
use std::path::PathBuf;

/// What to refresh.
#[derive(Debug, Clone)]
pub struct RefreshRequest {
    /// The trusted root.
    pub trusted_root: PathBuf,
    /// Signing keys.
    pub keys: Vec<KeySpec>,
    /// Where the repository is read from; None: from the store.
    pub source: Option<RepoSource>,
    /// Expiration policy.
    pub expiration: ExpirationPolicy,
    /// Whether an already expired repository may be refreshed.
    pub expired: Expiry,
    /// Persistent TUF datastore.
    pub datastore: Option<PathBuf>,
    /// Move the repository to this root (version N+1, cross-signed): re-sign snapshot,
    /// targets and timestamp with the keys it names, and publish it with them.
    pub new_root: Option<PathBuf>,
    /// The current time.
    pub now: Timestamp,
}

/// What was done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefreshOutcome {
    /// Previous metadata version (timestamp).
    pub previous_version: u64,
    /// New metadata version.
    pub version: u64,
    /// New expiry of snapshot metadata.
    pub snapshot_expires: Timestamp,
    /// New expiry of targets metadata.
    pub targets_expires: Timestamp,
    /// New expiry of timestamp metadata.
    pub timestamp_expires: Timestamp,
    /// What was written.
    pub committed: Committed,
}

/// Re-signs the repository with new versions and expirations.
pub async fn refresh(
    req: &RefreshRequest,
    store: &dyn RepoStore,
    reporter: &dyn Reporter,
) -> Result<RefreshOutcome> {
    let keys = SigningKeys::load(&req.keys).await?;
    let (root_bytes, _) = repo::read_root(&req.trusted_root)?;
    let source = match &req.source {
        Some(s) => s.clone(),
        None => repo::source_of_store(store)?,
    };
    // Held from load to the timestamp write: the read-modify-write is one step.
    let _lock = store.lock()?;
    reporter.phase(Phase::LoadingRepository);
    let opts = LoadOptions {
        expiry: req.expired,
        datastore: req.datastore.clone(),
        ..Default::default()
    };
    let existing = repo::load_existing(&root_bytes, &source, &opts).await?;
    let previous_version = existing.timestamp().signed.version.get();
    let version = repo::next_version(Some(&existing), req.now);
    let Expirations {
        snapshot,
        targets,
        timestamp,
    } = req.expiration.expirations(req.now)?;
    let mut edit = match &req.new_root {
        Some(new_root) => Edit::start_rotated(new_root, existing).await?,
        None => Edit::start(&req.trusted_root, Some(existing)).await?,
    };
    edit.check_keys(&keys)?;
    edit.set_versions(
        version,
        &Expirations {
            snapshot,
            targets,
            timestamp,
        },
    )?;
    let committed =
        repo::sign_and_commit(edit, &keys, store, &[], TargetMode::Copy, reporter).await?;
    Ok(RefreshOutcome {
        previous_version,
        version: version.get(),
        snapshot_expires: snapshot,
        targets_expires: targets,
        timestamp_expires: timestamp,
        committed,
    })
}
