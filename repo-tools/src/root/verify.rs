//! Verifying roots: structure, thresholds, expiry, the rotation rule, and root chains.

use super::{Authority, ThresholdStatus, TopRole, canonical, count_valid};
use crate::error::{self, Result};
use crate::keys;
use jiff::Timestamp;
use serde::Serialize;
use snafu::ensure;
use std::collections::BTreeMap;
use std::fmt;
use tough::schema::key::Key;
use tough::schema::{Root, Signed};

/// One thing wrong with a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "kebab-case")]
pub enum Problem {
    /// A top-level role is missing.
    RoleMissing {
        /// The role.
        role: TopRole,
    },
    /// A role lists fewer keys than its threshold.
    TooFewKeys {
        /// The role.
        role: TopRole,
        /// Keys listed.
        keys: usize,
        /// Its threshold.
        threshold: u64,
    },
    /// A role lists a key ID the key list does not have.
    UnknownKeyId {
        /// The role.
        role: TopRole,
        /// The key ID.
        key_id: String,
    },
    /// A key ID is not the sha256 of its canonical key.
    KeyIdMismatch {
        /// Listed key ID.
        key_id: String,
        /// Computed key ID.
        computed: String,
    },
    /// Not enough valid signatures.
    ThresholdNotMet {
        /// Whose keys.
        authority: Authority,
        /// Version of that root.
        authority_version: u64,
        /// Valid signatures.
        valid: usize,
        /// Needed.
        threshold: u64,
    },
    /// Two signatures carry the same key ID (tough refuses such a file).
    DuplicateSignature {
        /// The key ID.
        key_id: String,
    },
    /// The root has expired.
    Expired {
        /// When.
        expires: Timestamp,
    },
    /// The expiry has fractional seconds (other TUF clients refuse it).
    FractionalExpiry {
        /// The value.
        expires: Timestamp,
    },
    /// The new root is not the previous version plus one.
    VersionNotNext {
        /// Previous root's version.
        previous: u64,
        /// This root's version.
        version: u64,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::RoleMissing { role } => write!(f, "role '{role}' is missing"),
            Problem::TooFewKeys {
                role,
                keys,
                threshold,
            } => write!(
                f,
                "role '{role}' has {keys} key(s) but a threshold of {threshold}: it can never be signed"
            ),
            Problem::UnknownKeyId { role, key_id } => {
                write!(
                    f,
                    "role '{role}' lists key ID {key_id}, which is not in the key list"
                )
            }
            Problem::KeyIdMismatch { key_id, computed } => {
                write!(
                    f,
                    "key ID {key_id} does not match its key (computed {computed})"
                )
            }
            Problem::ThresholdNotMet {
                authority,
                authority_version,
                valid,
                threshold,
            } => {
                let whose = match authority {
                    Authority::This => "its own",
                    Authority::Previous => "the previous root's",
                };
                write!(
                    f,
                    "root threshold not met for {whose} root keys (version {authority_version}): \
                     {valid} valid signature(s), {threshold} required"
                )
            }
            Problem::DuplicateSignature { key_id } => {
                write!(f, "two signatures carry key ID {key_id}")
            }
            Problem::Expired { expires } => write!(f, "expired at {expires}"),
            Problem::FractionalExpiry { expires } => {
                write!(f, "expiry {expires} has fractional seconds")
            }
            Problem::VersionNotNext { previous, version } => write!(
                f,
                "version {version} does not follow previous root version {previous} (must be {})",
                previous + 1
            ),
        }
    }
}

/// A role as a verified root describes it.
#[derive(Debug, Clone, Serialize)]
pub struct RoleSummary {
    /// The role.
    pub role: TopRole,
    /// Its threshold.
    pub threshold: u64,
    /// Its key IDs (hex) with their types.
    pub keys: Vec<KeySummary>,
}

/// A key in a role.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    /// Hex key ID.
    pub key_id: String,
    /// Algorithm.
    pub key_type: &'static str,
}

/// The result of verifying a root.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Root version.
    pub version: u64,
    /// Expiry.
    pub expires: Timestamp,
    /// Whether consistent snapshots are on.
    pub consistent_snapshot: bool,
    /// The roles.
    pub roles: Vec<RoleSummary>,
    /// Signatures by this root's root keys.
    pub this: ThresholdStatus,
    /// Signatures by the previous root's root keys, when given.
    pub previous: Option<ThresholdStatus>,
    /// Everything wrong; empty means valid.
    pub problems: Vec<Problem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Structural problems: roles present, thresholds reachable, key IDs known and correct.
pub fn structure_problems(root: &Root) -> Vec<Problem> {
    let mut problems = Vec::new();
    for role in TopRole::ALL {
        match root.roles.get(&role.role_type()) {
            None => problems.push(Problem::RoleMissing { role }),
            Some(keys) => {
                for id in &keys.keyids {
                    if !root.keys.contains_key(id) {
                        problems.push(Problem::UnknownKeyId {
                            role,
                            key_id: hex::encode(id),
                        });
                    }
                }
                if (keys.keyids.len() as u64) < keys.threshold.get() {
                    problems.push(Problem::TooFewKeys {
                        role,
                        keys: keys.keyids.len(),
                        threshold: keys.threshold.get(),
                    });
                }
            }
        }
    }
    let listed: BTreeMap<String, &Key> = root
        .keys
        .iter()
        .map(|(id, k)| (hex::encode(id), k))
        .collect();
    for (id, key) in listed {
        if let Ok(computed) = keys::key_id_hex(key)
            && computed != id
        {
            problems.push(Problem::KeyIdMismatch {
                key_id: id,
                computed,
            });
        }
    }
    problems
}

