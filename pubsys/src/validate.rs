//! `validate-repo`: load a repository with the trusted root, then download and verify every
//! target (length and sha256, by tough) with bounded concurrency, and check that every image and
//! migration the manifest names is a listed target.

use crate::error::{Result, chain_string};
use crate::release::{MANIFEST_TARGET, read_manifest};
use crate::repo::{self, LoadOptions, RepoSource};
use crate::{Phase, Reporter};
use futures::{StreamExt, TryStreamExt};
use tough::TargetName;

/// Downloads in flight at once (Bottlerocket's figure).
pub const CONCURRENCY: usize = 16;

/// One target that failed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TargetFailure {
    /// Target name.
    pub name: String,
    /// Why.
    pub error: String,
}

/// The result of validating a repository.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ValidateReport {
    /// Metadata URL.
    pub metadata_url: String,
    /// Targets checked.
    pub targets: usize,
    /// Bytes downloaded and verified.
    pub bytes: u64,
    /// Number of failures.
    pub failed: usize,
    /// The failures, sorted by name.
    pub failures: Vec<TargetFailure>,
    /// Number of updates in manifest.json (None if the repository has no manifest).
    pub manifest_updates: Option<usize>,
}

impl ValidateReport {
    /// True when every target verified.
    pub fn ok(&self) -> bool {
        self.failed == 0
    }
}

/// Validates the repository at `source`.
pub async fn validate(
    root: &[u8],
    source: &RepoSource,
    opts: &LoadOptions,
    reporter: &dyn Reporter,
) -> Result<ValidateReport> {
    reporter.phase(Phase::LoadingRepository);
    let repo = repo::load_existing(root, source, opts).await?;
    let metadata_url = source.metadata_url.to_string();

    let mut names: Vec<(TargetName, u64)> = repo
        .all_targets()
        .map(|(n, t)| (n.clone(), t.length))
        .collect();
    names.sort_by(|a, b| a.0.raw().cmp(b.0.raw()));
    let total_bytes = names.iter().map(|(_, l)| l).sum();
    reporter.phase(Phase::VerifyingTargets);
    reporter.start(names.len(), total_bytes);

    let repo_ref = &repo;
    let results: Vec<(String, std::result::Result<u64, String>)> =
        futures::stream::iter(names.iter())
            .map(|(name, _)| async move {
                let outcome = async {
                    let stream = repo_ref
                        .read_target(name)
                        .await
                        .map_err(|e| chain_string(&e))?
                        .ok_or_else(|| "listed in targets.json but not readable".to_string())?;
                    let mut got = 0u64;
                    let mut stream = Box::pin(stream);
                    while let Some(chunk) = stream.try_next().await.map_err(|e| chain_string(&e))? {
                        got += chunk.len() as u64;
                        reporter.advance(chunk.len() as u64);
                    }
                    Ok(got)
                }
                .await;
                reporter.item_done(name.raw(), outcome.is_ok());
                (name.raw().to_string(), outcome)
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
    reporter.finish();

    let mut bytes = 0;
    let mut failures = Vec::new();
    for (name, r) in results {
        match r {
            Ok(n) => bytes += n,
            Err(error) => failures.push(TargetFailure { name, error }),
        }
    }

    // The manifest must name only listed targets.
    let listed = |n: &str| names.iter().any(|(t, _)| t.raw() == n);
    let mut manifest_updates = None;
    if listed(MANIFEST_TARGET) && !failures.iter().any(|f| f.name == MANIFEST_TARGET) {
        match read_manifest(&repo, source).await {
            Ok(m) => {
                manifest_updates = Some(m.updates.len());
                for u in &m.updates {
                    for image in [&u.images.boot, &u.images.root, &u.images.hash] {
                        let image = image.to_string();
                        if !listed(&image) {
                            failures.push(TargetFailure {
                                error: format!(
                                    "manifest.json names it for {} {} {}, but targets.json does not list it",
                                    u.variant, u.arch, u.version
                                ),
                                name: image,
                            });
                        }
                    }
                }
                for (from, to, names) in m.migrations.iter() {
                    for name in names {
                        let name = name.to_string();
                        if !listed(&name) {
                            failures.push(TargetFailure {
                                error: format!(
                                    "manifest.json names it as a migration from {from} to {to}, but targets.json does not list it"
                                ),
                                name,
                            });
                        }
                    }
                }
            }
            Err(e) => failures.push(TargetFailure {
                name: MANIFEST_TARGET.into(),
                error: chain_string(&e),
            }),
        }
    }
    failures.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(ValidateReport {
        metadata_url,
        targets: names.len(),
        bytes,
        failed: failures.len(),
        failures,
        manifest_updates,
    })
}
