//! `manifest.json`: the model, its Bottlerocket-compatible serde, and the editing operations.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use jiff::Timestamp;
use semver::Version;
use serde::Serialize;
use snafu::ResultExt;

use crate::error::{self, Error, Result};
use crate::extra::Extra;
use crate::migrations::{Migrations, Release};
use crate::names::{Arch, TargetName, Variant};

mod agent;
mod de;

pub use agent::RejectedEntry;

/// The three images of an update, as TUF target names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Images {
    /// The BOOT partition image.
    pub boot: TargetName,
    /// The ROOT partition image.
    pub root: TargetName,
    /// The HASH (dm-verity) partition image.
    pub hash: TargetName,
    /// Fields we do not know, kept byte for byte on rewrite.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Images {
    /// Images with no extra fields.
    pub fn new(boot: TargetName, root: TargetName, hash: TargetName) -> Images {
        Images {
            boot,
            root,
            hash,
            extra: Extra::new(),
        }
    }
}

/// One update entry: a release of a variant for an architecture.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Update {
    /// Variant, e.g. `aws-k8s-1.32`.
    pub variant: Variant,
    /// Architecture.
    pub arch: Arch,
    /// This release's version.
    pub version: Version,
    /// Ceiling for this variant/arch: entries above it are never offered, and hosts above it are
    /// moved down to the highest entry at or below it.
    pub max_version: Version,
    /// Rollout waves.
    pub waves: waves::WaveSchedule,
    /// The images.
    pub images: Images,
    /// Fields we do not know (e.g. Bottlerocket's legacy `"status": "Ready"`), kept byte for
    /// byte on rewrite.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Update {
    /// `variant arch version`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {} {}", self.variant, self.arch, self.version)
    }

    fn is(&self, variant: &Variant, arch: Arch, version: &Version) -> bool {
        self.variant == *variant && self.arch == arch && self.version == *version
    }
}

/// The whole `manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Manifest {
    /// Update entries, in insertion order (readers sort).
    pub updates: Vec<Update>,
    /// Migrations between releases.
    pub migrations: Migrations,
    /// Fields we do not know (e.g. legacy `datastore_versions`), kept byte for byte on rewrite.
    #[serde(flatten)]
    pub extra: Extra,
    /// Entries set aside by [`Manifest::from_slice_for_hosts`] because they failed validation
    /// (never written; always empty after [`Manifest::from_slice`]).
    #[serde(skip)]
    pub rejected: Vec<RejectedEntry>,
}

impl Manifest {
    /// An empty manifest: `{"updates": [], "migrations": {}}`.
    pub fn new() -> Manifest {
        Manifest::default()
    }

