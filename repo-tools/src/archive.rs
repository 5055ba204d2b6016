//! Offline media: `export` packs a mirror into one tar file; `import` unpacks it into a staging
//! directory next to the destination, verifies everything against the trusted root, and only
//! then moves it into place.
//!
//! Archive layout: the mirror's files under their relative paths (`mirror.json`,
//! `metadata/…`, `targets/…`), then a last entry [`INDEX_FILE`] listing every file with its
//! length and sha256. The index catches damage early and names the file; it is not trusted:
//! import verifies the unpacked tree with tough against the root the operator supplies, so an
//! archive whose index was rewritten to match tampered files is still refused.

use crate::check::{self, TreeReport};
use crate::error::{self, Result};

use crate::reporter::{Event, Reporter};
use crate::source::Expiry;
use crate::untrusted;
use aws_lc_rs::digest::{Context, SHA256};
use serde::{Deserialize, Serialize};
use snafu::{OptionExt, ResultExt, ensure};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

/// Name of the index entry (the archive's last entry).
pub const INDEX_FILE: &str = "repo-tools-index.json";
/// Largest index accepted.
const MAX_INDEX: u64 = 64 << 20;

/// One file in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    /// Relative path.
    pub path: String,
    /// Length.
    pub length: u64,
    /// Hex sha256.
    pub sha256: String,
}

/// The archive index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    /// Format version (1).
    pub format: u32,
    /// Every file, in archive order.
    pub files: Vec<IndexEntry>,
}

/// What export wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    /// The archive.
    pub archive: PathBuf,
    /// Files packed (without the index).
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Metadata subdirectories packed.
    pub repositories: Vec<String>,
}

/// Whether import may replace an existing destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Refuse if the destination exists (the default).
    Refuse,
    /// Replace it after the new tree verified (`--replace`).
    Replace,
}

/// What import did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// The destination.
    pub out: PathBuf,
    /// Files unpacked.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// The verification.
    pub verified: TreeReport,
    /// Whether an existing destination was replaced.
    pub replaced: bool,
}

/// A reader that hashes and counts what passes through it.
struct HashingReader<R> {
    inner: R,
    ctx: Context,
    len: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.ctx.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

/// Packs the current files of the mirror at `mirror` into `archive` (written atomically).
pub fn export(mirror: &Path, archive: &Path, reporter: &dyn Reporter) -> Result<ExportReport> {
    let (subdirs, files) = check::current_files(mirror)?;
    let tmp = abos_fsio::AtomicFile::create(archive, crate::fsio::READABLE)
        .context(error::DurableSnafu { path: archive })?;
    let mut builder = tar::Builder::new(std::io::BufWriter::new(tmp));
    let mut index = Index {
        format: 1,
        files: Vec::new(),
    };
    let mut bytes = 0;
    for (rel, expected) in &files {
        let path = mirror.join(rel);
        let file = std::fs::File::open(&path).context(error::ReadFileSnafu { path: &path })?;
        let len = file
            .metadata()
            .context(error::ReadFileSnafu { path: &path })?
            .len();
        let mut reader = HashingReader {
            inner: file,
            ctx: Context::new(&SHA256),
            len: 0,
        };
        builder
            .append_data(&mut header(len), rel, &mut reader)
            .context(error::WriteFileSnafu { path: archive })?;
        ensure!(
            reader.len == len,
            error::ChangedWhileReadingSnafu { path: &path }
        );
        let sha = hex::encode(reader.ctx.finish().as_ref());
        if let Some(want) = expected {
            ensure!(
                &sha == want,
                error::CorruptMirrorFileSnafu {
                    path: &path,
                    expected: want,
                    actual: &sha
                }
            );
        }
        bytes += len;
        reporter.report(&Event::FileArchived {
            path: rel,
            bytes: len,
        });
        index.files.push(IndexEntry {
            path: rel.clone(),
            length: len,
            sha256: sha,
        });
    }
    let mut index_bytes = serde_json::to_vec_pretty(&index).context(error::CanonicalJsonSnafu)?;
    index_bytes.push(b'\n');
    builder
        .append_data(
            &mut header(index_bytes.len() as u64),
            INDEX_FILE,
            index_bytes.as_slice(),
        )
        .context(error::WriteFileSnafu { path: archive })?;
    let writer = builder
        .into_inner()
        .context(error::WriteFileSnafu { path: archive })?;
    let tmp = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .context(error::WriteFileSnafu { path: archive })?;
    tmp.commit()
        .context(error::DurableSnafu { path: archive })?;
    Ok(ExportReport {
        archive: archive.to_owned(),
        files: files.len(),
        bytes,
        repositories: subdirs,
    })
}

/// Checks an archive entry's path: relative, only normal components.
fn safe_path(raw: &Path) -> std::result::Result<String, &'static str> {
    if raw.as_os_str().is_empty() {
        return Err("empty path");
    }
    let mut parts = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => {
                let p = p.to_str().ok_or("path is not UTF-8")?;
                if p.chars().any(char::is_control) {
                    return Err("path contains control characters");
                }
                parts.push(p.to_owned());
            }
            Component::CurDir => {}
            Component::ParentDir => return Err("path contains '..' (path traversal)"),
            Component::RootDir | Component::Prefix(_) => return Err("absolute path"),
        }
    }
    if parts.is_empty() {
        return Err("empty path");
    }
    Ok(parts.join("/"))
}

