//! The TUF edge: the repository is loaded and refreshed by tuf-client's [`Updater`] (the
//! specification's client workflow, §5) into the persistent datastore under
//! `/var/lib/updog/tuf`, `manifest.json` is looked up and downloaded through it, image targets
//! are resolved to their signed length and SHA-256, and migrations are cached for the migrator.
//!
//! updog adds its own rules on top of tuf-client:
//! - the state rules of [`crate::fsutil`]: the datastore directory and every file in it are
//!   checked (no link, not writable by others, each file parses) before tuf-client reads them; a
//!   damaged file is an error, never "no state" (which would silently turn off rollback, freeze
//!   and clock protection);
//! - the clock record keeps tough's name and form (`latest_known_time.json`, a JSON string), and
//!   tough's `root.json`, `timestamp.json`, `snapshot.json` and `targets.json` are the files
//!   tuf-client keeps too, so a host upgraded from the tough-based updog keeps its trusted
//!   versions and clock: rollback protection survives the switch;
//! - one fixed update start time per run: the clock is read once when the load starts.

use crate::config::{Config, HostPaths};
use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::transport::{HttpClient, MetadataCache, UpdogTransport};
use snafu::{IntoError, OptionExt, ResultExt};
use std::path::Path;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};
use tuf_client::{RefreshOutcome, TimestampUpdate, Updater};
use update_metadata::Manifest;
use url::Url;

/// The datastore file recording the start time of the last cycle (tough's name and format).
pub const CLOCK_FILE: &str = "latest_known_time.json";

/// Largest old root version fetched for the migrator's root chain (tuf-client's root limit).
const ROOT_LIMIT: u64 = 512 * 1024;

/// A loaded, verified repository and its manifest.
#[derive(Debug)]
pub struct LoadedRepo {
    /// The parsed manifest.
    pub manifest: Manifest,
    /// Where targets are served.
    pub targets_base: Url,
    /// Files served from the immutable-metadata cache in this load.
    pub cache_hits: usize,
    /// What the refresh found (trusted versions, the cycle's start time).
    pub refresh: RefreshOutcome,
    /// The verified repository (a lookup may fetch delegated roles, so it is locked).
    updater: Mutex<Updater>,
}

impl LoadedRepo {
    /// Refuses `host` if the manifest has a broken entry for its variant and arch.
    pub fn check_host(&self, host: &update_metadata::Host) -> Result<()> {
        self.manifest
            .check_host(host)
            .context(error::ManifestParseSnafu)
    }
}

/// Signed facts about one image target, for the resumable writer.
#[derive(Debug, Clone)]
pub struct TargetInfo {
    /// Target name.
    pub name: String,
    /// Signed length.
    pub length: u64,
    /// Signed SHA-256.
    pub sha256: [u8; 32],
    /// Download URL (without the query parameters, which the HTTP client adds).
    pub url: Url,
}

/// Checks one file of the trust datastore: present files must parse as what they are.
fn check_trust_file(name: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.is_empty() {
        return Err("the file is empty (a write was interrupted, or it was truncated)".to_owned());
    }
    if name == CLOCK_FILE {
        return serde_json::from_slice::<jiff::Timestamp>(bytes)
            .map(drop)
            .map_err(|e| format!("it is not a JSON timestamp: {e}"));
    }
    if !name.ends_with(".json") {
        return Ok(());
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not valid {name}: {e}"))?;
    let ok = value
        .get("signed")
        .is_some_and(serde_json::Value::is_object)
        && value
            .get("signatures")
            .is_some_and(serde_json::Value::is_array);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "it is not valid {name}: not TUF metadata (a \"signed\" object and a \"signatures\" list)"
        ))
    }
}

/// Checks the trust datastore as updog keeps it before tuf-client reads it: the directory is
/// created if missing and must be safe; a link, a non-regular entry or a file that does not
/// parse is an error naming it. Temporary files left by an interrupted write are removed.
pub fn check_trust_state(paths: &HostPaths) -> Result<()> {
    let dir = paths.datastore();
    fsutil::ensure_state_dir(&paths.state_dir(), &dir)?;
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
        if abos_fsio::is_temp_name(std::ffi::OsStr::new(&name)) {
            debug!("removing {} left by an interrupted write", path.display());
            fsutil::remove_durable(&path)?;
            continue;
        }
        let bytes = fsutil::read_state_file(&path)?.unwrap_or_default();
        check_trust_file(&name, &bytes).map_err(|problem| Error::TrustStateCorrupt {
            path: path.clone(),
            problem,
        })?;
    }
    Ok(())
}

/// Reads the trusted root shipped with the OS.
fn shipped_root(paths: &HostPaths) -> Result<Vec<u8>> {
    let path = paths.trusted_root();
    std::fs::read(&path).context(error::TrustedRootReadSnafu { path: &path })
}

