//! Where a mirrored repository lives on disk, and the record of what was mirrored.
//!
//! ```text
//! DIR/
//!   mirror.json                    record of each mirror run (not signed; informational)
//!   metadata/[SUBDIR/]             one TUF repository's metadata:
//!       1.root.json … N.root.json  the whole root chain
//!       timestamp.json
//!       V.snapshot.json            (snapshot.json without consistent snapshots)
//!       V.targets.json             (targets.json without consistent snapshots)
//!   targets/                       target files, shared by every SUBDIR:
//!       <sha256>.<name>            (<name> without consistent snapshots)
//! ```
//!
//! Serve `DIR` with any static HTTP server (or use it over `file://`) and point updog at
//! `metadata_base_url = <base>/metadata/[SUBDIR/]` and `targets_base_url = <base>/targets/`.
//! `SUBDIR` (for example `aws-k8s-1.31/x86_64`, the layout Bottlerocket's own repository uses
//! under its metadata base URL) lets several variants share one mirror and one targets directory;
//! digest-prefixed target names never collide.

use crate::error::{self, Result};
use serde::{Deserialize, Serialize};
use snafu::{ResultExt, ensure};
use std::path::{Component, Path, PathBuf};
use tough::TargetName;
use tough::schema::{Root, Target};

/// The record file at the top of a mirror.
pub const RECORD_FILE: &str = "mirror.json";
/// Metadata directory name.
pub const METADATA_DIR: &str = "metadata";
/// Targets directory name.
pub const TARGETS_DIR: &str = "targets";

/// A validated relative directory under `metadata/` (may be empty).
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MetadataSubdir(String);

impl MetadataSubdir {
    /// Validates a relative path: only normal components, no `..`, not absolute.
    pub fn new(text: &str) -> Result<Self> {
        let trimmed = text.trim_matches('/');
        for part in trimmed.split('/') {
            ensure!(
                trimmed.is_empty()
                    || (!part.is_empty()
                        && part != "."
                        && part != ".."
                        && part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))),
                error::BadSubdirSnafu { text }
            );
        }
        Ok(Self(trimmed.to_owned()))
    }

    /// The path text (empty for the top level).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `DIR/metadata/SUBDIR`.
    pub fn metadata_dir(&self, mirror: &Path) -> PathBuf {
        let base = mirror.join(METADATA_DIR);
        if self.0.is_empty() {
            base
        } else {
            base.join(&self.0)
        }
    }
}

impl TryFrom<String> for MetadataSubdir {
    type Error = crate::error::Error;
    fn try_from(s: String) -> Result<Self> {
        Self::new(&s)
    }
}

impl From<MetadataSubdir> for String {
    fn from(s: MetadataSubdir) -> String {
        s.0
    }
}

impl std::str::FromStr for MetadataSubdir {
    type Err = crate::error::Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}

/// File names of one repository's current metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataNames {
    /// `1.root.json` … `N.root.json`.
    pub roots: Vec<String>,
    /// `timestamp.json`.
    pub timestamp: String,
    /// `V.snapshot.json` or `snapshot.json`.
    pub snapshot: String,
    /// `V.targets.json` or `targets.json`.
    pub targets: String,
}

impl MetadataNames {
    /// Names for a repository at these versions.
    pub fn new(root: &Root, snapshot_version: u64, targets_version: u64) -> Self {
        let cs = root.consistent_snapshot;
        Self {
            roots: (1..=root.version.get())
                .map(|v| format!("{v}.root.json"))
                .collect(),
            timestamp: "timestamp.json".to_owned(),
            snapshot: if cs {
                format!("{snapshot_version}.snapshot.json")
            } else {
                "snapshot.json".to_owned()
            },
            targets: if cs {
                format!("{targets_version}.targets.json")
            } else {
                "targets.json".to_owned()
            },
        }
    }

