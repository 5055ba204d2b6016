//! The TUF edge: load the repository with tough into a persistent datastore, read
//! `manifest.json`, look up signed target lengths and hashes, and cache migrations.

use crate::config::{Config, HostPaths};
use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::transport::{self, HttpClient, MetadataCache, UpdogTransport};
use snafu::{OptionExt, ResultExt};
use std::collections::BTreeMap;
use std::path::Path;
use tough::schema::{Root, Signed};
use tough::{ExpirationEnforcement, Repository, RepositoryLoader, TargetName};
use tracing::{debug, info, warn};
use update_metadata::Manifest;
use url::Url;

/// A loaded, verified repository and its manifest.
#[derive(Debug)]
pub struct LoadedRepo {
    /// The tough repository.
    pub repo: Repository,
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Where targets are served.
    pub targets_base: Url,
    /// Files served from the immutable-metadata cache in this load.
    pub cache_hits: usize,
    /// tough's private copy of the datastore, alive as long as the repository: tough records
    /// the time there again whenever it reads a target (those later records are not kept).
    _trust_work: tempfile::TempDir,
}

impl LoadedRepo {
    /// Refuses `host` if the manifest has a broken entry for its variant and arch.
    pub fn check_host(&self, host: &update_metadata::Host) -> Result<()> {
        self.manifest
            .check_host(host)
            .context(error::ManifestParseSnafu)
    }
}

/// Signed facts about one target.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// Target name.
    pub name: String,
    /// Signed length.
    pub length: u64,
    /// Signed SHA-256.
    pub sha256: [u8; 32],
    /// Download URL.
    pub url: Url,
}

/// Files of the trust datastore that updog knows how to check, with what each must parse as.
fn check_trust_file(name: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    use tough::schema::{Snapshot, Targets, Timestamp};
    let parsed = match name {
        "root.json" => serde_json::from_slice::<Signed<Root>>(bytes).map(drop),
        "timestamp.json" => serde_json::from_slice::<Signed<Timestamp>>(bytes).map(drop),
        "snapshot.json" => serde_json::from_slice::<Signed<Snapshot>>(bytes).map(drop),
        "targets.json" => serde_json::from_slice::<Signed<Targets>>(bytes).map(drop),
        "latest_known_time.json" => serde_json::from_slice::<jiff::Timestamp>(bytes).map(drop),
        // Delegated targets roles.
        _ => serde_json::from_slice::<Signed<Targets>>(bytes).map(drop),
    };
    parsed.map_err(|e| {
        if bytes.is_empty() {
            "the file is empty (a write was interrupted, or it was truncated)".to_owned()
        } else {
            format!("it is not valid {name}: {e}")
        }
    })
}

/// The trust datastore as updog keeps it: every file read (never through a link) and checked.
/// tough itself treats a file it cannot parse as "no state", which would silently turn off
/// rollback, freeze and clock protection; updog refuses instead.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TrustState {
    files: BTreeMap<String, Vec<u8>>,
}

impl TrustState {
    /// Reads and checks `dir` (created if missing; a link, a foreign or writable directory, a
    /// non-regular entry or a file that does not parse is an error naming it). Temporary files
    /// left by an interrupted write are removed.
    pub fn load(paths: &HostPaths) -> Result<TrustState> {
        let dir = paths.datastore();
        fsutil::ensure_state_dir(&paths.state_dir(), &dir)?;
        let mut files = BTreeMap::new();
        for entry in std::fs::read_dir(&dir).context(error::ReadFileSnafu { path: &dir })? {
            let entry = entry.context(error::ReadFileSnafu { path: &dir })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let ft = entry
                .file_type()
                .context(error::ReadFileSnafu { path: &path })?;
            if ft.is_symlink() {
                return Err(Error::UnsafeState {
                    path,
                    problem: "is a symbolic link; updog does not follow links in its state".into(),
                });
            }
            if !ft.is_file() {
                return Err(Error::UnsafeState {
                    path,
                    problem: "is not a regular file".into(),
                });
            }
            if name.starts_with(".tmp-") {
                debug!("removing {} left by an interrupted write", path.display());
                fsutil::remove_durable(&path)?;
                continue;
            }
            let bytes = fsutil::read_state_file(&path)?.unwrap_or_default();
            check_trust_file(&name, &bytes).map_err(|problem| Error::TrustStateCorrupt {
                path: path.clone(),
                problem,
            })?;
            files.insert(name, bytes);
        }
        Ok(TrustState { files })
    }

