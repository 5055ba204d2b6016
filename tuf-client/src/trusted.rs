//! The trusted metadata set: every check of §5.3–§5.6 on bytes already in memory, no I/O (the
//! updater downloads and persists). Modelled on python-tuf's `TrustedMetadataSet`:
//!
//! - metadata is loaded in order root → timestamp → snapshot → targets → delegated targets;
//! - an *intermediate* timestamp or snapshot (expired, or a snapshot whose version does not match
//!   the timestamp) is kept after its error is returned, so that it still serves as the rollback
//!   reference for the next one; it never lets the next role load (`check_final_*`);
//! - expiry is checked against one fixed update start time (§5.1).

use crate::error::{self, Result};
use crate::hash::{self, HashCheck};
use crate::schema::{self, Envelope, MetaFile, Origin, SnapshotRole, TargetsRole, TimestampRole};
use snafu::ensure;
use std::collections::HashMap;
use tough::schema::{RoleType, Root};

/// A verified role with the exact bytes it was read from.
#[derive(Debug, Clone)]
pub(crate) struct Loaded<T> {
    pub(crate) role: T,
    pub(crate) bytes: Vec<u8>,
}

/// What happened to an offered timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampChange {
    /// It became the trusted timestamp.
    Accepted,
    /// §5.4.3.1: same version as the trusted one; discarded. `same_bytes` tells whether its
    /// content was identical.
    EqualVersion { same_bytes: bool },
}

#[derive(Debug)]
pub(crate) struct TrustedSet {
    now: jiff::Timestamp,
    root: Loaded<Root>,
    timestamp: Option<Loaded<TimestampRole>>,
    snapshot: Option<Loaded<SnapshotRole>>,
    targets: HashMap<String, TargetsRole>,
    /// The exact bytes each targets role was verified from.
    targets_bytes: HashMap<String, Vec<u8>>,
}

fn expiry(role: &str, version: u64, expires: jiff::Timestamp, now: jiff::Timestamp) -> Result<()> {
    // "MUST be higher than the fixed update start time".
    ensure!(
        expires > now,
        error::ExpiredSnafu {
            role,
            version,
            expires,
            now,
        }
    );
    Ok(())
}

/// Checks `data` against the length and hashes a METAFILE lists, if any (§5.5.2, §5.6.2).
pub(crate) fn check_metafile(meta: &MetaFile, data: &[u8], what: &str, url: &str) -> Result<()> {
    if let Some(length) = meta.length {
        ensure!(
            data.len() as u64 == length,
            error::LengthMismatchSnafu {
                what,
                url,
                expected: length,
                actual: data.len() as u64,
            }
        );
    }
    if let Some(hashes) = &meta.hashes {
        match hash::check(hashes, data) {
            HashCheck::Match => {}
            HashCheck::Mismatch(algorithm) => {
                return error::HashMismatchSnafu {
                    what,
                    url,
                    algorithm,
                }
                .fail();
            }
            HashCheck::Unsupported(algorithm) => {
                return error::UnsupportedHashSnafu { what, algorithm }.fail();
            }
        }
    }
    Ok(())
}

impl TrustedSet {
    /// §5.2: loads the trusted root. It must be signed by a threshold of its own root keys; its
    /// expiry does not matter yet.
    pub(crate) fn new(root_bytes: &[u8], origin: &str, now: jiff::Timestamp) -> Result<Self> {
        let root = verify_self_signed_root(root_bytes, origin)?;
        Ok(Self {
            now,
            root: Loaded {
                role: root,
                bytes: root_bytes.to_vec(),
            },
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
            targets_bytes: HashMap::new(),
        })
    }

    pub(crate) fn root(&self) -> &Loaded<Root> {
        &self.root
    }

    pub(crate) fn timestamp(&self) -> Option<&Loaded<TimestampRole>> {
        self.timestamp.as_ref()
    }

    pub(crate) fn snapshot(&self) -> Option<&Loaded<SnapshotRole>> {
        self.snapshot.as_ref()
    }

    pub(crate) fn targets(&self, role: &str) -> Option<&TargetsRole> {
        self.targets.get(role)
    }

    /// Names of the targets roles loaded.
    pub(crate) fn targets_role_names(&self) -> Vec<String> {
        self.targets.keys().cloned().collect()
    }