    /// Parses manifest bytes. `origin` (a path or URL) names the source in errors, and errors
    /// name the failing field (e.g. `updates[0].waves`) and the bad value.
    pub fn from_slice(bytes: &[u8], origin: &str) -> Result<Manifest> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let manifest: Manifest =
            serde_path_to_error::deserialize(&mut de).map_err(|e| Error::ParseManifest {
                origin: origin.to_owned(),
                field: e.path().to_string(),
                source: e.into_inner(),
            })?;
        de.end().map_err(|source| Error::ParseManifest {
            origin: origin.to_owned(),
            field: ".".to_owned(),
            source,
        })?;
        Ok(manifest)
    }

    /// Pretty JSON (two-space indent, trailing newline), as Bottlerocket writes it.
    pub fn to_vec_pretty(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).expect("manifest serialization cannot fail");
        v.push(b'\n');
        v
    }

    /// Reads and parses a manifest file.
    pub fn load(path: &Path) -> Result<Manifest> {
        let bytes = std::fs::read(path).context(error::ReadFileSnafu { path })?;
        Manifest::from_slice(&bytes, &path.display().to_string())
    }

    /// Writes the manifest atomically and durably, mode 0666 less the umask (temp file, fsync,
    /// rename, directory fsync: see `abos-fsio`).
    pub fn write_atomic(&self, path: &Path) -> Result<()> {
        abos_fsio::write_atomic(path, &self.to_vec_pretty(), abos_fsio::PUBLIC)
            .context(error::WriteFileSnafu { path })
    }

    /// Appends an update with empty waves, using Bottlerocket's `max_version` rule: if none is
    /// given, `max(version, updates[0].max_version)` (the first entry, whatever its
    /// variant/arch; `version` for an empty manifest); then every existing entry with the same
    /// variant **and** arch gets that `max_version`. Unlike Bottlerocket, adding an entry that
    /// already exists (same variant, arch, version) is an error.
    pub fn add_update(
        &mut self,
        variant: Variant,
        arch: Arch,
        version: Version,
        max_version: Option<Version>,
        images: Images,
    ) -> Result<()> {
        if self.updates.iter().any(|u| u.is(&variant, arch, &version)) {
            return error::DuplicateUpdateSnafu {
                update: format!("{variant} {arch} {version}"),
            }
            .fail();
        }
        let max_version = match max_version {
            Some(m) => m,
            None => match self.updates.first() {
                Some(first) => std::cmp::max(&version, &first.max_version).clone(),
                None => version.clone(),
            },
        };
        for u in self
            .updates
            .iter_mut()
            .filter(|u| u.variant == variant && u.arch == arch)
        {
            u.max_version = max_version.clone();
        }
        self.updates.push(Update {
            variant,
            arch,
            version,
            max_version,
            waves: waves::WaveSchedule::new(),
            images,
            extra: Extra::new(),
        });
        Ok(())
    }

    /// Removes every entry with this variant, arch and version; returns how many. `max_version`
    /// of the others is left as it is (as Bottlerocket).
    pub fn remove_update(&mut self, variant: &Variant, arch: Arch, version: &Version) -> usize {
        let before = self.updates.len();
        self.updates.retain(|u| !u.is(variant, arch, version));
        before - self.updates.len()
    }

    /// Replaces the waves of every entry with this variant, arch and version by `policy`
    /// applied at `start` (Bottlerocket's key rule, see [`waves::WavePolicy::schedule`]); then
    /// checks that every entry's waves are in order. Returns the number of entries changed
    /// (0 is not an error, as in Bottlerocket).
    pub fn set_waves(
        &mut self,
        variant: &Variant,
        arch: Arch,
        version: &Version,
        policy: &waves::WavePolicy,
        start: Timestamp,
    ) -> Result<usize> {
        let schedule = policy.schedule(start).context(error::SetWavesSnafu {
            update: format!("{variant} {arch} {version}"),
        })?;
        let mut count = 0;
        for u in self
            .updates
            .iter_mut()
            .filter(|u| u.is(variant, arch, version))
        {
            u.waves = schedule.clone();
            count += 1;
        }
        self.check_waves()?;
        Ok(count)
    }

    /// Sets `max_version` on every entry matching the optional arch and variant filters;
    /// returns how many entries matched.
    pub fn set_max_version(
        &mut self,
        max: &Version,
        arch: Option<Arch>,
        variant: Option<&Variant>,
    ) -> usize {
        let mut count = 0;
        for u in self
            .updates
            .iter_mut()
            .filter(|u| arch.is_none_or(|a| u.arch == a) && variant.is_none_or(|v| u.variant == *v))
        {
            u.max_version = max.clone();
            count += 1;
        }
        count
    }

    /// Replaces the migrations wholesale with the release file's (as Bottlerocket).
    pub fn set_migrations(&mut self, release: &Release) {
        self.migrations = release.migrations.clone();
    }

    /// The migrations to run from `from` to `to` (fact sheet §2.5; see [`Migrations::path`]).
    pub fn find_migrations(&self, from: &Version, to: &Version) -> Result<Vec<TargetName>> {
        self.migrations.path(from, to)
    }

    fn check_waves(&self) -> Result<()> {
        for u in &self.updates {
            u.waves.validate().context(error::WavesUnorderedSnafu {
                update: u.describe(),
            })?;
        }
        Ok(())
    }

    /// Checks the manifest's rules, stopping at the first problem:
    /// 1. every entry's waves open in ascending time order (Bottlerocket's rule), and no wave key
    ///    is above 2048 (seeds are 0–2047 and 2048 closes the last wave; a larger key never
    ///    selects a wave, so it is a typo or a percentage mistaken for a seed);
    /// 2. no two entries share variant, arch and version;
    /// 3. entries of one variant/arch agree on `max_version`, and at least one of them is at or
    ///    below it (entries above it are withdrawn releases, which is allowed);
    /// 4. the migration chain is unbroken: every version that appears (as an update or as a
    ///    migration endpoint) has a migration path to the next higher one.
    ///
    /// Hosts apply the same rules entry by entry ([`Manifest::from_slice_for_hosts`]).
    pub fn validate(&self) -> Result<()> {
        match self.problems().into_iter().next() {
            Some(p) => Err(p.error),
            None => Ok(()),
        }
    }

    /// Every rule violation, in [`Manifest::validate`]'s order, with the entries it concerns.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut out = Vec::new();
        for (index, u) in self.updates.iter().enumerate() {
            if let Err(e) = u.waves.validate().context(error::WavesUnorderedSnafu {
                update: u.describe(),
            }) {
                out.push(Problem::entries(vec![index], e));
            } else if let Some((key, _)) = u.waves.iter().find(|(k, _)| *k > waves::MAX_SEED) {
                out.push(Problem::entries(
                    vec![index],
                    Error::WaveKeyOutOfRange {
                        update: u.describe(),
                        key,
                    },
                ));
            }
        }

        let mut seen: HashMap<(&Variant, Arch, &Version), usize> = HashMap::new();
        for (index, u) in self.updates.iter().enumerate() {
            if let Some(first) = seen.insert((&u.variant, u.arch, &u.version), index) {
                out.push(Problem::entries(
                    vec![first, index],
                    Error::DuplicateEntry {
                        index,
                        first,
                        update: u.describe(),
                    },
                ));
            }
        }

        let mut groups: BTreeMap<(&Variant, Arch), Vec<(usize, &Update)>> = BTreeMap::new();
        for (index, u) in self.updates.iter().enumerate() {
            groups
                .entry((&u.variant, u.arch))
                .or_default()
                .push((index, u));
        }
        for ((variant, arch), entries) in &groups {
            let indices = || entries.iter().map(|(i, _)| *i).collect::<Vec<_>>();
            let first = entries[0].1;
            if let Some((_, other)) = entries
                .iter()
                .find(|(_, u)| u.max_version != first.max_version)
            {
                out.push(Problem::entries(
                    indices(),
                    Error::MaxVersionMismatch {
                        group: format!("{variant} {arch}"),
                        first: format!("{} has {}", first.version, first.max_version),
                        other: format!("{} has {}", other.version, other.max_version),
                    },
                ));
            } else if entries.iter().all(|(_, u)| u.version > u.max_version) {
                let lowest = entries
                    .iter()
                    .map(|(_, u)| &u.version)
                    .min()
                    .expect("non-empty");
                out.push(Problem::entries(
                    indices(),
                    Error::NothingUnderMaxVersion {
                        group: format!("{variant} {arch}"),
                        max_version: first.max_version.clone(),
                        lowest: lowest.clone(),
                    },
                ));
            }
        }

        let mut versions: BTreeSet<&Version> = self.updates.iter().map(|u| &u.version).collect();
        for (from, to, _) in self.migrations.iter() {
            versions.insert(from);
            versions.insert(to);
        }
        let versions: Vec<&Version> = versions.into_iter().collect();
        for pair in versions.windows(2) {
            if let Err(source) = self.migrations.path(pair[0], pair[1]) {
                out.push(Problem {
                    entries: Vec::new(),
                    error: Error::BrokenMigrationChain {
                        from: pair[0].clone(),
                        to: pair[1].clone(),
                        source: Box::new(source),
                    },
                });
                // One gap is enough: the rest of the chain is judged against it.
                break;
            }
        }
        out
    }
}

/// One broken rule and the entries (indices into `updates`) it concerns; no entries means the
/// problem is the manifest's as a whole (the migration chain).
#[derive(Debug)]
pub(crate) struct Problem {
    pub(crate) entries: Vec<usize>,
    pub(crate) error: Error,
}

impl Problem {
    fn entries(entries: Vec<usize>, error: Error) -> Problem {
        Problem { entries, error }
    }
}

#[cfg(test)]
mod test;
