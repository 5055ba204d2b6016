//! `repo-tools mirror`: copy a repository (or one variant/arch/version of it) into a directory
//! that updog can read over `file://` or any static HTTP server. See [`crate::layout`].
//!
//! Order of work, so that a directory being served while it is refreshed never names a file it
//! does not have: load and verify everything through tough; copy targets (each verified by
//! tough's length and sha256 check while streaming, then fsynced and renamed into place); write
//! the root chain, targets, snapshot and finally `timestamp.json`; then record the run in
//! `mirror.json`, remove superseded snapshot/targets metadata and target files that no
//! repository of the mirror lists any more.
//!
//! A target whose transfer fails (connection cut, server error) is fetched again from the start,
//! up to `attempts` times; a target whose bytes do not match the signed hash is never retried.
//!
//! Incremental: a target file already present under its served name is re-hashed; if it matches
//! the signed length and sha256 it is reused, otherwise it is fetched again.

use crate::error::{self, Result};
use crate::filter::{self, Filter, MANIFEST_TARGET};
use crate::layout::{self, MetadataSubdir, MirrorRecord, RepositoryRecord, TARGETS_DIR};
use crate::reporter::{Event, Reporter};
use crate::source::{self, Expiry, LoadedRepo};
use abos_repo_core::RetryPolicy;
use aws_lc_rs::digest::{Context, SHA256};
use futures::{StreamExt, TryStreamExt};
use serde::Serialize;
use snafu::{OptionExt, ResultExt, ensure};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tough::schema::{Signed, Target, Timestamp};
use tough::{TargetName, Transport};
use url::Url;

/// What to mirror and where.
#[derive(Debug)]
pub struct MirrorOptions {
    /// Source metadata base URL (`http(s)://` or `file://`).
    pub metadata_url: Url,
    /// Source targets base URL.
    pub targets_url: Url,
    /// Trusted root file.
    pub root: PathBuf,
    /// Mirror directory.
    pub out: PathBuf,
    /// Metadata subdirectory inside the mirror.
    pub metadata_subdir: MetadataSubdir,
    /// Only part of the repository.
    pub filter: Option<Filter>,
    /// Whether expired metadata is refused.
    pub expiration: Expiry,
    /// Parallel downloads.
    pub jobs: usize,
    /// Tries per target on transport failures (`--attempts`; content mismatches are never
    /// retried).
    pub retry: RetryPolicy,
    /// Metadata only: no target is copied (those already in the mirror stay).
    pub metadata_only: bool,
    /// The transport (tough's `DefaultTransport` in the binary).
    pub transport: Box<dyn Transport>,
    /// "Now", recorded in `mirror.json`.
    pub now: jiff::Timestamp,
}

/// What happened to one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetAction {
    /// Downloaded and verified.
    Fetched,
    /// Already present and verified.
    Reused,
}

/// One target in the report.
#[derive(Debug, Clone, Serialize)]
pub struct MirroredTarget {
    /// TUF target name.
    pub name: String,
    /// File name under `targets/`.
    pub file: String,
    /// Length in bytes.
    pub length: u64,
    /// What was done.
    pub action: TargetAction,
}

/// The outcome of a mirror run.
#[derive(Debug, Clone, Serialize)]
pub struct MirrorReport {
    /// Source metadata URL.
    pub metadata_url: String,
    /// Source targets URL.
    pub targets_url: String,
    /// Where metadata was written.
    pub metadata_dir: PathBuf,
    /// Where targets were written.
    pub targets_dir: PathBuf,
    /// Filter, if any.
    pub filter: Option<String>,
    /// Versions the filter matched.
    pub versions: Vec<String>,
    /// Root version.
    pub root_version: u64,
    /// Timestamp version.
    pub timestamp_version: u64,
    /// Snapshot version.
    pub snapshot_version: u64,
    /// Targets version.
    pub targets_version: u64,
    /// Metadata files written.
    pub metadata_files: usize,
    /// Superseded metadata files removed.
    pub metadata_pruned: usize,
    /// Target files no repository in the mirror lists any more (e.g. a release removed at the
    /// source), removed after the new metadata was in place.
    pub targets_pruned: usize,
    /// Targets downloaded.
    pub fetched: usize,
    /// Targets reused.
    pub reused: usize,
    /// Bytes downloaded.
    pub bytes_fetched: u64,
    /// Bytes reused.
    pub bytes_reused: u64,
    /// Every target.
    pub targets: Vec<MirroredTarget>,
    /// Notes about the selection.
    pub notes: Vec<String>,
}

