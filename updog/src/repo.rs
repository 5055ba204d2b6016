//! The TUF edge: load the repository with tough into a persistent datastore, read
//! `manifest.json`, look up signed target lengths and hashes, and cache migrations.

use crate::config::{Config, HostPaths};
use crate::error::{self, Result};
use crate::fsutil;
use crate::transport::{self, HttpClient, MetadataCache, UpdogTransport};
use snafu::{OptionExt, ResultExt};
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

/// Chooses the trusted root: the shipped one, or the newer one tough already verified and kept
/// in the datastore (so a rotated root chain is not walked again from version 1 every run).
fn trusted_root(paths: &HostPaths) -> Result<Vec<u8>> {
    let shipped_path = paths.trusted_root();
    let shipped = std::fs::read(&shipped_path).context(error::TrustedRootReadSnafu {
        path: &shipped_path,
    })?;
    let version = |bytes: &[u8]| {
        serde_json::from_slice::<Signed<Root>>(bytes)
            .ok()
            .map(|r| r.signed.version.get())
    };
    if let Ok(kept) = std::fs::read(paths.datastore().join("root.json"))
        && let (Some(k), Some(s)) = (version(&kept), version(&shipped))
        && k > s
    {
        debug!("using root version {k} from the datastore (shipped: {s})");
        return Ok(kept);
    }
    Ok(shipped)
}

async fn load_once(
    paths: &HostPaths,
    config: &Config,
    http: &HttpClient,
    cache: &MetadataCache,
) -> Result<LoadedRepo> {
    let root = trusted_root(paths)?;
    let datastore = paths.datastore();
    std::fs::create_dir_all(&datastore).context(error::CreateDirSnafu { path: &datastore })?;
    let repo = RepositoryLoader::new(
        &root,
        config.metadata_base_url.clone(),
        config.targets_base_url.clone(),
    )
    .transport(UpdogTransport::new(http.clone(), Some(cache.clone())))
    .datastore(&datastore)
    .expiration_enforcement(ExpirationEnforcement::Safe)
    .load()
    .await
    .context(error::RepoLoadSnafu {
        url: config.metadata_base_url.as_str(),
    })?;
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
    })
}

/// Loads and verifies the repository (Safe expiration enforcement, persistent datastore).
pub async fn load(paths: &HostPaths, config: &Config, http: &HttpClient) -> Result<LoadedRepo> {
    let cache = MetadataCache::new(
        paths.metadata_cache(),
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
    // tough writes its datastore without fsync; make the trusted state durable.
    fsutil::sync_tree(&paths.datastore())?;
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
        self.repo
            .cache(&meta, &targets, Some(names), true)
            .await
            .context(error::MigrationCacheSnafu { path: &targets })?;
        fsutil::sync_tree(&meta)?;
        fsutil::sync_tree(&targets)?;
        Ok(())
    }
}
