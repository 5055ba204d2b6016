//! Update selection: one pure function of the manifest, the host and the policy.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use semver::Version;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use snafu::ResultExt;
use waves::{Eligibility, Seed};

use crate::error::{self, Error, Result};
use crate::manifest::{Manifest, Update};
use crate::names::{Arch, Variant};

/// The running system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Its variant (`VARIANT_ID`).
    pub variant: Variant,
    /// Its architecture.
    pub arch: Arch,
    /// Its running version (`VERSION_ID`).
    pub version: Version,
}

/// `version_lock` from the agent config.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionLock {
    /// Follow the newest allowed release.
    #[default]
    Latest,
    /// Stay on (or go to) exactly this version.
    Locked(Version),
}

impl FromStr for VersionLock {
    type Err = Error;
    /// `"latest"` or a version with an optional leading `v` (Bottlerocket's FriendlyVersion).
    fn from_str(s: &str) -> Result<VersionLock> {
        let t = s.trim();
        if t == "latest" {
            return Ok(VersionLock::Latest);
        }
        let v = t.strip_prefix(['v', 'V']).unwrap_or(t);
        Version::parse(v)
            .map(VersionLock::Locked)
            .context(error::InvalidVersionLockSnafu { value: s })
    }
}

impl fmt::Display for VersionLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionLock::Latest => f.write_str("latest"),
            VersionLock::Locked(v) => write!(f, "v{v}"),
        }
    }
}

impl Serialize for VersionLock {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for VersionLock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How the host chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// `version_lock`.
    pub version_lock: VersionLock,
    /// Skip the wave check (`ignore_waves`, or `--now`).
    pub ignore_waves: bool,
    /// The host's seed.
    pub seed: Seed,
    /// The current time.
    pub now: Timestamp,
    /// A version asked for explicitly (`--image V`): may be a downgrade; waves still apply
    /// unless `ignore_waves`.
    pub forced: Option<Version>,
}

/// The outcome of [`select`]: the chosen update, or why there is none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection<'a> {
    /// Install this update.
    Update(&'a Update),
    /// Nothing newer than the running version (and nothing to pull back to).
    NothingNewer,
    /// Locked to `lock`, and the host already runs it or the manifest does not offer it.
    Locked {
        /// The locked version.
        lock: Version,
    },
    /// The chosen version exists, but this host's wave has not opened yet.
    NotInWaveYet {
        /// The version waiting.
        version: Version,
        /// When this host becomes eligible for it.
        opens_at: Timestamp,
    },
    /// The manifest has no entry at all for this variant/arch.
    NoUpdateForHost,
    /// The forced version is not offered for this host (absent, or above `max_version`).
    ForcedNotFound {
        /// The forced version.
        version: Version,
    },
}

/// Entries for this host's variant and arch whose version is at or below their `max_version`,
/// newest first. No wave check (for `check-update --all`).
pub fn applicable<'a>(manifest: &'a Manifest, host: &Host) -> Vec<&'a Update> {
    let mut v: Vec<&Update> = manifest
        .updates
        .iter()
        .filter(|u| u.variant == host.variant && u.arch == host.arch && u.version <= u.max_version)
        .collect();
    v.sort_by(|a, b| b.version.cmp(&a.version));
    v
}

fn wave(u: &Update, policy: &Policy) -> Eligibility {
    if policy.ignore_waves {
        Eligibility::Eligible
    } else {
        u.waves.eligibility(policy.seed, policy.now)
    }
}

fn offer<'a>(u: &'a Update, policy: &Policy) -> Selection<'a> {
    match wave(u, policy) {
        Eligibility::Eligible => Selection::Update(u),
        Eligibility::NotYet { opens_at } => Selection::NotInWaveYet {
            version: u.version.clone(),
            opens_at,
        },
    }
}

/// Chooses the update for `host` under `policy` (Bottlerocket's rules, fact sheet §1.6):
/// 1. `forced`: the applicable entry with exactly that version (downgrades allowed), subject to
///    waves unless `ignore_waves`; otherwise [`Selection::ForcedNotFound`].
/// 2. `Locked(v)`: nothing if the host runs `v`; else the applicable entry with exactly `v`,
///    subject to waves; otherwise [`Selection::Locked`].
/// 3. `Latest`: among applicable entries whose wave is open, newest first, the first that is
///    newer than the running version **or** whose `max_version` is below the running version
///    (the pull-back rule: hosts above a lowered `max_version` move down to the highest entry at
///    or below it). If none is open but one would qualify, [`Selection::NotInWaveYet`] with the
///    earliest opening time.
pub fn select<'a>(manifest: &'a Manifest, host: &Host, policy: &Policy) -> Selection<'a> {
    if !manifest
        .updates
        .iter()
        .any(|u| u.variant == host.variant && u.arch == host.arch)
    {
        return Selection::NoUpdateForHost;
    }
    let candidates = applicable(manifest, host);
    if let Some(forced) = &policy.forced {
        return match candidates.into_iter().find(|u| u.version == *forced) {
            Some(u) => offer(u, policy),
            None => Selection::ForcedNotFound {
                version: forced.clone(),
            },
        };
    }
    match &policy.version_lock {
        VersionLock::Locked(lock) => {
            if *lock == host.version {
                return Selection::Locked { lock: lock.clone() };
            }
            match candidates.into_iter().find(|u| u.version == *lock) {
                Some(u) => offer(u, policy),
                None => Selection::Locked { lock: lock.clone() },
            }
        }
        VersionLock::Latest => {
            let wanted = |u: &&Update| host.version < u.version || host.version > u.max_version;
            let mut waiting: Option<(Version, Timestamp)> = None;
            for u in candidates.into_iter().filter(wanted) {
                match wave(u, policy) {
                    Eligibility::Eligible => return Selection::Update(u),
                    Eligibility::NotYet { opens_at } => {
                        if waiting.as_ref().is_none_or(|(_, t)| opens_at < *t) {
                            waiting = Some((u.version.clone(), opens_at));
                        }
                    }
                }
            }
            match waiting {
                Some((version, opens_at)) => Selection::NotInWaveYet { version, opens_at },
                None => Selection::NothingNewer,
            }
        }
    }
}

#[cfg(test)]
mod test;
