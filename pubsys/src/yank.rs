//! `yank`: pull a bad release back, signed like any release.
//!
//! Two ways, both through manifest.json:
//! - lower `max_version` for a variant/arch: entries above it are no longer offered, and hosts
//!   running above it move down to the newest version at or below it (the selection rule's
//!   pull-back clause);
//! - remove the release's entry; `max_version` then drops to the newest remaining version when it
//!   pointed at or above the removed one, so hosts already on the removed release move down too.
//!
//! Target files stay in the repository (hosts mid-download keep working; nothing dangles).

use crate::error::{self, Result};
use crate::keys::{KeySpec, SigningKeys};
use crate::policy::ExpirationPolicy;
use crate::release::{publish_manifest_change, read_manifest};
use crate::repo::{self, Committed, Expiry, LoadOptions, RepoSource};
use crate::store::RepoStore;
use crate::{Phase, Reporter};
use jiff::Timestamp;
use snafu::ensure;
use std::path::PathBuf;
use update_metadata::{Arch, Manifest, Variant, Version};

/// How to yank.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YankAction {
    /// Lower max_version to this version.
    LowerMaxVersion(Version),
    /// Remove the entry for this version.
    Remove(Version),
}

/// A yank request.
#[derive(Debug, Clone)]
pub struct YankRequest {
    /// The trusted root.
    pub trusted_root: PathBuf,
    /// Signing keys.
    pub keys: Vec<KeySpec>,
    /// Where the repository is read from; None: from the store.
    pub source: Option<RepoSource>,
    /// Variant.
    pub variant: Variant,
    /// Arch.
    pub arch: Arch,
    /// What to do.
    pub action: YankAction,
    /// Expiration policy for the re-signed metadata.
    pub expiration: ExpirationPolicy,
    /// Expired-repository policy.
    pub expired: Expiry,
    /// Persistent TUF datastore.
    pub datastore: Option<PathBuf>,
    /// The current time.
    pub now: Timestamp,
}

/// What was done.
#[derive(Debug, Clone, serde::Serialize)]
pub struct YankOutcome {
    /// Variant.
    pub variant: String,
    /// Arch.
    pub arch: String,
    /// max_version for the variant/arch after the yank (None if no entries remain).
    pub max_version: Option<String>,
    /// Versions whose entries were removed.
    pub removed: Vec<String>,
    /// Versions still listed but no longer offered (above max_version).
    pub withheld: Vec<String>,
    /// What was written.
    pub committed: Committed,
}

/// Applies the yank to a manifest (pure). Returns (max_version after, removed versions).
pub fn apply(
    manifest: &mut Manifest,
    variant: &Variant,
    arch: Arch,
    action: &YankAction,
) -> Result<(Option<Version>, Vec<Version>)> {
    let versions = |m: &Manifest| -> Vec<Version> {
        let mut v: Vec<Version> = m
            .updates
            .iter()
            .filter(|u| &u.variant == variant && u.arch == arch)
            .map(|u| u.version.clone())
            .collect();
        v.sort();
        v
    };
    let current_max = manifest
        .updates
        .iter()
        .filter(|u| &u.variant == variant && u.arch == arch)
        .map(|u| u.max_version.clone())
        .max();
    match action {
        YankAction::LowerMaxVersion(max) => {
            let Some(current) = current_max else {
                return error::NothingToYankSnafu {
                    reason: format!("the manifest has no updates for {variant} {arch}"),
                }
                .fail();
            };
            ensure!(
                *max != current,
                error::NothingToYankSnafu {
                    reason: format!("max_version for {variant} {arch} is already {current}"),
                }
            );
            ensure!(
                *max < current,
                error::NothingToYankSnafu {
                    reason: format!(
                        "--max-version {max} is above the current max_version {current} of \
                         {variant} {arch}; yank only lowers it"
                    ),
                }
            );
            ensure!(
                versions(manifest).iter().any(|v| v <= max),
                error::NothingToYankSnafu {
                    reason: format!(
                        "no release of {variant} {arch} at or below {max} for hosts to move to"
                    ),
                }
            );
            manifest.set_max_version(max, Some(arch), Some(variant));
            Ok((Some(max.clone()), Vec::new()))
        }
        YankAction::Remove(version) => {
            let removed = manifest.remove_update(variant, arch, version);
            ensure!(
                removed > 0,
                error::UpdateNotFoundSnafu {
                    variant: variant.to_string(),
                    arch: arch.to_string(),
                    version: version.to_string(),
                }
            );
            let remaining = versions(manifest);
            let newest = remaining.last().cloned();
            if let (Some(newest), Some(current)) = (&newest, &current_max)
                && current >= version
            {
                manifest.set_max_version(newest, Some(arch), Some(variant));
            }
            Ok((newest, vec![version.clone()]))
        }
    }
}