/// Runs a mirror.
pub async fn mirror(opts: MirrorOptions, reporter: &dyn Reporter) -> Result<MirrorReport> {
    let trusted = abos_repo_core::TrustedRoot::read(&opts.root)?;
    let metadata_dir = opts.metadata_subdir.metadata_dir(&opts.out);
    let targets_dir = opts.out.join(TARGETS_DIR);
    for dir in [&metadata_dir, &targets_dir] {
        std::fs::create_dir_all(dir).context(error::CreateDirSnafu { path: dir })?;
        remove_leftovers(dir)?;
    }

    let loaded = load_source(&opts, &trusted, reporter).await?;
    let repo = &loaded.repo;
    refuse_rollback(&metadata_dir, &loaded)?;

    let Plan {
        items: plan,
        versions,
        notes,
        prefetched,
    } = plan(&loaded, opts.filter.as_ref(), opts.metadata_only).await?;
    reporter.report(&Event::TargetsPlanned {
        count: plan.len(),
        bytes: plan.iter().map(|(_, t, _)| t.length).sum(),
    });

    // Targets first.
    let copier = Copier {
        repo,
        targets_dir: &targets_dir,
        retry: opts.retry,
        reporter,
    };
    let results: Vec<MirroredTarget> = futures::stream::iter(plan.iter())
        .map(|(name, target, file)| {
            let ready = prefetched
                .as_deref()
                .filter(|_| name.raw() == MANIFEST_TARGET);
            copy_target(&copier, name, target, file, ready)
        })
        .buffer_unordered(opts.jobs.max(1))
        .try_collect()
        .await?;
    crate::fsio::sync_dir(&targets_dir)?;
    let mut results = results;
    results.sort_by(|a, b| a.name.cmp(&b.name));

    // Then metadata, timestamp last.
    for (name, bytes) in &loaded.files {
        let path = metadata_dir.join(name);
        if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            crate::fsio::write_atomic(&path, bytes)?;
        }
    }
    let pruned = prune_metadata(&metadata_dir, &loaded)?;

    let report = MirrorReport {
        metadata_url: loaded.metadata_url.to_string(),
        targets_url: loaded.targets_url.to_string(),
        metadata_dir,
        targets_dir,
        filter: opts.filter.as_ref().map(ToString::to_string),
        versions,
        root_version: repo.root().signed.version.get(),
        timestamp_version: repo.timestamp().signed.version.get(),
        snapshot_version: repo.snapshot().signed.version.get(),
        targets_version: repo.targets().signed.version.get(),
        metadata_files: loaded.files.len(),
        metadata_pruned: pruned,
        targets_pruned: 0,
        fetched: results
            .iter()
            .filter(|t| t.action == TargetAction::Fetched)
            .count(),
        reused: results
            .iter()
            .filter(|t| t.action == TargetAction::Reused)
            .count(),
        bytes_fetched: results
            .iter()
            .filter(|t| t.action == TargetAction::Fetched)
            .map(|t| t.length)
            .sum(),
        bytes_reused: results
            .iter()
            .filter(|t| t.action == TargetAction::Reused)
            .map(|t| t.length)
            .sum(),
        targets: results,
        notes,
    };
    let mut record = MirrorRecord::load(&opts.out)?;
    record.upsert(RepositoryRecord {
        metadata_subdir: opts.metadata_subdir.clone(),
        metadata_url: report.metadata_url.clone(),
        targets_url: report.targets_url.clone(),
        filter: report.filter.clone(),
        root_version: report.root_version,
        timestamp_version: report.timestamp_version,
        snapshot_version: report.snapshot_version,
        targets_version: report.targets_version,
        targets: report.targets.iter().map(|t| t.name.clone()).collect(),
        mirrored_at: crate::expiry::whole_seconds(opts.now),
    });
    record.save(&opts.out)?;
    let mut report = report;
    report.targets_pruned = prune_targets(&opts.out)?;
    Ok(report)
}

/// The targets to copy, in the repository's order, with their served file names.
struct Plan {
    items: Vec<(TargetName, Target, String)>,
    versions: Vec<String>,
    notes: Vec<String>,
    /// manifest.json, when a filter needed it (read and verified once, reused as the copy).
    prefetched: Option<Vec<u8>>,
}

