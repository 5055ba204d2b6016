//! Verifying a mirror directory (or an unpacked archive) against a trusted root: every
//! repository under `metadata/` is loaded through tough from `file://`, its root chain and
//! metadata files are checked, every file under `targets/` must be a target some repository
//! lists and must pass tough's length and sha256 check, and no unexpected file may be present.

use crate::error::{self, Result};
use crate::layout::{
    self, METADATA_DIR, MetadataNames, MetadataSubdir, MirrorRecord, RECORD_FILE, TARGETS_DIR,
};
use crate::reporter::{Event, Reporter};
use crate::source::{self, Expiry, LoadedRepo};
use futures::StreamExt;
use serde::Serialize;
use snafu::{OptionExt, ResultExt, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use tough::schema::{Root, Signed, Snapshot, Targets, Timestamp};
use tough::{FilesystemTransport, TargetName};

/// One verified repository.
#[derive(Debug, Clone, Serialize)]
pub struct RepositoryCheck {
    /// Directory under `metadata/`.
    pub metadata_subdir: String,
    /// Root version.
    pub root_version: u64,
    /// Timestamp version.
    pub timestamp_version: u64,
    /// Snapshot version.
    pub snapshot_version: u64,
    /// Targets version.
    pub targets_version: u64,
    /// Targets listed.
    pub targets_listed: usize,
    /// Targets present and verified.
    pub targets_present: usize,
}

/// The result of verifying a tree.
#[derive(Debug, Clone, Serialize)]
pub struct TreeReport {
    /// The directory.
    pub dir: PathBuf,
    /// Each repository.
    pub repositories: Vec<RepositoryCheck>,
    /// Target files verified.
    pub target_files: usize,
    /// Their bytes.
    pub target_bytes: u64,
}

/// Every regular file under `dir`, as `/`-separated relative paths. Anything that is neither a
/// regular file nor a directory (symlinks included) is refused.
pub(crate) fn walk(dir: &Path) -> Result<BTreeSet<String>> {
    fn go(base: &Path, dir: &Path, out: &mut BTreeSet<String>) -> Result<()> {
        let entries = std::fs::read_dir(dir).context(error::ReadDirSnafu { path: dir })?;
        for entry in entries {
            let entry = entry.context(error::ReadDirSnafu { path: dir })?;
            let path = entry.path();
            let kind = entry
                .file_type()
                .context(error::ReadDirSnafu { path: &path })?;
            let rel = path
                .strip_prefix(base)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            if kind.is_dir() {
                go(base, &path, out)?;
            } else if kind.is_file() {
                out.insert(rel);
            } else {
                return error::UnexpectedFileSnafu {
                    path: rel,
                    reason: "not a regular file",
                }
                .fail();
            }
        }
        Ok(())
    }
    let mut out = BTreeSet::new();
    if dir.exists() {
        go(dir, dir, &mut out)?;
    }
    Ok(out)
}

/// Verifies the tree at `dir` against `root_path`.
pub async fn verify_tree(
    dir: &Path,
    root_path: &Path,
    expiration: Expiry,
    reporter: &dyn Reporter,
) -> Result<TreeReport> {
    let trusted = abos_repo_core::TrustedRoot::read(root_path)?;
    let dir = std::fs::canonicalize(dir).context(error::ReadDirSnafu { path: dir })?;
    let files = walk(&dir)?;
    let record = MirrorRecord::load(&dir)?;

    // Repositories: every directory under metadata/ holding a timestamp.json.
    let meta_prefix = format!("{METADATA_DIR}/");
    let subdirs: Vec<MetadataSubdir> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&meta_prefix))
        .filter_map(|f| f.strip_suffix("timestamp.json"))
        .filter(|rest| rest.is_empty() || rest.ends_with('/'))
        .map(MetadataSubdir::new)
        .collect::<Result<_>>()?;
    ensure!(!subdirs.is_empty(), error::NoRepositorySnafu { dir: &dir });

    let mut expected: BTreeSet<String> = BTreeSet::new();
    expected.insert(RECORD_FILE.to_owned());
    // target file (relative to targets/) -> (repository index, target name)
    let mut target_files: BTreeMap<String, (usize, TargetName)> = BTreeMap::new();
    let mut loaded: Vec<(MetadataSubdir, LoadedRepo)> = Vec::new();
    for subdir in subdirs {
        let mdir = subdir.metadata_dir(&dir);
        let murl = abos_repo_core::dir_path_url(&mdir)?;
        let turl = abos_repo_core::dir_path_url(&dir.join(TARGETS_DIR))?;
        let repo = source::load(
            &trusted,
            murl,
            turl,
            expiration,
            Box::new(FilesystemTransport),
        )
        .await?;
        for (name, _) in &repo.files {
            let rel = if subdir.as_str().is_empty() {
                format!("{METADATA_DIR}/{name}")
            } else {
                format!("{METADATA_DIR}/{}/{name}", subdir.as_str())
            };
            expected.insert(rel);
        }
        let idx = loaded.len();
        for (tname, target) in &repo.repo.targets().signed.targets {
            let file = layout::target_file_name(&repo.repo.root().signed, tname, target);
            target_files.entry(file).or_insert((idx, tname.clone()));
        }
        loaded.push((subdir, repo));
    }

    // No file may be present that no repository accounts for.
    let targets_prefix = format!("{TARGETS_DIR}/");
    for f in &files {
        let accounted = expected.contains(f)
            || f.strip_prefix(&targets_prefix)
                .is_some_and(|t| target_files.contains_key(t));
        ensure!(
            accounted,
            error::UnexpectedFileSnafu {
                path: f,
                reason: "no repository lists it"
            }
        );
    }

    // Every target file present passes tough's check.
    let mut target_bytes = 0;
    let mut count = 0;
    for f in files.iter().filter_map(|f| f.strip_prefix(&targets_prefix)) {
        let (idx, tname) = &target_files[f];
        let repo = &loaded[*idx].1.repo;
        let err = |source| error::Error::VerifyTarget {
            path: format!("{targets_prefix}{f}"),
            source: Box::new(source),
        };
        let mut stream = repo
            .read_target(tname)
            .await
            .map_err(err)?
            .context(error::SelectedTargetMissingSnafu { name: tname.raw() })?;
        let mut n = 0u64;
        while let Some(chunk) = stream.next().await {
            n += chunk.map_err(err)?.len() as u64;
        }
        target_bytes += n;
        count += 1;
        reporter.report(&Event::FileVerified {
            path: &format!("{targets_prefix}{f}"),
            bytes: n,
        });
    }

    // Every target the mirror recorded (or, without a record, every listed target) is present.
    let mut repositories = Vec::new();
    for (subdir, repo) in &loaded {
        let root = &repo.repo.root().signed;
        let listed = &repo.repo.targets().signed.targets;
        let wanted: Vec<String> = match record.get(subdir) {
            Some(r) => r.targets.clone(),
            None => listed.keys().map(|n| n.raw().to_owned()).collect(),
        };
        let mut present = 0;
        for name in &wanted {
            let tname = TargetName::new(name.as_str())
                .map_err(Box::new)
                .context(error::TargetNameSnafu { name })?;
            let target = listed
                .get(&tname)
                .context(error::SelectedTargetMissingSnafu { name })?;
            let file = format!(
                "{targets_prefix}{}",
                layout::target_file_name(root, &tname, target)
            );
            ensure!(
                files.contains(&file),
                error::MissingFileSnafu { path: file, name }
            );
            present += 1;
        }
        repositories.push(RepositoryCheck {
            metadata_subdir: subdir.as_str().to_owned(),
            root_version: root.version.get(),
            timestamp_version: repo.repo.timestamp().signed.version.get(),
            snapshot_version: repo.repo.snapshot().signed.version.get(),
            targets_version: repo.repo.targets().signed.version.get(),
            targets_listed: listed.len(),
            targets_present: present,
        });
    }
    Ok(TreeReport {
        dir,
        repositories,
        target_files: count,
        target_bytes,
    })
}

