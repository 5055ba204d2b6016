//! Publishing a release: create a repository or add a release to an existing one.
//!
//! The plan is built and checked before anything is written: keys parsed and checked against the
//! repository's root, the existing repository loaded and verified, the manifest edited and
//! validated, every file hashed (and checked against the build description). Only then are
//! targets written, then metadata, `timestamp.json` last (see [`crate::repo`]).

use crate::error::{self, Result};
use crate::keys::{KeySpec, SIGNED_ROLES, SigningKeys};
use crate::policy::ExpirationPolicy;
use crate::repo::{
    self, Committed, Edit, Expiry, LoadOptions, PendingTarget, RepoSource, TargetContent,
};
use crate::store::{RepoStore, TargetMode};
use crate::{Phase, Reporter};
use jiff::Timestamp;
use snafu::{OptionExt, ResultExt, ensure};
use std::io::Read;
use std::path::{Path, PathBuf};
use update_metadata::{Arch, BuildDescription, Images, Manifest, Release, Variant, Version};

/// The name of the manifest target.
pub use abos_repo_core::MANIFEST_TARGET;

/// Paths of the three images of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePaths {
    /// BOOT partition image.
    pub boot: PathBuf,
    /// ROOT partition image.
    pub root: PathBuf,
    /// HASH (dm-verity) partition image.
    pub hash: PathBuf,
}

/// Size and sha256 a build description promises for a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// Bytes.
    pub size: u64,
    /// Lowercase hex sha256.
    pub sha256: String,
}

/// What is being released.
#[derive(Debug, Clone)]
pub struct ReleaseInputs {
    /// Variant.
    pub variant: Variant,
    /// Architecture.
    pub arch: Arch,
    /// Version.
    pub version: Version,
    /// The images.
    pub images: ImagePaths,
    /// Size/hash the build description promises for boot, root, hash (checked while hashing).
    pub expected: Option<[Expected; 3]>,
}

impl ReleaseInputs {
    /// Reads os-image's build description; artifact paths are relative to its directory.
    pub fn from_build_description(path: &Path) -> Result<ReleaseInputs> {
        let desc = BuildDescription::load(path).context(error::BuildDescriptionSnafu { path })?;
        let a = &desc.artifacts;
        let at = |x: &update_metadata::Artifact| BuildDescription::artifact_path(path, x);
        let exp = |x: &update_metadata::Artifact| Expected {
            size: x.size,
            sha256: x.sha256.to_ascii_lowercase(),
        };
        Ok(ReleaseInputs {
            variant: desc.variant.clone(),
            arch: desc.arch,
            version: desc.version.clone(),
            images: ImagePaths {
                boot: at(&a.boot),
                root: at(&a.root),
                hash: at(&a.hash),
            },
            expected: Some([exp(&a.boot), exp(&a.root), exp(&a.hash)]),
        })
    }
}

/// Everything `pubsys repo` needs.
#[derive(Debug, Clone)]
pub struct PublishRequest {
    /// The trusted root (used as-is for a new repository; to verify an existing one).
    pub trusted_root: PathBuf,
    /// Signing keys.
    pub keys: Vec<KeySpec>,
    /// Where the existing repository is read from; None: read back from the store.
    pub source: Option<RepoSource>,
    /// The release.
    pub inputs: ReleaseInputs,
    /// Release.toml whose migrations replace the manifest's.
    pub release_file: Option<PathBuf>,
    /// Extra files published as targets (migrations, kits …), named by file name, copied.
    pub extra_targets: Vec<PathBuf>,
    /// Extra files published as targets, linked into a local store rather than copied
    /// (Bottlerocket's `--link-target`).
    pub link_targets: Vec<PathBuf>,
    /// Raise max_version past releases pulled back with `yank --max-version` (offering them
    /// again). Without it, a pull-back in force is kept.
    pub reinstate_yanked: bool,
    /// Wave policy file; None leaves the new entry without waves (everyone at once).
    pub wave_policy: Option<PathBuf>,
    /// When the rollout starts (waves count from here).
    pub release_start: Timestamp,
    /// Expiration policy.
    pub expiration: ExpirationPolicy,
    /// Expired-repository policy.
    pub expired: Expiry,
    /// How image files are put into a local store.
    pub target_mode: TargetMode,
    /// Persistent TUF datastore for the load (rollback protection across runs).
    pub datastore: Option<PathBuf>,
    /// The current time.
    pub now: Timestamp,
}

