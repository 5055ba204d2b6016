//! The build description os-image writes next to its outputs and pubsys reads.

use std::path::Path;

use semver::Version;
use serde::{Deserialize, Serialize};
use snafu::ResultExt;

use crate::error::{self, Error, Result};
use crate::names::{Arch, Variant};

/// What one image build produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildDescription {
    /// Image name, e.g. `bottlerocket`.
    pub name: String,
    /// Variant.
    pub variant: Variant,
    /// Architecture.
    pub arch: Arch,
    /// Version.
    #[serde(deserialize_with = "crate::names::de_version")]
    pub version: Version,
    /// Build id (e.g. a short commit hash).
    pub build_id: String,
    /// The three update images.
    pub artifacts: Artifacts,
    /// dm-verity parameters of the root image.
    pub verity: VerityInfo,
    /// The full disk image, if one was built.
    pub disk_image: Option<Artifact>,
    /// Root filesystem type: `ext4` or `erofs`.
    pub root_fs: String,
}

/// The three update images.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifacts {
    /// BOOT image.
    pub boot: Artifact,
    /// ROOT image.
    pub root: Artifact,
    /// HASH image.
    pub hash: Artifact,
}

/// One output file (compressed), with the size and hash of its uncompressed content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    /// File name, relative to the description file's directory.
    pub file_name: String,
    /// Size of the file.
    pub size: u64,
    /// SHA-256 of the file, lowercase hex.
    pub sha256: String,
    /// Size of the uncompressed content.
    pub uncompressed_size: u64,
    /// SHA-256 of the uncompressed content, lowercase hex.
    pub uncompressed_sha256: String,
}

/// dm-verity parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerityInfo {
    /// Root hash, lowercase hex.
    pub root_hash: String,
    /// Salt, lowercase hex.
    pub salt: String,
    /// Number of data blocks.
    pub data_blocks: u64,
    /// Data block size in bytes.
    pub data_block_size: u32,
    /// Hash block size in bytes.
    pub hash_block_size: u32,
    /// Hash algorithm, e.g. `sha256`.
    pub hash_algorithm: String,
}

impl BuildDescription {
    /// Reads a description; errors name the file and field.
    pub fn load(path: &Path) -> Result<BuildDescription> {
        let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let d: BuildDescription = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            Error::ParseBuildDescription {
                path: path.to_path_buf(),
                field: e.path().to_string(),
                source: e.into_inner(),
            }
        })?;
        for (field, value) in d.artifact_fields() {
            let p = Path::new(value);
            let inside = !value.is_empty()
                && p.components()
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            snafu::ensure!(inside, error::ArtifactPathSnafu { path, field, value });
        }
        Ok(d)
    }

    fn artifact_fields(&self) -> Vec<(&'static str, &str)> {
        let mut v = vec![
            (
                "artifacts.boot.file_name",
                self.artifacts.boot.file_name.as_str(),
            ),
            (
                "artifacts.root.file_name",
                self.artifacts.root.file_name.as_str(),
            ),
            (
                "artifacts.hash.file_name",
                self.artifacts.hash.file_name.as_str(),
            ),
        ];
        if let Some(d) = &self.disk_image {
            v.push(("disk_image.file_name", d.file_name.as_str()));
        }
        v
    }

    /// Where an artifact of this description is, given the description file's path.
    pub fn artifact_path(description_path: &Path, artifact: &Artifact) -> std::path::PathBuf {
        description_path
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(&artifact.file_name)
    }

    /// Writes the description as pretty JSON, atomically and durably (mode 0666 less the umask; see
    /// `abos-fsio`).
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("serialization cannot fail");
        bytes.push(b'\n');
        abos_fsio::write_atomic(path, &bytes, abos_fsio::PUBLIC)
            .context(error::WriteFileSnafu { path })
    }
}