/// Loads the repository, yanks, re-signs and writes.
pub async fn yank(
    req: &YankRequest,
    store: &dyn RepoStore,
    reporter: &dyn Reporter,
) -> Result<YankOutcome> {
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
    keys.check_against(&existing.root().signed, &crate::keys::SIGNED_ROLES)?;
    let mut manifest = read_manifest(&existing, &source).await?;
    let (max_version, removed) = apply(&mut manifest, &req.variant, req.arch, &req.action)?;
    let withheld = manifest
        .updates
        .iter()
        .filter(|u| u.variant == req.variant && u.arch == req.arch && u.version > u.max_version)
        .map(|u| u.version.to_string())
        .collect();
    let committed = publish_manifest_change(
        &req.trusted_root,
        &keys,
        existing,
        &manifest,
        &req.expiration,
        req.now,
        store,
        reporter,
    )
    .await?;
    Ok(YankOutcome {
        variant: req.variant.to_string(),
        arch: req.arch.to_string(),
        max_version: max_version.map(|v| v.to_string()),
        removed: removed.iter().map(ToString::to_string).collect(),
        withheld,
        committed,
    })
}

#[cfg(test)]
mod test {
    use super::*;
    use update_metadata::Images;

    fn manifest(versions: &[&str]) -> Manifest {
        let mut m = Manifest::new();
        for v in versions {
            let name = |p: &str| format!("{p}-{v}.lz4").parse().unwrap();
            m.add_update(
                "aws-dev".parse().unwrap(),
                Arch::X86_64,
                v.parse().unwrap(),
                None,
                Images::new(name("boot"), name("root"), name("hash")),
            )
            .unwrap();
            crate::release::fill_migration_gaps(&mut m, &v.parse().unwrap());
        }
        m
    }

    fn max_versions(m: &Manifest) -> Vec<String> {
        m.updates
            .iter()
            .map(|u| u.max_version.to_string())
            .collect()
    }

    #[test]
    fn lowering_max_version_withholds_newer_releases() {
        let mut m = manifest(&["1.0.0", "1.1.0", "1.2.0"]);
        let v = "aws-dev".parse().unwrap();
        let (max, removed) = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::LowerMaxVersion(Version::new(1, 1, 0)),
        )
        .unwrap();
        assert_eq!(max, Some(Version::new(1, 1, 0)));
        assert!(removed.is_empty());
        assert_eq!(max_versions(&m), ["1.1.0", "1.1.0", "1.1.0"]);
        m.validate().unwrap();
        // Not lower than the current max: nothing to do.
        let err = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::LowerMaxVersion(Version::new(1, 1, 0)),
        )
        .unwrap_err();
        assert!(matches!(err, crate::Error::NothingToYank { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 2);
        // Higher than the current max: named as such, with the way to raise it.
        let err = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::LowerMaxVersion(Version::new(1, 2, 0)),
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("--max-version 1.2.0 is above the current max_version 1.1.0"),
            "{err}"
        );
        assert!(
            err.hint().unwrap().contains("--reinstate-yanked"),
            "{err:?}"
        );
        // Below every release: hosts would have nowhere to go.
        let err = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::LowerMaxVersion(Version::new(0, 9, 0)),
        )
        .unwrap_err();
        assert!(err.to_string().contains("at or below 0.9.0"), "{err}");
        // Another arch has no entries.
        let err = apply(
            &mut m,
            &v,
            Arch::Aarch64,
            &YankAction::LowerMaxVersion(Version::new(1, 0, 0)),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("no updates for aws-dev aarch64"),
            "{err}"
        );
    }

    #[test]
    fn removing_the_newest_release_lowers_max_version() {
        let mut m = manifest(&["1.0.0", "1.1.0", "1.2.0"]);
        let v = "aws-dev".parse().unwrap();
        let (max, removed) = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::Remove(Version::new(1, 2, 0)),
        )
        .unwrap();
        assert_eq!(max, Some(Version::new(1, 1, 0)));
        assert_eq!(removed, [Version::new(1, 2, 0)]);
        assert_eq!(max_versions(&m), ["1.1.0", "1.1.0"]);
        m.validate().unwrap();
        // Removing a middle release keeps max_version.
        let (max, _) = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::Remove(Version::new(1, 0, 0)),
        )
        .unwrap();
        assert_eq!(max, Some(Version::new(1, 1, 0)));
        assert_eq!(max_versions(&m), ["1.1.0"]);
        // Unknown version.
        let err = apply(
            &mut m,
            &v,
            Arch::X86_64,
            &YankAction::Remove(Version::new(9, 0, 0)),
        )
        .unwrap_err();
        assert!(
            matches!(err, crate::Error::UpdateNotFound { .. }),
            "{err:?}"
        );
    }
}