/// One target of the release.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetSummary {
    /// Target name.
    pub name: String,
    /// Bytes.
    pub length: u64,
    /// sha256 hex.
    pub sha256: String,
}

/// What `pubsys repo` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PublishOutcome {
    /// Variant.
    pub variant: String,
    /// Arch.
    pub arch: String,
    /// Version.
    pub version: String,
    /// True if a new repository was created.
    pub new_repository: bool,
    /// Targets of this release (images, extras, manifest).
    pub targets: Vec<TargetSummary>,
    /// Number of wave entries set on the new update.
    pub waves: usize,
    /// Empty migration edges added to keep the chain unbroken (no Release.toml given).
    pub migrations_added: Vec<String>,
    /// max_version of this variant/arch after the release.
    pub max_version: String,
    /// Releases pulled back with `yank --max-version` that stay withheld (max_version was not
    /// raised past them; `--reinstate-yanked` would).
    pub kept_pulled_back: Vec<String>,
    /// What was written.
    pub committed: Committed,
    /// Where.
    pub store: String,
}

impl PublishOutcome {
    /// Whether the new release itself is above max_version (held back by a pull-back in force).
    pub fn version_withheld(&self) -> bool {
        match (
            self.version.parse::<Version>(),
            self.max_version.parse::<Version>(),
        ) {
            (Ok(v), Ok(max)) => v > max,
            _ => false,
        }
    }
}

/// Makes the migration chain through `version` unbroken by adding empty migration lists
/// (`"(a, b)": []`) between it and its neighbouring versions where no path exists. Used when a
/// release declares no migrations (no Release.toml). Returns the edges added.
pub fn fill_migration_gaps(manifest: &mut Manifest, version: &Version) -> Vec<(Version, Version)> {
    let mut versions: std::collections::BTreeSet<Version> =
        manifest.updates.iter().map(|u| u.version.clone()).collect();
    for (from, to, _) in manifest.migrations.iter() {
        versions.insert(from.clone());
        versions.insert(to.clone());
    }
    versions.insert(version.clone());
    let below = versions.range(..version.clone()).next_back().cloned();
    let above = versions
        .range((
            std::ops::Bound::Excluded(version.clone()),
            std::ops::Bound::Unbounded,
        ))
        .next()
        .cloned();
    let mut added = Vec::new();
    for (a, b) in [
        (below, Some(version.clone())),
        (Some(version.clone()), above),
    ] {
        if let (Some(a), Some(b)) = (a, b)
            && manifest.migrations.path(&a, &b).is_err()
        {
            manifest.migrations.insert(a.clone(), b.clone(), Vec::new());
            added.push((a, b));
        }
    }
    added
}

/// Reads the manifest of a repository loaded from `source` (at most
/// [`abos_repo_core::MAX_MANIFEST_SIZE`]).
pub async fn read_manifest(repo: &tough::Repository, source: &RepoSource) -> Result<Manifest> {
    Ok(abos_repo_core::read_manifest(repo, source).await?.0)
}

/// Hashes a file (sha256) in one streaming pass, reporting bytes as it goes.
pub fn hash_file(path: &Path, reporter: &dyn Reporter) -> Result<(u64, Vec<u8>)> {
    let mut file = std::fs::File::open(path).context(error::ReadInputSnafu { path })?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .context(error::ReadInputSnafu { path })?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        total += n as u64;
        reporter.advance(n as u64);
    }
    Ok((total, ctx.finish().as_ref().to_vec()))
}

/// The target name for a file: its file name.
pub fn file_target_name(path: &Path) -> Result<String> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .context(error::NoFileNameSnafu { path })?;
    tough::TargetName::new(name).context(error::TargetNameSnafu { name })?;
    Ok(name.to_string())
}

fn md_target_name(name: &str) -> Result<update_metadata::TargetName> {
    name.parse::<update_metadata::TargetName>()
        .context(error::ManifestInvalidSnafu)
}