    /// The bytes of one file, if present.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.files.get(name).map(Vec::as_slice)
    }

    /// Copies the state into a private working directory for tough.
    fn stage(&self, work: &Path) -> Result<()> {
        for (name, bytes) in &self.files {
            let path = work.join(name);
            std::fs::write(&path, bytes).context(error::WriteFileSnafu { path: &path })?;
        }
        Ok(())
    }

    /// Makes what tough left in `work` the persistent state: each changed file replaced
    /// atomically and durably, each file tough removed removed durably. A file tough wrote that
    /// does not parse is not committed.
    fn commit(&self, work: &Path, dir: &Path) -> Result<TrustState> {
        let mut now = BTreeMap::new();
        for entry in std::fs::read_dir(work).context(error::ReadFileSnafu { path: work })? {
            let entry = entry.context(error::ReadFileSnafu { path: work })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if !entry
                .file_type()
                .context(error::ReadFileSnafu { path: &path })?
                .is_file()
            {
                continue;
            }
            let bytes = std::fs::read(&path).context(error::ReadFileSnafu { path: &path })?;
            now.insert(name, bytes);
        }
        for (name, bytes) in &now {
            if self.files.get(name) == Some(bytes) {
                continue;
            }
            if let Err(problem) = check_trust_file(name, bytes) {
                warn!("not keeping {name} written by tough: {problem}");
                continue;
            }
            fsutil::write_atomic(&dir.join(name), bytes)?;
        }
        for name in self.files.keys() {
            if !now.contains_key(name) {
                fsutil::remove_durable(&dir.join(name))?;
            }
        }
        Ok(TrustState { files: now })
    }
}

/// Reads the trusted root shipped with the OS, checking that it parses and is signed by a
/// threshold of its own keys (a broken file is the host's configuration, not the repository's
/// fault).
fn shipped_root(paths: &HostPaths) -> Result<(Vec<u8>, Signed<Root>)> {
    let path = paths.trusted_root();
    let bytes = std::fs::read(&path).context(error::TrustedRootReadSnafu { path: &path })?;
    let root: Signed<Root> =
        serde_json::from_slice(&bytes).map_err(|e| Error::TrustedRootInvalid {
            path: path.clone(),
            problem: if bytes.is_empty() {
                "the file is empty".to_owned()
            } else {
                format!("not a TUF root: {e}")
            },
        })?;
    root.signed
        .verify_role(&root)
        .map_err(|e| Error::TrustedRootInvalid {
            path: path.clone(),
            problem: format!("its signatures do not verify against its own keys: {e}"),
        })?;
    Ok((bytes, root))
}

/// Chooses the trusted root: the shipped one, or the newer one tough already verified and kept
/// in the datastore (so a rotated root chain is not walked again from version 1 every run).
fn trusted_root(paths: &HostPaths, state: &TrustState) -> Result<(Vec<u8>, Signed<Root>)> {
    let (shipped, shipped_root) = shipped_root(paths)?;
    if let Some(kept) = state.get("root.json")
        && let Ok(kept_root) = serde_json::from_slice::<Signed<Root>>(kept)
        && kept_root.signed.version > shipped_root.signed.version
    {
        debug!(
            "using root version {} from the datastore (shipped: {})",
            kept_root.signed.version, shipped_root.signed.version
        );
        return Ok((kept.to_vec(), kept_root));
    }
    Ok((shipped, shipped_root))
}

/// Refuses a repository URL updog cannot fetch (before anything is fetched).
fn check_url_scheme(paths: &HostPaths, field: &'static str, url: &Url) -> Result<()> {
    match url.scheme() {
        "http" | "https" | "file" => Ok(()),
        other => Err(Error::ConfigUrlScheme {
            path: paths.config(),
            field,
            value: url.to_string(),
            scheme: other.to_owned(),
        }),
    }
}

