//! The TUF edge: loading an existing repository with the trusted root, and signing + writing a
//! new version of it through a [`RepoStore`] in the safe order.
//!
//! Write order (what a reader can observe at each point):
//! 1. new target files (under consistent names no existing metadata references yet);
//! 2. `N.root.json` if the store lacks it, then `V.targets.json` (and delegated roles), then
//!    `V.snapshot.json`: all new version-named files, invisible until a timestamp points at them;
//! 3. `timestamp.json`, replaced atomically: the single switch to the new version.
//!
//! A failure anywhere before step 3 leaves the live repository exactly as it was (with at most
//! some unreferenced files); step 3 is one rename.

use crate::error::{self, Result};
use crate::keys::{SIGNED_ROLES, SigningKeys};
use crate::policy::Expirations;
use crate::store::{Placed, RepoStore, TargetMode};
use abos_repo_core::{Change, TrustedRoot};
use jiff::Timestamp;
use snafu::{ResultExt, ensure};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::schema::{Hashes, Root, Signed, Target};
use tough::{Repository, TargetName};

/// Whether a repository whose metadata has expired may be loaded (`--allow-expired-repo`,
/// `--unsafe-refresh`): the shared core's policy.
pub use abos_repo_core::Expiry;
/// How a repository is loaded (expiry policy, persistent datastore, transport).
pub use abos_repo_core::LoadOptions;
/// Where an existing repository is read from (metadata and targets base URLs; `file://`,
/// `http(s)://` or `s3://`): the shared core's [`abos_repo_core::Source`].
pub use abos_repo_core::Source as RepoSource;

/// The URLs a store is read back from.
pub fn source_of_store(store: &dyn RepoStore) -> Result<RepoSource> {
    Ok(RepoSource::new(store.metadata_url()?, store.targets_url()?))
}

/// Reads a trusted root file and parses it.
pub fn read_root(path: &Path) -> Result<(Vec<u8>, Signed<Root>)> {
    let TrustedRoot { bytes, root } = TrustedRoot::read(path)?;
    Ok((bytes, root))
}

/// Refuses a root without consistent snapshots (see [`crate::Error::NoConsistentSnapshots`]).
pub fn require_consistent_snapshots(root: &Root, path: &Path) -> Result<()> {
    ensure!(
        root.consistent_snapshot,
        error::NoConsistentSnapshotsSnafu {
            path,
            version: root.version.get(),
        }
    );
    Ok(())
}

/// Loads and verifies the repository at `source`. `Ok(None)` when it has no `timestamp.json`
/// (there is no repository there yet).
pub async fn load(
    root: &[u8],
    source: &RepoSource,
    opts: &LoadOptions,
) -> Result<Option<Repository>> {
    Ok(abos_repo_core::load_if_present(root, source, opts).await?)
}

/// Like [`load`], but a missing repository is an error.
pub async fn load_existing(
    root: &[u8],
    source: &RepoSource,
    opts: &LoadOptions,
) -> Result<Repository> {
    Ok(abos_repo_core::load(root, source, opts).await?)
}

/// Metadata version for a new signing: Unix seconds of `now`, but always strictly greater than
/// any version the repository has used for snapshot, targets or timestamp.
pub fn next_version(repo: Option<&Repository>, now: Timestamp) -> NonZeroU64 {
    let secs = u64::try_from(now.as_second()).unwrap_or(1).max(1);
    let previous = repo.map_or(0, |r| {
        r.timestamp()
            .signed
            .version
            .get()
            .max(r.snapshot().signed.version.get())
            .max(r.targets().signed.version.get())
    });
    NonZeroU64::new(secs.max(previous.saturating_add(1))).unwrap_or(NonZeroU64::MIN)
}

/// A target file to be written into the store before the metadata that names it.
#[derive(Debug, Clone)]
pub struct PendingTarget {
    /// The target name.
    pub name: String,
    /// Its TUF description (length, sha256).
    pub target: Target,
    /// Where its bytes come from.
    pub content: TargetContent,
}