async fn plan(loaded: &LoadedRepo, filter: Option<&Filter>, metadata_only: bool) -> Result<Plan> {
    let repo = &loaded.repo;
    // The manifest, when a filter needs it, is read (and verified) once and reused as the copy.
    let mut prefetched: Option<Vec<u8>> = None;
    let (names, versions, notes) = match filter {
        None if metadata_only => (
            Default::default(),
            Vec::new(),
            vec!["metadata only: no target files copied".to_owned()],
        ),
        None => (
            repo.targets()
                .signed
                .targets
                .keys()
                .map(|n| n.raw().to_owned())
                .collect(),
            Vec::new(),
            Vec::new(),
        ),
        Some(f) => {
            // At most abos_repo_core::MAX_MANIFEST_SIZE, length and hash checked by tough.
            let (manifest, bytes) = abos_repo_core::read_manifest(repo, &loaded.source()).await?;
            prefetched = Some(bytes);
            let sel = filter::select(&manifest, f)?;
            (sel.targets, sel.versions, sel.notes)
        }
    };
    let mut plan: Vec<(TargetName, Target, String)> = Vec::new();
    for name in &names {
        let tname = TargetName::new(name.as_str())
            .map_err(Box::new)
            .context(error::TargetNameSnafu { name })?;
        let target = repo
            .targets()
            .signed
            .targets
            .get(&tname)
            .context(error::SelectedTargetMissingSnafu { name })?
            .clone();
        let file = layout::target_file_name(&repo.root().signed, &tname, &target);
        layout::ensure_relative(&file)?;
        plan.push((tname, target, file));
    }
    Ok(Plan {
        items: plan,
        versions,
        notes,
        prefetched,
    })
}

/// Refuses to replace mirrored metadata with older versions (a rolled-back source).
/// Loads the source repository through tough (the trusted root, the source URLs, the expiry
/// rule) and reports it: the one start of both mirror directions (directory and bucket).
async fn load_source(
    opts: &MirrorOptions,
    trusted: &abos_repo_core::TrustedRoot,
    reporter: &dyn Reporter,
) -> Result<LoadedRepo> {
    let loaded = source::load(
        trusted,
        opts.metadata_url.clone(),
        opts.targets_url.clone(),
        opts.expiration,
        opts.transport.clone(),
    )
    .await?;
    reporter.report(&Event::RepositoryLoaded {
        metadata_url: loaded.metadata_url.as_str(),
        root_version: loaded.repo.root().signed.version.get(),
        targets: loaded.repo.targets().signed.targets.len(),
    });
    Ok(loaded)
}

fn refuse_rollback(metadata_dir: &Path, loaded: &LoadedRepo) -> Result<()> {
    let repo = &loaded.repo;
    let path = metadata_dir.join("timestamp.json");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let old: Signed<Timestamp> =
        serde_json::from_slice(&bytes).context(error::ParseMetadataSnafu {
            file: path.display().to_string(),
        })?;
    let new_ts = repo.timestamp().signed.version.get();
    ensure!(
        old.signed.version.get() <= new_ts,
        error::RollbackSnafu {
            role: "timestamp",
            mirrored: old.signed.version.get(),
            source_version: new_ts
        }
    );
    if let Some(old_snap) = old.signed.meta.get("snapshot.json") {
        let new_snap = repo.snapshot().signed.version.get();
        ensure!(
            old_snap.version.get() <= new_snap,
            error::RollbackSnafu {
                role: "snapshot",
                mirrored: old_snap.version.get(),
                source_version: new_snap
            }
        );
    }
    let n = repo.root().signed.version.get();
    ensure!(
        !metadata_dir.join(format!("{}.root.json", n + 1)).exists(),
        error::RollbackSnafu {
            role: "root",
            mirrored: n + 1,
            source_version: n
        }
    );
    Ok(())
}