/// Why tuf-client refused the shipped root, in words for the operator.
fn root_problem(bytes: &[u8], e: &tuf_client::Error) -> String {
    let inner = match e {
        tuf_client::Error::TrustedRoot { source } => source.as_ref(),
        other => other,
    };
    match inner {
        _ if bytes.is_empty() => "the file is empty".to_owned(),
        tuf_client::Error::Signature { .. } => {
            format!("its signatures do not verify against its own keys: {inner}")
        }
        tuf_client::Error::Malformed { reason, .. } => format!("not a TUF root: {reason}"),
        other => other.to_string(),
    }
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

/// Turns tuf-client's refresh errors that have a plainer explanation into updog's own.
fn explain_load_error(e: tuf_client::Error, config: &Config) -> Error {
    use tuf_client::Error as T;
    match &e {
        T::Fetch { url, source, .. }
            if source.kind() == tuf_client::TransportErrorKind::NotFound
                && url.ends_with("/timestamp.json") =>
        {
            return Error::RepoNotFound {
                base: config.metadata_base_url.to_string(),
                url: url.clone(),
            };
        }
        T::Expired {
            role,
            version,
            expires,
            ..
        } if role == "root" => {
            return Error::RootExpired {
                version: *version,
                expires: *expires,
                url: config.metadata_base_url.to_string(),
            };
        }
        _ => {}
    }
    error::RepoLoadSnafu {
        url: config.metadata_base_url.to_string(),
    }
    .into_error(e)
}

/// The updater for this host's repository (nothing fetched yet).
fn updater(
    paths: &HostPaths,
    config: &Config,
    http: &HttpClient,
    cache: &MetadataCache,
) -> Result<Updater> {
    let root = shipped_root(paths)?;
    let mut tc = tuf_client::Config::new(
        config.metadata_base_url.clone(),
        config.targets_base_url.clone(),
        paths.datastore(),
        root.clone(),
    );
    // Query parameters are added by `HttpClient` (they change during an update).
    tc.clock_file = CLOCK_FILE.to_owned();
    let transport = UpdogTransport::new(http.clone(), Some(cache.clone()));
    Updater::new(tc, transport).map_err(|e| match e {
        tuf_client::Error::TrustedRoot { .. } => Error::TrustedRootInvalid {
            path: paths.trusted_root(),
            problem: root_problem(&root, &e),
        },
        other => explain_load_error(other, config),
    })
}

async fn load_once(
    paths: &HostPaths,
    config: &Config,
    http: &HttpClient,
    cache: &MetadataCache,
    now: jiff::Timestamp,
) -> Result<LoadedRepo> {
    check_trust_state(paths)?;
    let mut updater = updater(paths, config, http, cache)?;
    let refresh = updater
        .refresh(now)
        .await
        .map_err(|e| explain_load_error(e, config))?;
    if refresh.timestamp == TimestampUpdate::DiscardedSameVersionDifferentContent {
        warn!(
            "the repository serves a timestamp with the trusted version {} but different \
             content; it was discarded and the trusted one kept (TUF §5.4.3.1)",
            refresh.timestamp_version
        );
    }
    let info = updater
        .get_target_info("manifest.json")
        .await
        .map_err(|e| explain_load_error(e, config))?
        .context(error::ManifestMissingSnafu)?;
    let bytes = updater
        .download_target(&info)
        .await
        .map_err(|e| error::ManifestReadSnafu.into_error(e))?;
    let origin = format!("{}manifest.json", config.targets_base_url);
    // Per entry: broken entries are skipped (and logged); the workflow refuses the host's own.
    let manifest =
        Manifest::from_slice_for_hosts(&bytes, &origin).context(error::ManifestParseSnafu)?;
    for r in &manifest.rejected {
        warn!("{origin}: skipping {r}");
    }
    Ok(LoadedRepo {
        manifest,
        targets_base: config.targets_base_url.clone(),
        cache_hits: cache.hits(),
        refresh,
        updater: Mutex::new(updater),
    })
}

/// Prefix of the private working copies of the datastore the tough-based updog made.
const WORK_PREFIX: &str = ".tuf-work-";

/// Removes working copies left by an older updog that was killed (the caller holds the lock).
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

/// Loads and verifies the repository (one fixed start time, persistent datastore).
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
    // §5.1: the update start time of this run, read once.
    let now = jiff::Timestamp::now();
    let loaded = match load_once(paths, config, http, &cache, now).await {
        Ok(l) => l,
        Err(e) if cache.hits() > 0 => {
            warn!("load with cached metadata failed ({e}); retrying without the cache");
            cache.clear();
            load_once(paths, config, http, &cache, now).await?
        }
        Err(e) => return Err(e),
    };
    cache.commit()?;
    info!(
        "repository loaded: root v{}, timestamp v{}, snapshot v{}, targets v{} ({} cached files reused){}",
        loaded.refresh.root_version,
        loaded.refresh.timestamp_version,
        loaded.refresh.snapshot_version,
        loaded.refresh.targets_version,
        loaded.cache_hits,
        crate::image::peak_memory()
            .map(|k| format!(", peak RSS so far {k} KiB"))
            .unwrap_or_default()
    );
    Ok(loaded)
}