/// The bytes of a pending target.
#[derive(Debug, Clone)]
pub enum TargetContent {
    /// A local file (copied, or linked with `--link-targets`).
    File(PathBuf),
    /// A local file always linked into a local store (Bottlerocket's `--link-target`).
    LinkedFile(PathBuf),
    /// In-memory bytes (manifest.json).
    Bytes(Vec<u8>),
}

impl PendingTarget {
    /// The consistent-snapshot file name `<sha256>.<name>`.
    pub fn store_name(&self) -> String {
        format!("{}.{}", hex::encode(&*self.target.hashes.sha256), self.name)
    }

    /// Lowercase hex sha256.
    pub fn sha256_hex(&self) -> String {
        hex::encode(&*self.target.hashes.sha256)
    }
}

/// A TUF target description from a length and sha256.
pub fn make_target(length: u64, sha256: Vec<u8>) -> Target {
    Target {
        length,
        hashes: Hashes {
            sha256: sha256.into(),
            _extra: Default::default(),
        },
        custom: Default::default(),
        _extra: Default::default(),
    }
}

/// sha256 of bytes.
pub fn sha256(bytes: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .to_vec()
}

/// An editor over a new or loaded repository, with the root it signs under.
#[derive(Debug)]
pub struct Edit {
    /// tough's editor and the root (latest trusted) the keys are checked against.
    pub change: Change,
    /// The snapshot/targets/timestamp version set by [`Edit::set_versions`].
    version: Option<NonZeroU64>,
    /// The expirations set with it (to set a later version if that one is taken).
    expires: Option<Expirations>,
}

impl Edit {
    fn of(change: Change) -> Edit {
        Edit {
            change,
            version: None,
            expires: None,
        }
    }

    /// Starts an edit: from the loaded repository (its latest root, targets and extras), or a
    /// new repository under the trusted root at `root_path`.
    pub async fn start(root_path: &Path, repo: Option<Repository>) -> Result<Edit> {
        let change = match repo {
            None => {
                let (_, root) = read_root(root_path)?;
                Change::new_repo(root_path, root).await?
            }
            Some(repo) => Change::from_repo(repo).await?,
        };
        Ok(Edit::of(change))
    }

    /// Starts an edit that moves the loaded repository to `new_root_path` (root version N+1,
    /// signed by a threshold of root N's root keys and of its own): the way to hand the
    /// snapshot/targets/timestamp roles to new keys. The new root is checked here, before
    /// anything is signed, and written as `N+1.root.json` with the re-signed metadata.
    pub async fn start_rotated(new_root_path: &Path, repo: Repository) -> Result<Edit> {
        let (_, new_root) = read_root(new_root_path)?;
        let current = repo.root();
        let want = current.signed.version.get() + 1;
        ensure!(
            new_root.signed.version.get() == want,
            error::RootRotationSnafu {
                path: new_root_path,
                reason: format!(
                    "its version is {}, the repository's root is version {} (expected {want})",
                    new_root.signed.version, current.signed.version
                ),
            }
        );
        current.signed.verify_role(&new_root).map_err(|e| {
            error::RootRotationSnafu {
                path: new_root_path,
                reason: format!(
                    "not signed by root version {}'s root keys: {e}",
                    current.signed.version
                ),
            }
            .build()
        })?;
        new_root.signed.verify_role(&new_root).map_err(|e| {
            error::RootRotationSnafu {
                path: new_root_path,
                reason: format!("not signed by its own root keys: {e}"),
            }
            .build()
        })?;
        Ok(Edit::of(
            Change::with_root(new_root_path, new_root, repo).await?,
        ))
    }

    /// Checks the keys against this edit's root for the roles pubsys signs.
    pub fn check_keys(&self, keys: &SigningKeys) -> Result<()> {
        keys.check_against(&self.change.root.signed, &SIGNED_ROLES)
    }

    /// Sets versions (all three the same) and expirations.
    pub fn set_versions(&mut self, version: NonZeroU64, expires: &Expirations) -> Result<()> {
        self.version = Some(version);
        self.expires = Some(*expires);
        self.change
            .editor
            .targets_version(version)
            .context(error::EditorSnafu)?
            .targets_expires(expires.targets)
            .context(error::EditorSnafu)?
            .snapshot_version(version)
            .snapshot_expires(expires.snapshot)
            .timestamp_version(version)
            .timestamp_expires(expires.timestamp);
        Ok(())
    }
}