/// Verifies a root: structure, its own root threshold, expiry at `now`, whole-second expiry and,
/// with `previous`, the rotation rule (version N+1, signed by a threshold of N's root keys).
pub fn verify(
    root: &Signed<Root>,
    previous: Option<&Signed<Root>>,
    now: Timestamp,
) -> VerifyReport {
    let mut problems = structure_problems(&root.signed);
    let mut seen = Vec::new();
    for sig in &root.signatures {
        let id = hex::encode(&sig.keyid);
        if seen.contains(&id) {
            problems.push(Problem::DuplicateSignature { key_id: id.clone() });
        }
        seen.push(id);
    }
    let this = count_valid(&root.signed, root, Authority::This);
    if !this.met() {
        problems.push(Problem::ThresholdNotMet {
            authority: Authority::This,
            authority_version: this.authority_version,
            valid: this.valid.len(),
            threshold: this.threshold,
        });
    }
    let prev = previous.map(|p| {
        let status = count_valid(&p.signed, root, Authority::Previous);
        if p.signed.version.get() + 1 != root.signed.version.get() {
            problems.push(Problem::VersionNotNext {
                previous: p.signed.version.get(),
                version: root.signed.version.get(),
            });
        }
        if !status.met() {
            problems.push(Problem::ThresholdNotMet {
                authority: Authority::Previous,
                authority_version: status.authority_version,
                valid: status.valid.len(),
                threshold: status.threshold,
            });
        }
        status
    });
    if root.signed.expires <= now {
        problems.push(Problem::Expired {
            expires: root.signed.expires,
        });
    }
    if root.signed.expires.subsec_nanosecond() != 0 {
        problems.push(Problem::FractionalExpiry {
            expires: root.signed.expires,
        });
    }
    let roles = TopRole::ALL
        .iter()
        .filter_map(|role| {
            let keys = root.signed.roles.get(&role.role_type())?;
            Some(RoleSummary {
                role: *role,
                threshold: keys.threshold.get(),
                keys: keys
                    .keyids
                    .iter()
                    .map(|id| KeySummary {
                        key_id: hex::encode(id),
                        key_type: root
                            .signed
                            .keys
                            .get(id)
                            .map_or("unknown", keys::key_type_name),
                    })
                    .collect(),
            })
        })
        .collect();
    VerifyReport {
        version: root.signed.version.get(),
        expires: root.signed.expires,
        consistent_snapshot: root.signed.consistent_snapshot,
        roles,
        this,
        previous: prev,
        problems,
    }
}

/// Verifies a chain of roots `1..=N` (as fetched from a repository): each version k+1 is signed
/// by a threshold of version k's root keys and of its own, versions are consecutive, and the
/// chain passes through `trusted` (same signed content at the trusted version). Expiry is not
/// checked for intermediate roots (TUF 5.3.10 checks only the final one).
pub fn verify_chain(chain: &[(String, Signed<Root>)], trusted: &Signed<Root>) -> Result<()> {
    let trusted_canon = canonical(&trusted.signed)?;
    let mut saw_trusted = false;
    for (i, (name, root)) in chain.iter().enumerate() {
        let expected = i as u64 + 1;
        ensure!(
            root.signed.version.get() == expected,
            error::RootChainSnafu {
                file: name,
                reason: format!(
                    "declares version {} but should be {expected}",
                    root.signed.version
                )
            }
        );
        let own = count_valid(&root.signed, root, Authority::This);
        ensure!(
            own.met(),
            error::RootChainSnafu {
                file: name,
                reason: format!(
                    "only {} valid signature(s) by its own root keys, {} required",
                    own.valid.len(),
                    own.threshold
                )
            }
        );
        if i > 0 {
            let prev = &chain[i - 1].1;
            let by_prev = count_valid(&prev.signed, root, Authority::Previous);
            ensure!(
                by_prev.met(),
                error::RootChainSnafu {
                    file: name,
                    reason: format!(
                        "only {} valid signature(s) by version {}'s root keys, {} required",
                        by_prev.valid.len(),
                        i,
                        by_prev.threshold
                    )
                }
            );
        }
        if root.signed.version == trusted.signed.version {
            ensure!(
                canonical(&root.signed)? == trusted_canon,
                error::RootChainSnafu {
                    file: name,
                    reason: "differs from the trusted root of the same version".to_owned()
                }
            );
            saw_trusted = true;
        }
    }
    ensure!(
        saw_trusted,
        error::RootChainSnafu {
            file: format!("{}.root.json", trusted.signed.version),
            reason: "the trusted root's version is not in the repository's root chain".to_owned()
        }
    );
    Ok(())
}