/// Removes target files that no repository of the mirror lists in its current metadata.
fn prune_targets(mirror: &Path) -> Result<usize> {
    let (_, current) = crate::check::current_files(mirror)?;
    let keep: std::collections::BTreeSet<&str> = current.iter().map(|(p, _)| p.as_str()).collect();
    let targets_dir = mirror.join(TARGETS_DIR);
    let mut pruned = 0;
    for rel in crate::check::walk(&targets_dir)? {
        let full = format!("{TARGETS_DIR}/{rel}");
        if !keep.contains(full.as_str()) {
            let path = targets_dir.join(&rel);
            std::fs::remove_file(&path).context(error::RemoveSnafu { path: &path })?;
            pruned += 1;
        }
    }
    if pruned > 0 {
        crate::fsio::sync_dir(&targets_dir)?;
    }
    Ok(pruned)
}

/// Removes temp files an interrupted earlier run left behind (`.partial-*`, `.tmp-*`).
fn remove_leftovers(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir).context(error::ReadDirSnafu { path: dir })?;
    for entry in entries {
        let entry = entry.context(error::ReadDirSnafu { path: dir })?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if (name.starts_with(".partial-") || name.starts_with(".tmp-"))
            && entry.file_type().is_ok_and(|t| t.is_file())
        {
            std::fs::remove_file(entry.path())
                .context(error::RemoveSnafu { path: entry.path() })?;
        }
    }
    Ok(())
}

/// Removes superseded `V.snapshot.json` / `V.targets.json` files.
fn prune_metadata(metadata_dir: &Path, loaded: &LoadedRepo) -> Result<usize> {
    let keep: Vec<&str> = loaded.names.in_write_order();
    let mut pruned = 0;
    let entries =
        std::fs::read_dir(metadata_dir).context(error::ReadDirSnafu { path: metadata_dir })?;
    for entry in entries {
        let entry = entry.context(error::ReadDirSnafu { path: metadata_dir })?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let superseded = (name.ends_with(".snapshot.json") || name.ends_with(".targets.json"))
            && !keep.contains(&name.as_str());
        if superseded && entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::remove_file(entry.path())
                .context(error::RemoveSnafu { path: entry.path() })?;
            pruned += 1;
        }
    }
    if pruned > 0 {
        crate::fsio::sync_dir(metadata_dir)?;
    }
    Ok(pruned)
}

/// True if `path` holds exactly `target` (length and sha256).
pub(crate) fn file_matches(path: &Path, target: &Target) -> Result<bool> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(error::Error::ReadFile {
                path: path.to_owned(),
                source,
            });
        }
    };
    let len = file
        .metadata()
        .context(error::ReadFileSnafu { path })?
        .len();
    if len != target.length {
        return Ok(false);
    }
    let mut ctx = Context::new(&SHA256);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).context(error::ReadFileSnafu { path })?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
    }
    Ok(ctx.finish().as_ref() == target.hashes.sha256.as_ref())
}

/// What every target copy shares.
struct Copier<'a> {
    repo: &'a tough::Repository,
    targets_dir: &'a Path,
    retry: RetryPolicy,
    reporter: &'a dyn Reporter,
}

async fn copy_target(
    copier: &Copier<'_>,
    name: &TargetName,
    target: &Target,
    file: &str,
    ready: Option<&[u8]>,
) -> Result<MirroredTarget> {
    let Copier {
        repo,
        targets_dir,
        retry,
        reporter,
    } = *copier;
    let path = targets_dir.join(file);
    let done = |action| MirroredTarget {
        name: name.raw().to_owned(),
        file: file.to_owned(),
        length: target.length,
        action,
    };
    if file_matches(&path, target)? {
        reporter.report(&Event::TargetReused {
            name: name.raw(),
            bytes: target.length,
        });
        return Ok(done(TargetAction::Reused));
    }
    let dir = path
        .parent()
        .context(error::NoParentSnafu { path: &path })?;
    std::fs::create_dir_all(dir).context(error::CreateDirSnafu { path: dir })?;
    let mut tmp = abos_fsio::AtomicFile::create(&path, crate::fsio::READABLE)
        .context(error::DurableSnafu { path: &path })?;
    match ready {
        // Already read through tough (length and sha256 checked).
        Some(bytes) => tmp
            .write_all(bytes)
            .context(error::WriteFileSnafu { path: &path })?,
        None => {
            // tough retries connection failures but not a body cut short; a mirror of large
            // images should survive that, so whole-target transport failures are retried
            // (from the start, into a fresh file). Content mismatches are never retried.
            let mut tries = retry.start();
            loop {
                match stream_target(repo, name, &mut tmp, &path).await {
                    Ok(()) => break,
                    Err(e) => {
                        let Some(delay) =
                            tries.again(e.exit_status() == crate::ExitStatus::Transport)
                        else {
                            return Err(e);
                        };
                        tracing::warn!("retrying {} after: {e}", name.raw());
                        tokio::time::sleep(delay).await;
                        tmp.as_file_mut()
                            .set_len(0)
                            .context(error::WriteFileSnafu { path: &path })?;
                        std::io::Seek::rewind(tmp.as_file_mut())
                            .context(error::WriteFileSnafu { path: &path })?;
                    }
                }
            }
        }
    }
    // fsync and rename; the caller fsyncs the targets directory once for all of them.
    tmp.commit_batched()
        .context(error::DurableSnafu { path: &path })?;
    reporter.report(&Event::TargetFetched {
        name: name.raw(),
        bytes: target.length,
    });
    Ok(done(TargetAction::Fetched))
}