/// What a commit wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Committed {
    /// Target files written (consistent names).
    pub targets_written: Vec<String>,
    /// Metadata files written, in the order written (timestamp.json last).
    pub metadata_written: Vec<String>,
    /// The new metadata version.
    pub version: u64,
}

/// Signs the edit and writes it through the store in the safe order.
pub async fn sign_and_commit(
    edit: Edit,
    keys: &SigningKeys,
    store: &dyn RepoStore,
    targets: &[PendingTarget],
    mode: TargetMode,
    reporter: &dyn crate::Reporter,
) -> Result<Committed> {
    let mut edit = edit;
    edit.check_keys(keys)?;
    // In a store that writes versioned metadata create-only (a bucket), a version whose
    // snapshot or targets file is already there (left by an interrupted run in the same second,
    // or by another publisher) is never overwritten: take the next free one. (Two publishers
    // racing for the same free name are still told apart by the create-only write.)
    if store.versioned_metadata_is_create_only()
        && let (Some(version), Some(expires)) = (edit.version, edit.expires)
    {
        let mut free = version;
        while store.has_metadata(&format!("{free}.snapshot.json"))?
            || store.has_metadata(&format!("{free}.targets.json"))?
        {
            free = free.saturating_add(1);
        }
        if free != version {
            edit.set_versions(free, &expires)?;
        }
    }
    let set_version = edit.version;
    reporter.phase(crate::Phase::Signing);
    let signed = edit
        .change
        .editor
        .sign(&keys.sources())
        .await
        .context(error::SignSnafu)?;

    // Stage the exact signed bytes, then read them back to hand to the store.
    let stage = tempfile::Builder::new()
        .prefix("pubsys-stage-")
        .tempdir()
        .context(error::StoreIoSnafu {
            action: "create staging directory in",
            path: std::env::temp_dir(),
        })?;
    signed
        .write(stage.path())
        .await
        .context(error::StageSnafu { path: stage.path() })?;
    let mut staged: Vec<(String, Vec<u8>)> = Vec::new();
    let entries = std::fs::read_dir(stage.path()).context(error::StoreIoSnafu {
        action: "list staging directory",
        path: stage.path(),
    })?;
    for entry in entries {
        let entry = entry.context(error::StoreIoSnafu {
            action: "list staging directory",
            path: stage.path(),
        })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = std::fs::read(entry.path()).context(error::StoreIoSnafu {
            action: "read staged",
            path: entry.path(),
        })?;
        staged.push((name, bytes));
    }
    staged.sort_by_key(|(name, _)| metadata_rank(name));
    // The version this edit set (all three roles share it); read from the file names only as
    // a fallback (without consistent snapshots there is no `V.` prefix to read).
    let version = set_version.map(NonZeroU64::get).unwrap_or_else(|| {
        staged
            .iter()
            .find_map(|(name, _)| name.strip_suffix(".snapshot.json")?.parse::<u64>().ok())
            .unwrap_or_default()
    });

    // 1. Targets, each durable before any metadata names it.
    reporter.phase(crate::Phase::WritingTargets);
    let mut created = Vec::new();
    let written = put_targets(store, targets, mode, reporter, &mut created)
        .and_then(|()| store.sync_targets());
    if let Err(e) = written {
        remove_created(store, &created);
        return Err(e);
    }
    let targets_written: Vec<String> = targets.iter().map(PendingTarget::store_name).collect();

    // 2. Versioned metadata, 3. timestamp.json last.
    reporter.phase(crate::Phase::WritingMetadata);
    let mut metadata_written = Vec::new();
    for (name, bytes) in &staged {
        let result = if name.ends_with(".root.json") {
            store.has_metadata(name).and_then(|present| {
                if present {
                    Ok(false)
                } else {
                    store.put_metadata(name, bytes).map(|()| true)
                }
            })
        } else {
            store.put_metadata(name, bytes).map(|()| true)
        };
        match result {
            Ok(true) => metadata_written.push(name.clone()),
            Ok(false) => {}
            Err(e) => {
                // Until timestamp.json points at the new metadata, nothing references the
                // targets this run created: remove them (never a target it found present).
                // If timestamp.json did land (a failure after its rename), they stay.
                let live = name == "timestamp.json"
                    && store
                        .read_metadata(name)
                        .map_or(true, |b| b.as_deref() == Some(bytes.as_slice()));
                if !live {
                    remove_created(store, &created);
                    // The versioned snapshot/targets files this run wrote are referenced by
                    // nothing (a root is left: a client may already have fetched it).
                    for written in &metadata_written {
                        if !written.ends_with(".root.json")
                            && let Err(e) = store.remove_metadata(written)
                        {
                            tracing::warn!("cannot remove unreferenced {written}: {e}");
                        }
                    }
                }
                return Err(e);
            }
        }
    }
    Ok(Committed {
        targets_written,
        metadata_written,
        version,
    })
}

