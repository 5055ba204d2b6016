//! `repo-tools download`: fetch targets, verified through TUF, under their plain names into a
//! new directory (what `tuftool download` does), for a person who wants the files themselves
//! rather than a mirror to serve.
//!
//! The directory is filled under a temporary name beside it and renamed into place only when
//! every target has verified: a failure leaves nothing behind, and an existing directory is
//! never written into.

use crate::error::{self, Result};
use crate::reporter::{Event, Reporter};
use crate::source::{self, Expiry};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use snafu::{OptionExt, ResultExt, ensure};
use std::io::Write;
use std::path::{Path, PathBuf};
use tough::{TargetName, Transport};
use url::Url;

/// What to download and where.
#[derive(Debug)]
pub struct DownloadOptions {
    /// Trusted root file.
    pub root: PathBuf,
    /// Metadata base URL.
    pub metadata_url: Url,
    /// Targets base URL.
    pub targets_url: Url,
    /// The directory to create.
    pub out: PathBuf,
    /// Only these targets (all of them when empty).
    pub targets: Vec<String>,
    /// Whether expired metadata is refused.
    pub expiration: Expiry,
    /// Parallel downloads.
    pub jobs: usize,
    /// The transport.
    pub transport: Box<dyn Transport>,
}

/// One downloaded target.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadedTarget {
    /// Target name (also its path under the output directory).
    pub name: String,
    /// Bytes.
    pub length: u64,
}

/// What `download` did.
#[derive(Debug, Clone, Serialize)]
pub struct DownloadReport {
    /// Source metadata URL.
    pub metadata_url: String,
    /// The directory written.
    pub out: PathBuf,
    /// Root version the repository was verified with.
    pub root_version: u64,
    /// Targets written, by name.
    pub targets: Vec<DownloadedTarget>,
    /// Total bytes.
    pub bytes: u64,
}

/// Loads the repository with the trusted root and writes the chosen targets into `opts.out`.
pub async fn download(opts: DownloadOptions, reporter: &dyn Reporter) -> Result<DownloadReport> {
    ensure!(
        std::fs::symlink_metadata(&opts.out).is_err(),
        error::OutputExistsSnafu { path: &opts.out }
    );
    let trusted = abos_repo_core::TrustedRoot::read(&opts.root)?;
    let loaded = source::load(
        &trusted,
        opts.metadata_url.clone(),
        opts.targets_url.clone(),
        opts.expiration,
        opts.transport,
    )
    .await?;
    let repo = &loaded.repo;
    let listed = &repo.targets().signed.targets;
    reporter.report(&Event::RepositoryLoaded {
        metadata_url: loaded.metadata_url.as_str(),
        root_version: repo.root().signed.version.get(),
        targets: listed.len(),
    });

    // Plan: every name checked before anything is fetched.
    let mut plan: Vec<(TargetName, u64)> = Vec::new();
    if opts.targets.is_empty() {
        for (name, target) in listed {
            plan.push((name.clone(), target.length));
        }
    } else {
        for name in &opts.targets {
            let tname = TargetName::new(name.as_str())
                .map_err(Box::new)
                .context(error::TargetNameSnafu { name })?;
            let target = listed
                .get(&tname)
                .context(error::SelectedTargetMissingSnafu { name })?;
            if !plan.iter().any(|(n, _)| n == &tname) {
                plan.push((tname, target.length));
            }
        }
    }
    for (name, _) in &plan {
        crate::layout::ensure_relative(name.raw())?;
    }
    reporter.report(&Event::TargetsPlanned {
        count: plan.len(),
        bytes: plan.iter().map(|(_, l)| l).sum(),
    });

    let parent = opts
        .out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    std::fs::create_dir_all(&parent).context(error::CreateDirSnafu { path: &parent })?;
    let staging = tempfile::Builder::new()
        .prefix(".repo-tools-download-")
        .permissions(crate::fsio::readable_dir())
        .tempdir_in(&parent)
        .context(error::CreateDirSnafu { path: &parent })?;
    let written: Vec<DownloadedTarget> = futures::stream::iter(plan.iter())
        .map(|(name, length)| fetch_one(repo, name, *length, staging.path(), reporter))
        .buffer_unordered(opts.jobs.max(1))
        .try_collect()
        .await?;
    let mut written = written;
    written.sort_by(|a, b| a.name.cmp(&b.name));
    crate::fsio::sync_dir(staging.path())?;
    let staged = staging.keep();
    if let Err(source) = std::fs::rename(&staged, &opts.out) {
        let _ = std::fs::remove_dir_all(&staged);
        return Err(error::Error::Rename {
            from: staged,
            to: opts.out.clone(),
            source,
        });
    }
    crate::fsio::sync_dir(&parent)?;
    Ok(DownloadReport {
        metadata_url: loaded.metadata_url.to_string(),
        out: opts.out,
        root_version: repo.root().signed.version.get(),
        bytes: written.iter().map(|t| t.length).sum(),
        targets: written,
    })
}

/// Streams one target through tough (length and sha256 checked) into `dir/<name>`.
async fn fetch_one(
    repo: &tough::Repository,
    name: &TargetName,
    length: u64,
    dir: &Path,
    reporter: &dyn Reporter,
) -> Result<DownloadedTarget> {
    let path = dir.join(name.raw());
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).context(error::CreateDirSnafu { path: parent })?;
    }
    let read_err = |source| error::Error::ReadTarget {
        name: name.raw().to_owned(),
        source: Box::new(source),
    };
    let mut stream = repo
        .read_target(name)
        .await
        .map_err(read_err)?
        .context(error::SelectedTargetMissingSnafu { name: name.raw() })?;
    let mut file = abos_fsio::create_new(&path, crate::fsio::READABLE)
        .context(error::DurableSnafu { path: &path })?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_err)?;
        file.write_all(&chunk)
            .context(error::WriteFileSnafu { path: &path })?;
    }
    file.sync_all()
        .context(error::WriteFileSnafu { path: &path })?;
    reporter.report(&Event::TargetFetched {
        name: name.raw(),
        bytes: length,
    });
    Ok(DownloadedTarget {
        name: name.raw().to_owned(),
        length,
    })
}