    /// The exact bytes targets role `role` was verified from.
    pub(crate) fn targets_bytes(&self, role: &str) -> Option<&[u8]> {
        self.targets_bytes.get(role).map(Vec::as_slice)
    }

    /// §5.3.4–§5.3.7: accepts `bytes` as root version N+1.
    pub(crate) fn update_root(&mut self, bytes: &[u8], origin: &str) -> Result<()> {
        assert!(self.timestamp.is_none(), "root is updated before timestamp");
        let at = Origin {
            role: "root",
            origin,
        };
        let env = schema::parse_envelope(bytes, "root", at)?;
        // (1) a threshold of the trusted root's root keys ...
        schema::verify_by_root(
            &self.root.role,
            RoleType::Root,
            &env,
            "the trusted root's root",
            at,
        )?;
        let new_root = schema::parse_root(&env, at)?;
        let expected = self.root.role.version.get() + 1;
        ensure!(
            new_root.version.get() == expected,
            error::RootVersionSnafu {
                origin,
                expected,
                found: new_root.version.get(),
            }
        );
        // (2) ... and a threshold of its own root keys.
        schema::verify_by_root(&new_root, RoleType::Root, &env, "its own root", at)?;
        self.root = Loaded {
            role: new_root,
            bytes: bytes.to_vec(),
        };
        Ok(())
    }

    /// §5.3.10: the final root must not be expired.
    pub(crate) fn check_final_root(&self) -> Result<()> {
        let r = &self.root.role;
        expiry("root", r.version.get(), r.expires, self.now)
    }

    /// §5.4.2–§5.4.4. On error, an expired timestamp is still kept as the rollback reference.
    pub(crate) fn update_timestamp(
        &mut self,
        bytes: &[u8],
        origin: &str,
    ) -> Result<TimestampChange> {
        assert!(
            self.snapshot.is_none(),
            "timestamp is updated before snapshot"
        );
        self.check_final_root()?;
        let at = Origin {
            role: "timestamp",
            origin,
        };
        let env = schema::parse_envelope(bytes, "timestamp", at)?;
        schema::verify_by_root(&self.root.role, RoleType::Timestamp, &env, "timestamp", at)?;
        let new = schema::parse_timestamp(&env, at)?;
        if let Some(trusted) = &self.timestamp {
            let (old_v, new_v) = (trusted.role.header.version, new.header.version);
            ensure!(
                new_v >= old_v,
                error::TimestampRollbackSnafu {
                    trusted: old_v,
                    new: new_v,
                }
            );
            if new_v == old_v {
                return Ok(TimestampChange::EqualVersion {
                    same_bytes: trusted.bytes == bytes,
                });
            }
            ensure!(
                new.snapshot.version >= trusted.role.snapshot.version,
                error::SnapshotVersionRollbackSnafu {
                    timestamp: new_v,
                    trusted: trusted.role.snapshot.version,
                    new: new.snapshot.version,
                }
            );
        }
        self.timestamp = Some(Loaded {
            role: new,
            bytes: bytes.to_vec(),
        });
        self.check_final_timestamp()?;
        Ok(TimestampChange::Accepted)
    }

    fn trusted_timestamp(&self) -> &Loaded<TimestampRole> {
        self.timestamp
            .as_ref()
            .expect("snapshot is only loaded after timestamp")
    }

    /// §5.4.4: the trusted timestamp must not be expired.
    pub(crate) fn check_final_timestamp(&self) -> Result<()> {
        let h = self.trusted_timestamp().role.header;
        expiry("timestamp", h.version, h.expires, self.now)
    }

    /// §5.5.2–§5.5.6. `from_datastore`: the bytes were verified in an earlier cycle, so the
    /// timestamp's hashes are not required to match (python-tuf's `trusted=True`); the version
    /// must still match for the snapshot to be final. On error, the snapshot is still kept as the
    /// rollback reference.
    pub(crate) fn update_snapshot(
        &mut self,
        bytes: &[u8],
        origin: &str,
        from_datastore: bool,
    ) -> Result<()> {
        assert!(
            self.targets.is_empty(),
            "snapshot is updated before targets"
        );
        self.check_final_timestamp()?;
        let meta = self.trusted_timestamp().role.snapshot.clone();
        if !from_datastore {
            check_metafile(&meta, bytes, "snapshot metadata", origin)?;
        }
        let at = Origin {
            role: "snapshot",
            origin,
        };
        let env = schema::parse_envelope(bytes, "snapshot", at)?;
        schema::verify_by_root(&self.root.role, RoleType::Snapshot, &env, "snapshot", at)?;
        let new = schema::parse_snapshot(&env, at)?;
        if let Some(trusted) = &self.snapshot {
            for (file, old) in &trusted.role.meta {
                let Some(new_meta) = new.meta.get(file) else {
                    return error::SnapshotRemovedSnafu { file }.fail();
                };
                ensure!(
                    new_meta.version >= old.version,
                    error::SnapshotRollbackSnafu {
                        file,
                        trusted: old.version,
                        new: new_meta.version,
                    }
                );
            }
        }
        self.snapshot = Some(Loaded {
            role: new,
            bytes: bytes.to_vec(),
        });
        self.check_final_snapshot()
    }