/// Options for import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The archive.
    pub archive: PathBuf,
    /// Trusted root.
    pub root: PathBuf,
    /// Destination directory.
    pub out: PathBuf,
    /// Expired metadata policy.
    pub expiration: Expiry,
    /// Existing destination policy.
    pub existing: Existing,
}

/// Unpacks, verifies and installs an archive.
pub async fn import(opts: &ImportOptions, reporter: &dyn Reporter) -> Result<ImportReport> {
    let out = &opts.out;
    let exists = out.exists();
    ensure!(
        !exists || opts.existing == Existing::Replace,
        error::OutputExistsSnafu { path: out }
    );
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_owned();
    std::fs::create_dir_all(&parent).context(error::CreateDirSnafu { path: &parent })?;
    // The staging directory becomes the served tree: 0777 less the umask, not tempfile's 0700.
    let staging = tempfile::Builder::new()
        .prefix(".repo-tools-import-")
        .permissions(crate::fsio::readable_dir())
        .tempdir_in(&parent)
        .context(error::CreateDirSnafu { path: &parent })?;

    let (unpacked, index) = unpack(&opts.archive, staging.path(), reporter)?;
    let index = index.context(error::ArchiveIndexMissingSnafu {
        archive: &opts.archive,
    })?;
    let mut listed: BTreeMap<&str, &IndexEntry> = BTreeMap::new();
    for e in &index.files {
        ensure!(
            listed.insert(e.path.as_str(), e).is_none(),
            error::ArchiveEntrySnafu {
                path: untrusted::describe(&e.path),
                reason: "listed twice in the index"
            }
        );
    }
    for (path, (len, sha)) in &unpacked {
        let entry = listed
            .get(path.as_str())
            .context(error::ArchiveEntrySnafu {
                path,
                reason: "not listed in the archive index",
            })?;
        ensure!(
            entry.length == *len && &entry.sha256 == sha,
            error::ArchiveEntrySnafu {
                path,
                reason: format!(
                    "content does not match the archive index (length {len}, sha256 {sha}; index says length {}, sha256 {})",
                    entry.length,
                    untrusted::describe(&entry.sha256)
                )
            }
        );
    }
    for path in listed.keys() {
        ensure!(
            unpacked.contains_key(*path),
            error::MissingFileSnafu {
                path: untrusted::describe(path),
                name: untrusted::describe(path),
            }
        );
    }

    // The real check: tough, the trusted root, every file.
    let verified =
        check::verify_tree(staging.path(), &opts.root, opts.expiration, reporter).await?;

    // Durable, then into place.
    sync_tree(staging.path())?;
    let staged = staging.keep();
    let mut replaced = false;
    if exists {
        let old = tempfile::Builder::new()
            .prefix(".repo-tools-old-")
            .tempdir_in(&parent)
            .context(error::CreateDirSnafu { path: &parent })?;
        let old_path = old.path().join("previous");
        std::fs::rename(out, &old_path).context(error::RenameSnafu {
            from: out,
            to: &old_path,
        })?;
        std::fs::rename(&staged, out).context(error::RenameSnafu {
            from: &staged,
            to: out,
        })?;
        drop(old); // removes the previous tree
        replaced = true;
    } else {
        std::fs::rename(&staged, out).context(error::RenameSnafu {
            from: &staged,
            to: out,
        })?;
    }
    crate::fsio::sync_dir(&parent)?;
    let bytes = unpacked.values().map(|(l, _)| l).sum();
    let mut verified = verified;
    verified.dir = out.clone();
    Ok(ImportReport {
        out: out.clone(),
        files: unpacked.len(),
        bytes,
        verified,
        replaced,
    })
}