/// Hashes files in parallel (blocking threads), in input order.
pub async fn hash_files(
    paths: &[PathBuf],
    reporter: &std::sync::Arc<dyn Reporter>,
) -> Result<Vec<(u64, Vec<u8>)>> {
    let mut total = 0;
    for p in paths {
        total += std::fs::metadata(p)
            .context(error::ReadInputSnafu { path: p })?
            .len();
    }
    reporter.start(paths.len(), total);
    let handles: Vec<_> = paths
        .iter()
        .map(|p| {
            let p = p.clone();
            let r = reporter.clone();
            tokio::task::spawn_blocking(move || {
                let out = hash_file(&p, r.as_ref());
                r.item_done(&p.display().to_string(), out.is_ok());
                out
            })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.context(error::JoinSnafu)??);
    }
    reporter.finish();
    Ok(out)
}

/// Publishes a release into `store` (see the module docs for the order of work).
pub async fn publish(
    req: &PublishRequest,
    store: &dyn RepoStore,
    reporter: std::sync::Arc<dyn Reporter>,
) -> Result<PublishOutcome> {
    let inputs = &req.inputs;
    let keys = SigningKeys::load(&req.keys).await?;
    let (root_bytes, trusted_root) = repo::read_root(&req.trusted_root)?;
    repo::require_consistent_snapshots(&trusted_root.signed, &req.trusted_root)?;
    let source = match &req.source {
        Some(s) => s.clone(),
        None => repo::source_of_store(store)?,
    };
    let origin = source.metadata_url.to_string();

    // Held from load to the timestamp write: the read-modify-write is one step.
    let _lock = store.lock()?;
    reporter.phase(Phase::LoadingRepository);
    let opts = LoadOptions {
        expiry: req.expired,
        datastore: req.datastore.clone(),
        ..Default::default()
    };
    let existing = repo::load(&root_bytes, &source, &opts).await?;
    if existing.is_none() && store.has_metadata("timestamp.json")? {
        return error::RepoLocationMismatchSnafu {
            path: PathBuf::from(store.describe()),
            metadata_url: origin,
        }
        .fail();
    }
    let root = existing
        .as_ref()
        .map_or(&trusted_root.signed, |r| &r.root().signed);
    repo::require_consistent_snapshots(root, &req.trusted_root)?;
    keys.check_against(root, &SIGNED_ROLES)?;

    let mut manifest = match &existing {
        Some(r) => read_manifest(r, &source).await?,
        None => Manifest::new(),
    };
    let already = manifest.updates.iter().any(|u| {
        u.variant == inputs.variant && u.arch == inputs.arch && u.version == inputs.version
    });
    ensure!(
        !already,
        error::ReleaseExistsSnafu {
            variant: inputs.variant.to_string(),
            arch: inputs.arch.to_string(),
            version: inputs.version.to_string(),
        }
    );

    // Hash everything we publish (images first, then extras).
    reporter.phase(Phase::HashingTargets);
    let mut files = vec![
        inputs.images.boot.clone(),
        inputs.images.root.clone(),
        inputs.images.hash.clone(),
    ];
    files.extend(req.extra_targets.iter().cloned());
    let linked_from = files.len();
    files.extend(req.link_targets.iter().cloned());
    let names = files
        .iter()
        .map(|p| file_target_name(p))
        .collect::<Result<Vec<_>>>()?;
    let hashes = hash_files(&files, &reporter).await?;
    if let Some(expected) = &inputs.expected {
        for ((path, (len, sha)), exp) in files.iter().zip(&hashes).zip(expected.iter()) {
            ensure!(
                *len == exp.size,
                error::InputMismatchSnafu {
                    path,
                    what: format!("size {len}, description says {}", exp.size),
                }
            );
            let sha = hex::encode(sha);
            ensure!(
                sha == exp.sha256,
                error::InputMismatchSnafu {
                    path,
                    what: format!("sha256 {sha}, description says {}", exp.sha256),
                }
            );
        }
    }
    let mut pending: Vec<PendingTarget> = files
        .iter()
        .zip(names.iter())
        .zip(hashes)
        .enumerate()
        .map(|(i, ((path, name), (len, sha)))| PendingTarget {
            name: name.clone(),
            target: repo::make_target(len, sha),
            content: if i >= linked_from {
                TargetContent::LinkedFile(path.clone())
            } else {
                TargetContent::File(path.clone())
            },
        })
        .collect();
    {
        let mut seen = std::collections::BTreeSet::new();
        for p in &pending {
            ensure!(
                seen.insert(p.name.as_str()),
                error::DuplicateTargetSnafu { name: &p.name }
            );
        }
    }
    if let Some(r) = &existing {
        for p in &pending {
            if let Some(t) = repo::existing_target(r, &p.name) {
                let existing_sha = hex::encode(&*t.hashes.sha256);
                ensure!(
                    existing_sha == p.sha256_hex(),
                    error::TargetConflictSnafu {
                        name: &p.name,
                        existing: existing_sha,
                        new: p.sha256_hex(),
                    }
                );
            }
        }
    }

    // Edit and validate the manifest.
    let images = Images::new(
        md_target_name(&names[0])?,
        md_target_name(&names[1])?,
        md_target_name(&names[2])?,
    );
    let (max_version, kept_pulled_back) = if req.reinstate_yanked {
        (None, Vec::new())
    } else {
        sticky_max_version(&manifest, &inputs.variant, inputs.arch, &inputs.version)
    };
    manifest
        .add_update(
            inputs.variant.clone(),
            inputs.arch,
            inputs.version.clone(),
            max_version,
            images,
        )
        .context(error::ManifestInvalidSnafu)?;
    let max_version = manifest
        .updates
        .iter()
        .filter(|u| u.variant == inputs.variant && u.arch == inputs.arch)
        .map(|u| u.max_version.to_string())
        .next()
        .unwrap_or_default();
    let mut migrations_added = Vec::new();
    if let Some(path) = &req.release_file {
        let release = Release::from_path(path).context(error::ReleaseFileSnafu { path })?;
        manifest.set_migrations(&release);
    } else {
        migrations_added = fill_migration_gaps(&mut manifest, &inputs.version)
            .into_iter()
            .map(|(a, b)| format!("({a}, {b})"))
            .collect();
    }
    let mut waves = 0;
    if let Some(path) = &req.wave_policy {
        let policy = waves::WavePolicy::from_path(path).context(error::WavePolicySnafu { path })?;
        manifest
            .set_waves(
                &inputs.variant,
                inputs.arch,
                &inputs.version,
                &policy,
                req.release_start,
            )
            .context(error::ManifestInvalidSnafu)?;
        waves = policy.waves.len();
    }
    manifest.validate().context(error::ManifestInvalidSnafu)?;
    let manifest_bytes = manifest.to_vec_pretty();
    pending.push(PendingTarget {
        name: MANIFEST_TARGET.to_string(),
        target: repo::make_target(manifest_bytes.len() as u64, repo::sha256(&manifest_bytes)),
        content: TargetContent::Bytes(manifest_bytes),
    });

    // Sign and write.
    let version = repo::next_version(existing.as_ref(), req.now);
    let new_repository = existing.is_none();
    let mut edit = Edit::start(&req.trusted_root, existing).await?;
    for p in &pending {
        edit.change
            .editor
            .add_target(p.name.as_str(), p.target.clone())
            .context(error::EditorSnafu)?;
    }
    edit.set_versions(version, &req.expiration.expirations(req.now)?)?;
    let committed = repo::sign_and_commit(
        edit,
        &keys,
        store,
        &pending,
        req.target_mode,
        reporter.as_ref(),
    )
    .await?;

    Ok(PublishOutcome {
        variant: inputs.variant.to_string(),
        arch: inputs.arch.to_string(),
        version: inputs.version.to_string(),
        new_repository,
        targets: pending
            .iter()
            .map(|p| TargetSummary {
                name: p.name.clone(),
                length: p.target.length,
                sha256: p.sha256_hex(),
            })
            .collect(),
        waves,
        migrations_added,
        max_version,
        kept_pulled_back: kept_pulled_back.iter().map(ToString::to_string).collect(),
        committed,
        store: store.describe(),
    })
}