    /// Every name, roots first and timestamp last (the order to write them in).
    pub fn in_write_order(&self) -> Vec<&str> {
        let mut all: Vec<&str> = self.roots.iter().map(String::as_str).collect();
        all.push(&self.targets);
        all.push(&self.snapshot);
        all.push(&self.timestamp);
        all
    }
}

/// The file name (relative to `targets/`) under which a target is served.
pub fn target_file_name(root: &Root, name: &TargetName, target: &Target) -> String {
    if root.consistent_snapshot {
        format!("{}.{}", hex::encode(&target.hashes.sha256), name.resolved())
    } else {
        name.resolved().to_owned()
    }
}

/// Checks that a relative file name stays inside its directory.
pub(crate) fn ensure_relative(name: &str) -> Result<()> {
    let p = Path::new(name);
    ensure!(
        !name.is_empty() && p.components().all(|c| matches!(c, Component::Normal(_))),
        error::UnsafeNameSnafu { name }
    );
    Ok(())
}

/// One mirrored repository in `mirror.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRecord {
    /// Directory under `metadata/`.
    pub metadata_subdir: MetadataSubdir,
    /// Source metadata URL.
    pub metadata_url: String,
    /// Source targets URL.
    pub targets_url: String,
    /// The filter used, if any (`variant/arch[/version]`).
    pub filter: Option<String>,
    /// Root version mirrored.
    pub root_version: u64,
    /// Timestamp version mirrored.
    pub timestamp_version: u64,
    /// Snapshot version mirrored.
    pub snapshot_version: u64,
    /// Targets version mirrored.
    pub targets_version: u64,
    /// Target names mirrored (all of them without a filter).
    pub targets: Vec<String>,
    /// When the mirror run finished.
    pub mirrored_at: jiff::Timestamp,
}

/// `mirror.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorRecord {
    /// Format version (1).
    pub format: u32,
    /// One entry per metadata subdirectory.
    pub repositories: Vec<RepositoryRecord>,
}

impl MirrorRecord {
    /// Reads `DIR/mirror.json`; a missing file is an empty record.
    pub fn load(mirror: &Path) -> Result<Self> {
        let path = mirror.join(RECORD_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).context(error::ParseRecordSnafu { path }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self {
                format: 1,
                repositories: Vec::new(),
            }),
            Err(source) => Err(error::Error::ReadFile { path, source }),
        }
    }

    /// Writes `DIR/mirror.json` atomically.
    pub fn save(&self, mirror: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).context(error::CanonicalJsonSnafu)?;
        bytes.push(b'\n');
        crate::fsio::write_atomic(&mirror.join(RECORD_FILE), &bytes)
    }

    /// Replaces (or adds) the entry for a subdirectory.
    pub fn upsert(&mut self, record: RepositoryRecord) {
        self.format = 1;
        self.repositories
            .retain(|r| r.metadata_subdir != record.metadata_subdir);
        self.repositories.push(record);
        self.repositories
            .sort_by(|a, b| a.metadata_subdir.cmp(&b.metadata_subdir));
    }

    /// The entry for a subdirectory.
    pub fn get(&self, subdir: &MetadataSubdir) -> Option<&RepositoryRecord> {
        self.repositories
            .iter()
            .find(|r| &r.metadata_subdir == subdir)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn subdirs_are_validated() {
        assert_eq!(MetadataSubdir::new("").unwrap().as_str(), "");
        assert_eq!(
            MetadataSubdir::new("/aws-k8s-1.31/x86_64/")
                .unwrap()
                .as_str(),
            "aws-k8s-1.31/x86_64"
        );
        for bad in ["../x", "a/../b", "a//b", "a/./b", "a b"] {
            assert!(MetadataSubdir::new(bad).is_err(), "{bad}");
        }
        assert!(ensure_relative("../etc/passwd").is_err());
        assert!(ensure_relative("/etc/passwd").is_err());
        assert!(ensure_relative("abc.root.json").is_ok());
    }
}