/// Turns tough's load errors that have a plainer explanation into updog's own.
fn explain_load_error(
    e: tough::error::Error,
    config: &Config,
    root: &Signed<Root>,
    now: jiff::Timestamp,
) -> Error {
    use tough::error::Error as T;
    match &e {
        T::Transport { url, source, .. }
            if source.kind() == tough::TransportErrorKind::FileNotFound
                && url.path().ends_with("/timestamp.json") =>
        {
            return Error::RepoNotFound {
                base: config.metadata_base_url.to_string(),
                url: url.to_string(),
            };
        }
        T::ExpiredMetadata {
            role: tough::schema::RoleType::Root,
            ..
        } if root.signed.expires <= now => {
            return Error::RootExpired {
                version: root.signed.version.get(),
                expires: root.signed.expires,
                url: config.metadata_base_url.to_string(),
            };
        }
        _ => {}
    }
    Error::RepoLoad {
        url: config.metadata_base_url.to_string(),
        source: Box::new(e),
    }
}

async fn load_once(
    paths: &HostPaths,
    config: &Config,
    http: &HttpClient,
    cache: &MetadataCache,
) -> Result<LoadedRepo> {
    let state = TrustState::load(paths)?;
    let (root, parsed_root) = trusted_root(paths, &state)?;
    let datastore = paths.datastore();
    // tough writes its datastore in place (truncate, then write) and follows links; it gets a
    // private copy instead, and what it leaves there is committed atomically afterwards.
    let work = tempfile::Builder::new()
        .prefix(WORK_PREFIX)
        .tempdir_in(paths.state_dir())
        .context(error::CreateDirSnafu {
            path: paths.state_dir(),
        })?;
    state.stage(work.path())?;
    let loaded = RepositoryLoader::new(
        &root,
        config.metadata_base_url.clone(),
        config.targets_base_url.clone(),
    )
    .transport(UpdogTransport::new(http.clone(), Some(cache.clone())))
    .datastore(work.path())
    .expiration_enforcement(ExpirationEnforcement::Safe)
    .load()
    .await;
    // Whatever tough verified and recorded (a newer root, the latest known time, a newer
    // timestamp) is kept even when a later step failed, as tough itself would keep it.
    let committed = state.commit(work.path(), &datastore)?;
    let latest_root = committed
        .get("root.json")
        .and_then(|b| serde_json::from_slice::<Signed<Root>>(b).ok())
        .filter(|r| r.signed.version > parsed_root.signed.version)
        .unwrap_or(parsed_root);
    let repo =
        loaded.map_err(|e| explain_load_error(e, config, &latest_root, jiff::Timestamp::now()))?;
    let name = TargetName::new("manifest.json").context(error::TargetNameSnafu {
        name: "manifest.json",
    })?;
    use tough::IntoVec;
    let bytes = repo
        .read_target(&name)
        .await
        .context(error::ManifestReadSnafu)?
        .context(error::ManifestMissingSnafu)?
        .into_vec()
        .await
        .context(error::ManifestReadSnafu)?;
    let origin = format!("{}manifest.json", config.targets_base_url);
    // Per entry: broken entries are skipped (and logged); the workflow refuses the host's own.
    let manifest =
        Manifest::from_slice_for_hosts(&bytes, &origin).context(error::ManifestParseSnafu)?;
    for r in &manifest.rejected {
        warn!("{origin}: skipping {r}");
    }
    Ok(LoadedRepo {
        repo,
        manifest,
        targets_base: config.targets_base_url.clone(),
        cache_hits: cache.hits(),
        _trust_work: work,
    })
}

/// Prefix of tough's private working copies of the datastore (in the state directory).
const WORK_PREFIX: &str = ".tuf-work-";