type Unpacked = (BTreeMap<String, (u64, String)>, Option<Index>);

fn unpack(archive: &Path, staging: &Path, reporter: &dyn Reporter) -> Result<Unpacked> {
    let file = std::fs::File::open(archive).context(error::ReadFileSnafu { path: archive })?;
    let mut tar = tar::Archive::new(std::io::BufReader::new(file));
    let mut unpacked = BTreeMap::new();
    let mut index = None;
    let mut seen = BTreeSet::new();
    // The tar reader's errors quote header bytes: escape and bound them.
    let entries = tar
        .entries()
        .map_err(untrusted::io_error)
        .context(error::ReadArchiveSnafu { path: archive })?;
    for entry in entries {
        let mut entry = entry
            .map_err(untrusted::io_error)
            .context(error::ReadArchiveSnafu { path: archive })?;
        let raw = entry
            .path()
            .map_err(untrusted::io_error)
            .context(error::ReadArchiveSnafu { path: archive })?
            .into_owned();
        let shown = untrusted::describe_bytes(raw.as_os_str().as_encoded_bytes());
        let rel = safe_path(&raw).map_err(|reason| error::Error::ArchiveEntry {
            path: shown.clone(),
            reason: reason.to_owned(),
        })?;
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        ensure!(
            kind.is_file() || kind == tar::EntryType::Continuous,
            error::ArchiveEntrySnafu {
                path: &shown,
                reason: format!("unsupported entry type {kind:?} (only regular files)")
            }
        );
        ensure!(
            seen.insert(rel.clone()),
            error::ArchiveEntrySnafu {
                path: &shown,
                reason: "appears twice"
            }
        );
        if rel == INDEX_FILE {
            let mut buf = Vec::new();
            (&mut entry)
                .take(MAX_INDEX)
                .read_to_end(&mut buf)
                .map_err(untrusted::io_error)
                .context(error::ReadArchiveSnafu { path: archive })?;
            index = Some(
                serde_json::from_slice(&buf).map_err(|e| error::Error::ParseIndex {
                    archive: archive.to_owned(),
                    reason: untrusted::describe(&e.to_string()),
                })?,
            );
            continue;
        }
        let dest = staging.join(&rel);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir).context(error::CreateDirSnafu { path: dir })?;
        }
        let mut out = abos_fsio::create_new(&dest, crate::fsio::READABLE)
            .context(error::DurableSnafu { path: &dest })?;
        let mut reader = HashingReader {
            inner: &mut entry,
            ctx: Context::new(&SHA256),
            len: 0,
        };
        std::io::copy(&mut reader, &mut out)
            .map_err(untrusted::io_error)
            .context(error::ReadArchiveSnafu { path: archive })?;
        out.flush().context(error::WriteFileSnafu { path: &dest })?;
        let sha = hex::encode(reader.ctx.finish().as_ref());
        reporter.report(&Event::FileArchived {
            path: &rel,
            bytes: reader.len,
        });
        unpacked.insert(rel, (reader.len, sha));
    }
    Ok((unpacked, index))
}

/// fsyncs every file and directory under `dir`.
fn sync_tree(dir: &Path) -> Result<()> {
    abos_fsio::sync_tree(dir).context(error::DurableSnafu { path: dir })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn traversal_and_absolute_paths_are_refused() {
        assert_eq!(
            safe_path(Path::new("metadata/1.root.json")).unwrap(),
            "metadata/1.root.json"
        );
        assert_eq!(safe_path(Path::new("./targets/x")).unwrap(), "targets/x");
        assert!(
            safe_path(Path::new("../evil"))
                .unwrap_err()
                .contains("traversal")
        );
        assert!(
            safe_path(Path::new("targets/../../evil"))
                .unwrap_err()
                .contains("traversal")
        );
        assert!(
            safe_path(Path::new("/etc/passwd"))
                .unwrap_err()
                .contains("absolute")
        );
    }
}