/// Keeps a pull-back in force. Releases of this variant/arch listed above their max_version
/// were withheld with `yank --max-version`; Bottlerocket's rule (max_version = the newest
/// release) would offer them again. Returns the max_version to use (None: nothing is pulled
/// back, Bottlerocket's rule applies) and the withheld releases, which stay withheld.
pub fn sticky_max_version(
    manifest: &Manifest,
    variant: &Variant,
    arch: Arch,
    version: &Version,
) -> (Option<Version>, Vec<Version>) {
    let entries: Vec<_> = manifest
        .updates
        .iter()
        .filter(|u| &u.variant == variant && u.arch == arch)
        .collect();
    let mut withheld: Vec<Version> = entries
        .iter()
        .filter(|u| u.version > u.max_version)
        .map(|u| u.version.clone())
        .collect();
    withheld.sort();
    let (Some(lowest_withheld), Some(bound)) = (
        withheld.first(),
        entries.iter().map(|u| &u.max_version).max(),
    ) else {
        return (None, Vec::new());
    };
    // Raising the bound to the new release is fine while it stays below every withheld one
    // (a hotfix below the yanked release); the withheld releases stay withheld either way.
    let raised = std::cmp::max(version, bound);
    if raised < lowest_withheld {
        (Some(raised.clone()), withheld)
    } else {
        (Some(bound.clone()), withheld)
    }
}

