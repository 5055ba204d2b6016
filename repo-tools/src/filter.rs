//! Choosing which targets a filtered mirror copies (pure: manifest + filter in, names out).
//!
//! A filter `variant/arch[/version]` keeps `manifest.json`, the three images of each matching
//! update, and the migrations that take any other listed version of that variant/arch to it
//! (both directions use the same list, per Bottlerocket's migration rule). Without a version,
//! every version of the variant/arch is kept.

use crate::error::{self, Result};
use serde::Serialize;
use snafu::ensure;
use std::collections::BTreeSet;
use std::fmt;
use update_metadata::{Arch, Manifest, Variant, Version};

/// The manifest's own target name.
pub const MANIFEST_TARGET: &str = "manifest.json";

/// Which part of a repository to mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    /// Variant, e.g. `aws-k8s-1.31`.
    pub variant: Variant,
    /// Architecture.
    pub arch: Arch,
    /// One version, or every version when `None`.
    pub version: Option<Version>,
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.variant, self.arch)?;
        if let Some(v) = &self.version {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// The selection and anything worth telling the operator about it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Selection {
    /// Target names to copy.
    pub targets: BTreeSet<String>,
    /// Versions matched.
    pub versions: Vec<String>,
    /// Notes, e.g. a version from which no migration chain reaches the selected one.
    pub notes: Vec<String>,
}

/// The string form of one of update-metadata's serde-as-string types.
fn text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

/// Selects the targets for `filter` from `manifest`.
pub fn select(manifest: &Manifest, filter: &Filter) -> Result<Selection> {
    let host_updates: Vec<_> = manifest
        .updates
        .iter()
        .filter(|u| u.variant == filter.variant && u.arch == filter.arch)
        .collect();
    let chosen: Vec<_> = host_updates
        .iter()
        .filter(|u| filter.version.as_ref().is_none_or(|v| &u.version == v))
        .collect();
    ensure!(
        !chosen.is_empty(),
        error::NothingMatchesSnafu {
            filter: filter.to_string()
        }
    );
    let mut sel = Selection::default();
    sel.targets.insert(MANIFEST_TARGET.to_owned());
    for update in &chosen {
        sel.versions.push(update.version.to_string());
        for image in [
            &update.images.boot,
            &update.images.root,
            &update.images.hash,
        ] {
            sel.targets.insert(text(image));
        }
        for other in &host_updates {
            if other.version == update.version {
                continue;
            }
            match manifest.find_migrations(&other.version, &update.version) {
                Ok(names) => sel.targets.extend(names.iter().map(text)),
                Err(e) => sel.notes.push(format!(
                    "no migration chain between {} and {}: {e}",
                    other.version, update.version
                )),
            }
        }
    }
    sel.versions.sort();
    sel.versions.dedup();
    Ok(sel)
}