/// Streams a target through tough into `tmp`. tough checks the length limit per chunk and the
/// sha256 at the end of the stream; the caller renames nothing into place unless this succeeds.
async fn stream_target(
    repo: &tough::Repository,
    name: &TargetName,
    tmp: &mut abos_fsio::AtomicFile,
    path: &Path,
) -> Result<()> {
    let read_err = |source| error::Error::ReadTarget {
        name: name.raw().to_owned(),
        source: Box::new(source),
    };
    let mut stream = repo
        .read_target(name)
        .await
        .map_err(read_err)?
        .context(error::SelectedTargetMissingSnafu { name: name.raw() })?;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(read_err)?;
        tmp.write_all(&chunk)
            .context(error::WriteFileSnafu { path })?;
    }
    Ok(())
}

/// Runs a mirror into a bucket, `s3://BUCKET/PREFIX`, with the directory layout
/// (`PREFIX/metadata/<subdir>/`, `PREFIX/targets/`), for hosts or a CDN reading the bucket over
/// HTTP. Same order as [`mirror`]: everything loaded and verified first; targets streamed
/// through tough (length and sha256 checked; an upload whose stream fails is aborted, so no
/// partial object appears); then the root chain, targets, snapshot and `timestamp.json` last.
/// A target already in the bucket with the signed length is reused (consistent-snapshot names
/// fix the content). Objects carry the `Cache-Control` and `Content-Type` of their kind.
/// Superseded objects are not pruned, and no `mirror.json` is written (a bucket holds one
/// repository per metadata subdirectory; `verify-mirror` reads directories).
pub async fn mirror_to_bucket(
    opts: MirrorOptions,
    dest: &repo_store::S3Url,
    reporter: &dyn Reporter,
) -> Result<MirrorReport> {
    let trusted = abos_repo_core::TrustedRoot::read(&opts.root)?;
    let rel_metadata = opts.metadata_subdir.metadata_dir(Path::new(""));
    let metadata = dest.join(&rel_metadata.to_string_lossy());
    let targets = dest.join(TARGETS_DIR);
    let bucket = repo_store::Bucket::from_env(&dest.bucket).context(error::ObjectStoreSnafu)?;

    let loaded = load_source(&opts, &trusted, reporter).await?;
    let repo = &loaded.repo;
    // A rolled-back source must not replace newer mirrored metadata.
    if let Some(bytes) = bucket
        .get(&metadata.key("timestamp.json"))
        .await
        .context(error::ObjectStoreSnafu)?
    {
        let old: Signed<Timestamp> =
            serde_json::from_slice(&bytes).context(error::ParseMetadataSnafu {
                file: format!("{metadata}/timestamp.json"),
            })?;
        let new_ts = repo.timestamp().signed.version.get();
        ensure!(
            old.signed.version.get() <= new_ts,
            error::RollbackSnafu {
                role: "timestamp",
                mirrored: old.signed.version.get(),
                source_version: new_ts
            }
        );
    }

    let Plan {
        items,
        versions,
        notes: mut plan_notes,
        prefetched,
    } = plan(&loaded, opts.filter.as_ref(), opts.metadata_only).await?;
    reporter.report(&Event::TargetsPlanned {
        count: items.len(),
        bytes: items.iter().map(|(_, t, _)| t.length).sum(),
    });

    let bucket_ref = &bucket;
    let targets_ref = &targets;
    let prefetched_ref = prefetched.as_deref();
    let retry = opts.retry;
    let mut results: Vec<MirroredTarget> = futures::stream::iter(items.iter())
        .map(|(name, target, file)| async move {
            let key = targets_ref.key(file);
            let done = |action| MirroredTarget {
                name: name.raw().to_owned(),
                file: file.clone(),
                length: target.length,
                action,
            };
            let present = bucket_ref
                .head(&key)
                .await
                .context(error::ObjectStoreSnafu)?;
            if present.is_some_and(|i| i.size == target.length) {
                reporter.report(&Event::TargetReused {
                    name: name.raw(),
                    bytes: target.length,
                });
                return Ok(done(TargetAction::Reused));
            }
            if let Some(bytes) = prefetched_ref.filter(|_| name.raw() == MANIFEST_TARGET) {
                bucket_ref
                    .put(&key, bytes.to_vec(), repo_store::Write::Overwrite)
                    .await
                    .context(error::ObjectStoreSnafu)?;
            } else {
                let mut tries = retry.start();
                loop {
                    match upload_target(repo, name, bucket_ref, &key).await {
                        Ok(()) => break,
                        Err(e) => {
                            let Some(delay) =
                                tries.again(e.exit_status() == crate::ExitStatus::Transport)
                            else {
                                return Err(e);
                            };
                            tracing::warn!("retrying {} after: {e}", name.raw());
                            tokio::time::sleep(delay).await;
                        }
                    }
                }
            }
            reporter.report(&Event::TargetFetched {
                name: name.raw(),
                bytes: target.length,
            });
            Ok(done(TargetAction::Fetched))
        })
        .buffer_unordered(opts.jobs.max(1))
        .try_collect()
        .await?;
    results.sort_by(|a, b| a.name.cmp(&b.name));

    // Then metadata, timestamp last (unchanged objects are not rewritten).
    for (name, bytes) in &loaded.files {
        let key = metadata.key(name);
        let existing = bucket.get(&key).await.context(error::ObjectStoreSnafu)?;
        if existing.as_deref() != Some(bytes.as_slice()) {
            bucket
                .put(&key, bytes.clone(), repo_store::Write::Overwrite)
                .await
                .context(error::ObjectStoreSnafu)?;
        }
    }
    plan_notes.push(format!(
        "written to {dest}: superseded metadata and targets are not pruned in a bucket"
    ));

    let count = |a| results.iter().filter(|t| t.action == a).count();
    let bytes = |a| {
        results
            .iter()
            .filter(|t| t.action == a)
            .map(|t| t.length)
            .sum()
    };
    Ok(MirrorReport {
        metadata_url: loaded.metadata_url.to_string(),
        targets_url: loaded.targets_url.to_string(),
        metadata_dir: PathBuf::from(metadata.to_string()),
        targets_dir: PathBuf::from(targets.to_string()),
        filter: opts.filter.as_ref().map(ToString::to_string),
        versions,
        root_version: repo.root().signed.version.get(),
        timestamp_version: repo.timestamp().signed.version.get(),
        snapshot_version: repo.snapshot().signed.version.get(),
        targets_version: repo.targets().signed.version.get(),
        metadata_files: loaded.files.len(),
        metadata_pruned: 0,
        targets_pruned: 0,
        fetched: count(TargetAction::Fetched),
        reused: count(TargetAction::Reused),
        bytes_fetched: bytes(TargetAction::Fetched),
        bytes_reused: bytes(TargetAction::Reused),
        targets: results,
        notes: plan_notes,
    })
}

/// Streams one target through tough (length and hash checked as it goes) into a multipart
/// upload; a failed check aborts the upload, so nothing unverified appears in the bucket.
async fn upload_target(
    repo: &tough::Repository,
    name: &TargetName,
    bucket: &repo_store::Bucket,
    key: &str,
) -> Result<()> {
    let read_err = |source| error::Error::ReadTarget {
        name: name.raw().to_owned(),
        source: Box::new(source),
    };
    let stream = repo
        .read_target(name)
        .await
        .map_err(read_err)?
        .context(error::SelectedTargetMissingSnafu { name: name.raw() })?;
    match bucket.upload_stream(key, stream).await {
        Ok(_) => Ok(()),
        Err(repo_store::UploadError::Source(e)) => Err(read_err(e)),
        Err(repo_store::UploadError::Store(source)) => Err(error::Error::ObjectStore { source }),
    }
}