/// Best-effort removal of the targets a failed publish created (the original error is what
/// the caller reports; a target that cannot be removed is only unreferenced).
fn remove_created(store: &dyn RepoStore, created: &[String]) {
    for name in created {
        if let Err(e) = store.remove_target(name) {
            tracing::warn!("cannot remove unreferenced target {name} after a failed publish: {e}");
        }
    }
    let _ = store.sync_targets();
}

/// Target writers running at once: concurrent fsyncs share journal commits, which matters
/// for releases with many small targets (migrations).
const TARGET_WRITERS: usize = 8;

/// Puts every pending target into the store with a few writer threads; the first error (in
/// input order) wins and stops the writers.
fn put_targets(
    store: &dyn RepoStore,
    targets: &[PendingTarget],
    mode: TargetMode,
    reporter: &dyn crate::Reporter,
    created: &mut Vec<String>,
) -> Result<()> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed: Mutex<Vec<(usize, crate::Error)>> = Mutex::new(Vec::new());
    let made: Mutex<Vec<String>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..TARGET_WRITERS.min(targets.len()) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(pending) = targets.get(i) else { break };
                    let store_name = pending.store_name();
                    let result = match &pending.content {
                        TargetContent::File(path) => store.put_target_file(&store_name, path, mode),
                        TargetContent::LinkedFile(path) => {
                            store.put_target_file(&store_name, path, TargetMode::Hardlink)
                        }
                        TargetContent::Bytes(bytes) => store.put_target_bytes(&store_name, bytes),
                    };
                    reporter.item_done(&pending.name, result.is_ok());
                    if let Ok(Placed::Created) = result {
                        made.lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(store_name.clone());
                    }
                    if let Err(e) = result {
                        failed
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push((i, e));
                        next.store(targets.len(), Ordering::SeqCst);
                        break;
                    }
                }
            });
        }
    });
    created.extend(made.into_inner().unwrap_or_else(|p| p.into_inner()));
    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    failed.sort_by_key(|(i, _)| *i);
    match failed.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(()),
    }
}

/// Write order of metadata files: root, targets (and delegated roles), snapshot, timestamp.
fn metadata_rank(name: &str) -> (u8, String) {
    let rank = if name.ends_with("root.json") {
        0
    } else if name == "timestamp.json" {
        3
    } else if name.ends_with("snapshot.json") {
        2
    } else {
        1
    };
    (rank, name.to_string())
}

/// Looks a target up by name in a loaded repository.
pub fn existing_target<'a>(repo: &'a Repository, name: &str) -> Option<&'a Target> {
    let name = TargetName::new(name).ok()?;
    repo.targets().signed.targets.get(&name)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn metadata_is_ordered_timestamp_last() {
        let mut names = vec![
            "timestamp.json",
            "5.snapshot.json",
            "5.targets.json",
            "1.root.json",
        ];
        names.sort_by_key(|n| metadata_rank(n));
        assert_eq!(
            names,
            [
                "1.root.json",
                "5.targets.json",
                "5.snapshot.json",
                "timestamp.json"
            ]
        );
    }

    #[test]
    fn versions_are_unix_seconds() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert_eq!(next_version(None, now).get(), 1_767_225_600);
    }
}