impl LoadedRepo {
    /// Signed length, SHA-256 and URL of image target `name` (found by tuf-client's delegation
    /// search). Images are written by a resumable writer that keeps a SHA-256 state across
    /// runs, so an image target must list a SHA-256.
    pub async fn target(&self, name: &str) -> Result<TargetInfo> {
        let mut updater = self.updater.lock().await;
        let info = updater
            .get_target_info(name)
            .await
            .map_err(|e| error::TargetLookupSnafu { name }.into_error(e))?
            .context(error::TargetMissingSnafu { name })?;
        let sha256: [u8; 32] = info
            .hashes
            .get("sha256")
            .and_then(|h| h.try_into().ok())
            .context(error::TargetNoSha256Snafu { name })?;
        let url = updater
            .target_url(&info)
            .map_err(|e| error::TargetLookupSnafu { name }.into_error(e))?;
        Ok(TargetInfo {
            name: name.to_owned(),
            length: info.length,
            sha256,
            url,
        })
    }

    /// Caches `names` (migrations plus manifest.json) and the metadata (with the whole root
    /// chain) for the migrator, like Bottlerocket's updog (§1.9): targets under their
    /// consistent-snapshot names (`<sha256>.<name>`), metadata under the names the repository
    /// publishes them, each file written atomically (never through a link) and everything
    /// flushed afterwards. Every target is verified (length and all hashes) before it is written.
    pub async fn cache_migrations(&self, paths: &HostPaths, names: &[String]) -> Result<()> {
        let meta = paths.migrations_metadata_dir();
        let targets = paths.migrations_dir();
        for dir in [&meta, &targets] {
            fsutil::ensure_state_dir(dir, dir)?;
            fsutil::check_entries(dir)?;
        }
        let mut updater = self.updater.lock().await;
        let cache_err = |e| error::MigrationCacheSnafu { path: &targets }.into_error(e);
        let consistent = updater.consistent_snapshot().unwrap_or(false);
        for name in names {
            let info = updater
                .get_target_info(name)
                .await
                .map_err(cache_err)?
                .context(error::TargetMissingSnafu { name })?;
            let bytes = updater.download_target(&info).await.map_err(cache_err)?;
            let file = match info
                .hashes
                .get("sha256")
                .or(info.hashes.iter().next().map(|h| h.1))
            {
                Some(h) if consistent => format!("{}.{name}", hex::encode(h)),
                _ => name.clone(),
            };
            if file.contains('/') {
                return error::TargetMissingSnafu { name }.fail();
            }
            fsutil::write_atomic(&targets.join(&file), &bytes)?;
        }
        // Metadata: every role this run trusted, then the root chain 1..=N.
        let mut roles = vec!["timestamp".to_owned(), "snapshot".to_owned()];
        roles.extend(updater.trusted_targets_roles());
        for role in roles {
            if let (Some(file), Some(bytes)) = (
                updater.metadata_file_name(&role),
                updater.trusted_metadata(&role),
            ) {
                fsutil::write_atomic(&meta.join(file), bytes)?;
            }
        }
        let version = self.refresh.root_version;
        for v in 1..=version {
            let file = format!("{v}.root.json");
            let bytes = if v == version {
                updater
                    .trusted_metadata("root")
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default()
            } else {
                updater
                    .fetch_metadata_unverified(&file, ROOT_LIMIT)
                    .await
                    .map_err(cache_err)?
            };
            fsutil::write_atomic(&meta.join(file), &bytes)?;
        }
        drop(updater);
        fsutil::sync_tree(&meta)?;
        fsutil::sync_tree(&targets)?;
        Ok(())
    }

    /// The delta targets of root image target `root` (`<root>.index` and `<root>.chunks`,
    /// abos-chunked, see `delta/README.md`), if the signed targets metadata lists both.
    pub async fn delta_targets(&self, root: &str) -> Result<Option<(TargetInfo, TargetInfo)>> {
        let index = abos_delta::publish::index_name(root);
        let chunks = abos_delta::publish::chunks_name(root);
        {
            let mut updater = self.updater.lock().await;
            for name in [&index, &chunks] {
                let found = updater
                    .get_target_info(name)
                    .await
                    .map_err(|e| error::TargetLookupSnafu { name }.into_error(e))?;
                if found.is_none() {
                    return Ok(None);
                }
            }
        }
        Ok(Some((
            self.target(&index).await?,
            self.target(&chunks).await?,
        )))
    }

    /// Downloads target `name` into memory through TUF: its length (at most the signed length,
    /// and at most `limit`) and every signed hash are checked before the bytes are returned.
    pub async fn download_small(&self, name: &str, limit: u64) -> Result<Vec<u8>> {
        let updater = self.updater.lock().await;
        let mut u = updater;
        let info = u
            .get_target_info(name)
            .await
            .map_err(|e| error::DeltaIndexSnafu { name }.into_error(e))?
            .context(error::TargetMissingSnafu { name })?;
        if info.length > limit {
            return error::TargetTooLongSnafu {
                name: name.to_owned(),
                expected: limit,
            }
            .fail();
        }
        u.download_target(&info)
            .await
            .map_err(|e| error::DeltaIndexSnafu { name }.into_error(e))
    }
}
