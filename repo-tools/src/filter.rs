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
pub use abos_repo_core::MANIFEST_TARGET;

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

#[cfg(test)]
mod test {
    use super::*;

    fn manifest() -> Manifest {
        let text = r#"{
          "updates": [
            {"variant":"aws-dev","arch":"x86_64","version":"1.0.0","max_version":"1.2.0","waves":{},
             "images":{"boot":"b-100","root":"r-100","hash":"h-100"}},
            {"variant":"aws-dev","arch":"x86_64","version":"1.1.0","max_version":"1.2.0","waves":{},
             "images":{"boot":"b-110","root":"r-110","hash":"h-110"}},
            {"variant":"aws-dev","arch":"x86_64","version":"1.2.0","max_version":"1.2.0","waves":{},
             "images":{"boot":"b-120","root":"r-120","hash":"h-120"}},
            {"variant":"aws-dev","arch":"aarch64","version":"1.1.0","max_version":"1.2.0","waves":{},
             "images":{"boot":"arm-b","root":"arm-r","hash":"arm-h"}}
          ],
          "migrations": {
            "(1.0.0, 1.1.0)": ["m-a"],
            "(1.1.0, 1.2.0)": ["m-b"]
          }
        }"#;
        Manifest::from_slice(text.as_bytes(), "test").unwrap()
    }

    fn filter(version: Option<&str>) -> Filter {
        Filter {
            variant: "aws-dev".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: version.map(|v| v.parse().unwrap()),
        }
    }

    fn names(sel: &Selection) -> Vec<&str> {
        sel.targets.iter().map(String::as_str).collect()
    }

    #[test]
    fn one_version_keeps_its_images_and_every_migration_reaching_it() {
        let sel = select(&manifest(), &filter(Some("1.1.0"))).unwrap();
        assert_eq!(
            names(&sel),
            ["b-110", "h-110", "m-a", "m-b", "manifest.json", "r-110"]
        );
        let sel = select(&manifest(), &filter(Some("1.0.0"))).unwrap();
        // From 1.1.0 and 1.2.0 down to 1.0.0 uses both migrations (run backwards).
        assert_eq!(
            names(&sel),
            ["b-100", "h-100", "m-a", "m-b", "manifest.json", "r-100"]
        );
    }

    #[test]
    fn no_version_keeps_every_version_of_the_variant_and_arch_only() {
        let sel = select(&manifest(), &filter(None)).unwrap();
        assert_eq!(sel.versions, ["1.0.0", "1.1.0", "1.2.0"]);
        assert_eq!(sel.targets.len(), 9 + 2 + 1);
        assert!(!sel.targets.iter().any(|t| t.starts_with("arm-")));
    }

    #[test]
    fn unknown_version_is_an_error_naming_the_filter() {
        let err = select(&manifest(), &filter(Some("2.0.0"))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the manifest has no update matching aws-dev/x86_64/2.0.0"
        );
    }
}