/// Removes working copies left by an updog that was killed (the caller holds the lock).
fn remove_stale_work_dirs(state_dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(state_dir).context(error::ReadFileSnafu { path: state_dir })?;
    for entry in entries.flatten() {
        if !entry.file_name().to_string_lossy().starts_with(WORK_PREFIX) {
            continue;
        }
        let path = entry.path();
        // remove_dir_all removes a link itself, never what it points to.
        let removed = match entry.file_type() {
            Ok(ft) if ft.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.context(error::WriteFileSnafu { path: &path })?;
    }
    Ok(())
}

/// Loads and verifies the repository (Safe expiration enforcement, persistent datastore).
pub async fn load(paths: &HostPaths, config: &Config, http: &HttpClient) -> Result<LoadedRepo> {
    check_url_scheme(paths, "metadata_base_url", &config.metadata_base_url)?;
    check_url_scheme(paths, "targets_base_url", &config.targets_base_url)?;
    let state_dir = paths.state_dir();
    fsutil::ensure_state_dir(&state_dir, &state_dir)?;
    remove_stale_work_dirs(&state_dir)?;
    let cache_dir = paths.metadata_cache();
    fsutil::ensure_state_dir(&state_dir, &cache_dir)?;
    fsutil::check_entries(&cache_dir)?;
    let cache = MetadataCache::new(
        cache_dir,
        config.metadata_base_url.clone(),
        config.targets_base_url.clone(),
    );
    let loaded = match load_once(paths, config, http, &cache).await {
        Ok(l) => l,
        Err(e) if cache.hits() > 0 => {
            warn!("load with cached metadata failed ({e}); retrying without the cache");
            cache.clear();
            load_once(paths, config, http, &cache).await?
        }
        Err(e) => return Err(e),
    };
    cache.commit()?;
    info!(
        "repository loaded: timestamp v{}, snapshot v{}, targets v{} ({} cached files reused){}",
        loaded.repo.timestamp().signed.version,
        loaded.repo.snapshot().signed.version,
        loaded.repo.targets().signed.version,
        loaded.cache_hits,
        crate::image::peak_memory()
            .map(|k| format!(", peak RSS so far {k} KiB"))
            .unwrap_or_default()
    );
    Ok(loaded)
}

impl LoadedRepo {
    /// Fails if any top-level role has expired by `now` (checked again before images are
    /// streamed, as tough's `read_target` does for the targets it reads itself).
    pub fn check_expiry(&self, now: jiff::Timestamp) -> Result<()> {
        use tough::schema::RoleType;
        let roles = [
            (self.repo.root().signed.expires, RoleType::Root),
            (self.repo.timestamp().signed.expires, RoleType::Timestamp),
            (self.repo.snapshot().signed.expires, RoleType::Snapshot),
            (self.repo.targets().signed.expires, RoleType::Targets),
        ];
        for (expires, role) in roles {
            if expires <= now {
                return error::MetadataExpiredSnafu {
                    role: role.to_string(),
                    expires,
                }
                .fail();
            }
        }
        Ok(())
    }

    /// Signed length, hash and URL of `name`.
    pub fn target(&self, name: &str) -> Result<TargetInfo> {
        let tn = TargetName::new(name).context(error::TargetNameSnafu { name })?;
        let target = self
            .repo
            .targets()
            .signed
            .find_target(&tn, false)
            .ok()
            .context(error::TargetMissingSnafu { name })?;
        let sha256: [u8; 32] = target
            .hashes
            .sha256
            .as_ref()
            .try_into()
            .ok()
            .context(error::TargetMissingSnafu { name })?;
        let url = transport::target_url(
            &self.targets_base,
            tn.resolved(),
            &hex::encode(sha256),
            self.repo.root().signed.consistent_snapshot,
        )?;
        Ok(TargetInfo {
            name: name.to_owned(),
            length: target.length,
            sha256,
            url,
        })
    }

    /// Caches `names` (migrations plus manifest.json) and the metadata (with the whole root chain)
    /// for the migrator, like Bottlerocket's updog (§1.9); everything is flushed afterwards.
    pub async fn cache_migrations(&self, paths: &HostPaths, names: &[String]) -> Result<()> {
        let meta = paths.migrations_metadata_dir();
        let targets = paths.migrations_dir();
        // tough writes these files itself (following links): the directories must be ours and
        // hold no links before it does.
        for dir in [&meta, &targets] {
            fsutil::ensure_state_dir(dir, dir)?;
            fsutil::check_entries(dir)?;
        }
        self.repo
            .cache(&meta, &targets, Some(names), true)
            .await
            .context(error::MigrationCacheSnafu { path: &targets })?;
        fsutil::sync_tree(&meta)?;
        fsutil::sync_tree(&targets)?;
        Ok(())
    }
}