fn parse_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = crate::fsio::read(path)?;
    serde_json::from_slice(&bytes).context(error::ParseMetadataSnafu {
        file: path.display().to_string(),
    })
}

/// Subdirectories, and (relative path, expected sha256 for targets) pairs.
pub(crate) type CurrentFiles = (Vec<String>, Vec<(String, Option<String>)>);

/// The current files of each repository in a mirror: what export packs; target files not in
/// it are stale.
pub(crate) fn current_files(mirror: &Path) -> Result<CurrentFiles> {
    let files = walk(mirror)?;
    let meta_prefix = format!("{METADATA_DIR}/");
    let mut subdirs: Vec<String> = files
        .iter()
        .filter_map(|f| f.strip_prefix(&meta_prefix))
        .filter_map(|f| f.strip_suffix("timestamp.json"))
        .filter(|rest| rest.is_empty() || rest.ends_with('/'))
        .map(|s| s.trim_end_matches('/').to_owned())
        .collect();
    subdirs.sort();
    ensure!(
        !subdirs.is_empty(),
        error::NoRepositorySnafu { dir: mirror }
    );
    // (relative path, expected sha256 for targets)
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    if files.contains(RECORD_FILE) {
        out.insert(RECORD_FILE.to_owned(), None);
    }
    for subdir in &subdirs {
        let rel_dir = if subdir.is_empty() {
            METADATA_DIR.to_owned()
        } else {
            format!("{METADATA_DIR}/{subdir}")
        };
        let mdir = mirror.join(&rel_dir);
        let mut n = 0u64;
        while files.contains(&format!("{rel_dir}/{}.root.json", n + 1)) {
            n += 1;
        }
        ensure!(
            n > 0,
            error::MissingFileSnafu {
                path: format!("{rel_dir}/1.root.json"),
                name: "1.root.json"
            }
        );
        let root: Signed<Root> = parse_json(&mdir.join(format!("{n}.root.json")))?;
        let ts: Signed<Timestamp> = parse_json(&mdir.join("timestamp.json"))?;
        let snap_v = ts
            .signed
            .meta
            .get("snapshot.json")
            .map_or(0, |m| m.version.get());
        let names0 = MetadataNames::new(&root.signed, snap_v, 0);
        let snap: Signed<Snapshot> = parse_json(&mdir.join(&names0.snapshot))?;
        let targets_v = snap
            .signed
            .meta
            .get("targets.json")
            .map_or(0, |m| m.version.get());
        let names = MetadataNames::new(&root.signed, snap_v, targets_v);
        let targets: Signed<Targets> = parse_json(&mdir.join(&names.targets))?;
        for name in names.in_write_order() {
            out.insert(format!("{rel_dir}/{name}"), None);
        }
        for (tname, target) in &targets.signed.targets {
            let file = format!(
                "{TARGETS_DIR}/{}",
                crate::layout::target_file_name(&root.signed, tname, target)
            );
            if files.contains(&file) {
                out.insert(file, Some(hex::encode(&target.hashes.sha256)));
            }
        }
    }
    Ok((subdirs, out.into_iter().collect()))
}