/// Re-signs `manifest` into the repository loaded from `source` with new versions/expirations:
/// the shared tail of `yank` (and any other manifest-only change).
#[allow(clippy::too_many_arguments)] // one call site; a struct would only rename the arguments
pub(crate) async fn publish_manifest_change(
    trusted_root: &Path,
    keys: &SigningKeys,
    repo: tough::Repository,
    manifest: &Manifest,
    expiration: &ExpirationPolicy,
    now: Timestamp,
    store: &dyn RepoStore,
    reporter: &dyn Reporter,
) -> Result<Committed> {
    manifest.validate().context(error::ManifestInvalidSnafu)?;
    let bytes = manifest.to_vec_pretty();
    let pending = PendingTarget {
        name: MANIFEST_TARGET.to_string(),
        target: repo::make_target(bytes.len() as u64, repo::sha256(&bytes)),
        content: TargetContent::Bytes(bytes),
    };
    let version = repo::next_version(Some(&repo), now);
    let mut edit = Edit::start(trusted_root, Some(repo)).await?;
    edit.change
        .editor
        .add_target(MANIFEST_TARGET, pending.target.clone())
        .context(error::EditorSnafu)?;
    edit.set_versions(version, &expiration.expirations(now)?)?;
    repo::sign_and_commit(
        edit,
        keys,
        store,
        std::slice::from_ref(&pending),
        TargetMode::Copy,
        reporter,
    )
    .await
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn migration_gaps_are_filled_on_both_sides() {
        let mut m = Manifest::new();
        let v = |s: &str| s.parse::<Version>().unwrap();
        m.migrations.insert(v("1.0.0"), v("1.2.0"), vec![]);
        // 1.1.0 lands between 1.0.0 and 1.2.0: (1.0.0, 1.1.0) and (1.1.0, 1.2.0) are needed.
        let added = fill_migration_gaps(&mut m, &v("1.1.0"));
        assert_eq!(added, [(v("1.0.0"), v("1.1.0")), (v("1.1.0"), v("1.2.0"))]);
        m.migrations.path(&v("1.0.0"), &v("1.2.0")).unwrap();
        m.migrations.path(&v("1.1.0"), &v("1.2.0")).unwrap();
        // Nothing to add the second time, nor for a version already on a path.
        assert!(fill_migration_gaps(&mut m, &v("1.1.0")).is_empty());
        // The first version ever has no neighbours.
        assert!(fill_migration_gaps(&mut Manifest::new(), &v("1.0.0")).is_empty());
    }

    #[test]
    fn hashing_matches_a_known_vector() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("abc");
        std::fs::write(&p, b"abc").unwrap();
        let (len, sha) = hash_file(&p, &crate::NoReporter).unwrap();
        assert_eq!(len, 3);
        assert_eq!(
            hex::encode(sha),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(file_target_name(Path::new("/x/..")).is_err());
    }
}
