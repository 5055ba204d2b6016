//! `pubsys manifest …`: the command-line manifest editor (Bottlerocket's `updata`), over
//! update-metadata's library. Every edit is validated before the file is written, and the file is
//! written atomically, so a refused edit leaves the file exactly as it was.

use crate::error::{self, Result};
use jiff::Timestamp;
use snafu::{ResultExt, ensure};
use std::path::{Path, PathBuf};
use update_metadata::{Arch, Images, Manifest, Release, TargetName, Variant, Version};

/// One editor operation.
#[derive(Debug, Clone)]
pub enum ManifestOp {
    /// Write an empty manifest (refuses an existing file unless `force`).
    Init {
        /// Overwrite an existing file.
        force: bool,
    },
    /// Add an update entry (Bottlerocket's max_version rule).
    AddUpdate {
        /// Variant.
        variant: Variant,
        /// Arch.
        arch: Arch,
        /// Version.
        version: Version,
        /// Explicit max_version.
        max_version: Option<Version>,
        /// Boot image target.
        boot: TargetName,
        /// Root image target.
        root: TargetName,
        /// Hash image target.
        hash: TargetName,
        /// Add empty migration lists next to this version where the chain would break.
        assume_no_migrations: bool,
    },
    /// Remove an update entry.
    RemoveUpdate {
        /// Variant.
        variant: Variant,
        /// Arch.
        arch: Arch,
        /// Version.
        version: Version,
    },
    /// Set an entry's waves from a policy file and a start time.
    SetWaves {
        /// Variant.
        variant: Variant,
        /// Arch.
        arch: Arch,
        /// Version.
        version: Version,
        /// Wave policy file.
        wave_file: PathBuf,
        /// Rollout start.
        start: Timestamp,
    },
    /// Set max_version on all entries, or those of one arch/variant.
    SetMaxVersion {
        /// The new max_version.
        max_version: Version,
        /// Only this arch.
        arch: Option<Arch>,
        /// Only this variant.
        variant: Option<Variant>,
    },
    /// Replace the migrations with those of a Release.toml.
    SetMigrations {
        /// Release.toml.
        release_file: PathBuf,
    },
    /// Parse and validate only.
    Validate,
    /// Print the manifest.
    Show,
}

/// Result of an editor operation.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ManifestOutcome {
    /// The file.
    pub path: PathBuf,
    /// Operation name.
    pub operation: &'static str,
    /// Entries changed (or, for validate/show, the number of updates).
    pub changed: usize,
    /// True if the file was written.
    pub written: bool,
    /// The manifest after the operation (for `show`, and `--json`), as the exact JSON text
    /// written, so unknown values (big numbers, key order) show as they are in the file. (serde_json's
    /// `raw_value` feature comes with update-metadata.)
    pub manifest: Box<serde_json::value::RawValue>,
}

fn load(path: &Path) -> Result<Manifest> {
    Manifest::load(path).context(error::ManifestFileSnafu { path })
}

/// Applies `op` to the manifest file at `path`.
pub fn apply(path: &Path, op: &ManifestOp) -> Result<ManifestOutcome> {
    let (operation, manifest, changed, write) = match op {
        ManifestOp::Init { force } => {
            ensure!(*force || !path.exists(), error::FileExistsSnafu { path });
            ("init", Manifest::new(), 0, true)
        }
        ManifestOp::AddUpdate {
            variant,
            arch,
            version,
            max_version,
            boot,
            root,
            hash,
            assume_no_migrations,
        } => {
            let mut m = load(path)?;
            if *assume_no_migrations {
                crate::release::fill_migration_gaps(&mut m, version);
            }
            m.add_update(
                variant.clone(),
                *arch,
                version.clone(),
                max_version.clone(),
                Images::new(boot.clone(), root.clone(), hash.clone()),
            )
            .context(error::ManifestInvalidSnafu)?;
            ("add-update", m, 1, true)
        }
        ManifestOp::RemoveUpdate {
            variant,
            arch,
            version,
        } => {
            let mut m = load(path)?;
            let n = m.remove_update(variant, *arch, version);
            ensure!(
                n > 0,
                error::UpdateNotFoundSnafu {
                    variant: variant.to_string(),
                    arch: arch.to_string(),
                    version: version.to_string(),
                }
            );
            ("remove-update", m, n, true)
        }
        ManifestOp::SetWaves {
            variant,
            arch,
            version,
            wave_file,
            start,
        } => {
            let mut m = load(path)?;
            let policy = waves::WavePolicy::from_path(wave_file)
                .context(error::WavePolicySnafu { path: wave_file })?;
            let n = m
                .set_waves(variant, *arch, version, &policy, *start)
                .context(error::ManifestInvalidSnafu)?;
            ensure!(
                n > 0,
                error::UpdateNotFoundSnafu {
                    variant: variant.to_string(),
                    arch: arch.to_string(),
                    version: version.to_string(),
                }
            );
            ("set-waves", m, n, true)
        }
        ManifestOp::SetMaxVersion {
            max_version,
            arch,
            variant,
        } => {
            let mut m = load(path)?;
            let n = m.set_max_version(max_version, *arch, variant.as_ref());
            ("set-max-version", m, n, true)
        }
        ManifestOp::SetMigrations { release_file } => {
            let mut m = load(path)?;
            let release = Release::from_path(release_file)
                .context(error::ReleaseFileSnafu { path: release_file })?;
            m.set_migrations(&release);
            ("set-migrations", m, 1, true)
        }
        ManifestOp::Validate => {
            let m = load(path)?;
            let n = m.updates.len();
            ("validate", m, n, false)
        }
        ManifestOp::Show => {
            let m = load(path)?;
            let n = m.updates.len();
            ("show", m, n, false)
        }
    };
    manifest.validate().context(error::ManifestInvalidSnafu)?;
    if write {
        manifest
            .write_atomic(path)
            .context(error::ManifestFileSnafu { path })?;
    }
    let text = String::from_utf8_lossy(&manifest.to_vec_pretty())
        .trim_end()
        .to_owned();
    let value = serde_json::value::RawValue::from_string(text)
        .context(error::SerializeSnafu { what: "manifest" })?;
    Ok(ManifestOutcome {
        path: path.to_path_buf(),
        operation,
        changed,
        written: write,
        manifest: value,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    /// Issue 11: an edit keeps unknown values byte for byte, in the file and in what `show`
    /// prints (no `1.2345678901234568e29`, no sorted keys).
    #[test]
    fn edits_and_show_keep_unknown_values_exact() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.json");
        std::fs::write(
            &path,
            r#"{"updates": [{"variant": "aws-dev", "arch": "x86_64", "version": "1.0.0",
                "max_version": "1.0.0", "waves": {}, "images": {"boot": "b", "root": "r",
                "hash": "h"}, "build": {"z": 1, "a": 123456789012345678901234567890}}],
                "migrations": {}, "serial": 18446744073709551616}"#,
        )
        .unwrap();
        let op = ManifestOp::SetMaxVersion {
            max_version: "1.1.0".parse().unwrap(),
            arch: None,
            variant: None,
        };
        apply(&path, &op).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        for want in [
            r#""build": {"z": 1, "a": 123456789012345678901234567890}"#,
            r#""serial": 18446744073709551616"#,
            r#""max_version": "1.1.0""#,
        ] {
            assert!(written.contains(want), "{want} not in {written}");
        }
        let shown = apply(&path, &ManifestOp::Show).unwrap();
        assert_eq!(format!("{}\n", shown.manifest.get()), written);
    }
}