    /// §5.5.4, §5.5.6: the trusted snapshot must match the timestamp's version and not be expired.
    pub(crate) fn check_final_snapshot(&self) -> Result<()> {
        let snapshot = self
            .snapshot
            .as_ref()
            .expect("targets are only loaded after snapshot");
        let h = snapshot.role.header;
        expiry("snapshot", h.version, h.expires, self.now)?;
        let expected = self.trusted_timestamp().role.snapshot.version;
        ensure!(
            h.version == expected,
            error::SnapshotVersionSnafu {
                expected,
                found: h.version,
            }
        );
        Ok(())
    }

    /// The snapshot's entry for `role` (`<role>.json`).
    pub(crate) fn snapshot_meta(&self, role: &str) -> Option<&MetaFile> {
        self.snapshot
            .as_ref()
            .and_then(|s| s.role.meta.get(&format!("{role}.json")))
    }

    /// §5.6.2–§5.6.5 for `role`, delegated by `delegator` (`"root"` for the top-level targets).
    pub(crate) fn update_targets(
        &mut self,
        bytes: &[u8],
        role: &str,
        delegator: &str,
        origin: &str,
    ) -> Result<&TargetsRole> {
        self.check_final_snapshot()?;
        let Some(meta) = self.snapshot_meta(role).cloned() else {
            return error::NotInSnapshotSnafu { role }.fail();
        };
        check_metafile(&meta, bytes, &format!("{role} metadata"), origin)?;
        let at = Origin { role, origin };
        let env = schema::parse_envelope(bytes, "targets", at)?;
        self.verify_delegated(&env, role, delegator, at)?;
        let new = schema::parse_targets(&env, at)?;
        ensure!(
            new.header.version == meta.version,
            error::TargetsVersionSnafu {
                role,
                expected: meta.version,
                found: new.header.version,
            }
        );
        expiry(role, new.header.version, new.header.expires, self.now)?;
        self.targets_bytes
            .entry(role.to_owned())
            .or_insert_with(|| bytes.to_vec());
        Ok(self.targets.entry(role.to_owned()).or_insert(new))
    }

    fn verify_delegated(
        &self,
        env: &Envelope,
        role: &str,
        delegator: &str,
        at: Origin<'_>,
    ) -> Result<()> {
        if delegator == "root" {
            return schema::verify_by_root(&self.root.role, RoleType::Targets, env, "targets", at);
        }
        let parent = self
            .targets
            .get(delegator)
            .expect("a delegator is loaded before its delegates");
        let delegation = parent
            .delegations
            .as_ref()
            .and_then(|d| d.roles.iter().find(|r| r.name == role).map(|r| (d, r)));
        let Some((delegations, delegated)) = delegation else {
            return error::MalformedSnafu {
                role,
                origin: at.origin,
                reason: format!("'{delegator}' does not delegate to '{role}'"),
            }
            .fail();
        };
        schema::verify_threshold(
            &delegations.keys,
            &delegated.keys,
            env,
            &format!("'{delegator}' (its delegation to '{role}')"),
            at,
        )
    }
}

/// Parses `bytes` as root metadata signed by a threshold of its own root keys.
pub(crate) fn verify_self_signed_root(bytes: &[u8], origin: &str) -> Result<Root> {
    let at = Origin {
        role: "root",
        origin,
    };
    let env = schema::parse_envelope(bytes, "root", at)?;
    let root = schema::parse_root(&env, at)?;
    schema::verify_by_root(&root, RoleType::Root, &env, "its own root", at)?;
    Ok(root)
}
