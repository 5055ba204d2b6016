//! The root of trust: building, editing, signing, merging and verifying `root.json`.
//!
//! The ceremony as practised: one person edits the root (`init`, `add-key`, `set-threshold`,
//! `expire`, versions) and hands a copy to each key holder; each holder signs their own copy on
//! their own machine; the copies are merged (`merge-signatures`) and the result is checked
//! against every threshold (`verify`). Any edit clears existing signatures, since they no longer
//! cover the content.
//!
//! Rotation: root N+1 must be signed by a threshold of root N's root keys (cross-signing) *and* by
//! a threshold of its own root keys; a client holding root N fetches `N+1.root.json` and checks
//! both (TUF 5.3.4). [`verify`] with a previous root checks exactly that.
//!
//! Files are written as pretty JSON with sorted keys; signatures cover the canonical form
//! (olpc-cjson) of `signed`, as tough and python-tuf compute it.

use crate::error::{self, Result};
use crate::keys::{self, Signer};
use aws_lc_rs::rand::SystemRandom;
use jiff::Timestamp;
use olpc_cjson::CanonicalFormatter;
use serde::{Serialize, Serializer};
use snafu::{OptionExt, ResultExt, ensure};
use std::collections::HashMap;
use std::fmt;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{RoleKeys, RoleType, Root, Signature, Signed};

mod verify;
pub use verify::{
    KeySummary, Problem, RoleSummary, VerifyReport, structure_problems, verify, verify_chain,
};

/// The TUF spec version written into new roots.
pub const SPEC_VERSION: &str = "1.0.0";

/// A top-level TUF role (the ones a root assigns keys to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum)]
pub enum TopRole {
    /// `root`
    Root,
    /// `snapshot`
    Snapshot,
    /// `targets`
    Targets,
    /// `timestamp`
    Timestamp,
}

impl TopRole {
    /// All four, in a stable order.
    pub const ALL: [TopRole; 4] = [
        TopRole::Root,
        TopRole::Snapshot,
        TopRole::Targets,
        TopRole::Timestamp,
    ];

    /// tough's role type.
    pub fn role_type(self) -> RoleType {
        match self {
            TopRole::Root => RoleType::Root,
            TopRole::Snapshot => RoleType::Snapshot,
            TopRole::Targets => RoleType::Targets,
            TopRole::Timestamp => RoleType::Timestamp,
        }
    }

    /// The role's name as written in root.json.
    pub fn as_str(self) -> &'static str {
        match self {
            TopRole::Root => "root",
            TopRole::Snapshot => "snapshot",
            TopRole::Targets => "targets",
            TopRole::Timestamp => "timestamp",
        }
    }
}

impl fmt::Display for TopRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for TopRole {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// How the repository names its metadata and target files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SnapshotNaming {
    /// `N.root.json`, `V.snapshot.json`, `V.targets.json`, targets as `<sha256>.<name>` (what
    /// Bottlerocket uses; the default).
    Consistent,
    /// `snapshot.json`, `targets.json`, targets by plain name.
    Plain,
}

/// Whether signing may leave a threshold unmet (a partial signature, to be merged later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThresholdPolicy {
    /// Refuse to write unless every threshold is met (the default).
    Enforce,
    /// Write anyway and report what is missing (`--ignore-threshold`).
    AllowIncomplete,
}

/// Reads and parses a root file.
pub fn load(path: &Path) -> Result<Signed<Root>> {
    let bytes = crate::fsio::read(path)?;
    parse(&bytes, &path.display().to_string())
}

/// Parses root bytes; `origin` names them in errors.
pub fn parse(bytes: &[u8], origin: &str) -> Result<Signed<Root>> {
    serde_json::from_slice(bytes).context(error::ParseRootSnafu { origin })
}

/// The canonical JSON (olpc-cjson) of any serialisable value.
pub fn canonical<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut data, CanonicalFormatter::new());
    value
        .serialize(&mut ser)
        .context(error::CanonicalJsonSnafu)?;
    Ok(data)
}

/// The bytes written to disk: pretty JSON with sorted keys and a final newline. (Canonical JSON
/// itself is not valid JSON when it holds PEM keys: olpc-cjson leaves newlines unescaped.)
pub fn to_file_bytes(root: &Signed<Root>) -> Result<Vec<u8>> {
    let value = serde_json::to_value(root).context(error::CanonicalJsonSnafu)?;
    let mut out = serde_json::to_vec_pretty(&sorted(value)).context(error::CanonicalJsonSnafu)?;
    out.push(b'\n');
    Ok(out)
}

/// Recursively sorts object keys (the workspace enables serde_json's `preserve_order`, so maps
/// keep insertion order and `HashMap` iteration order would otherwise leak into files).
fn sorted(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Writes a root file atomically and durably.
pub fn save(path: &Path, root: &Signed<Root>) -> Result<()> {
    crate::fsio::write_atomic(path, &to_file_bytes(root)?)
}

/// Creates a new, unsigned root with no keys and threshold 1 for every role.
pub fn new_root(version: NonZeroU64, naming: SnapshotNaming, expires: Timestamp) -> Signed<Root> {
    let roles = TopRole::ALL
        .iter()
        .map(|r| {
            (
                r.role_type(),
                RoleKeys {
                    keyids: Vec::new(),
                    threshold: NonZeroU64::MIN,
                    _extra: HashMap::new(),
                },
            )
        })
        .collect();
    Signed {
        signed: Root {
            spec_version: SPEC_VERSION.to_owned(),
            consistent_snapshot: naming == SnapshotNaming::Consistent,
            version,
            expires: crate::expiry::whole_seconds(expires),
            keys: HashMap::new(),
            roles,
            _extra: HashMap::new(),
        },
        signatures: Vec::new(),
    }
}

/// Adds `key` (if not yet listed) and assigns it to each of `roles`. Returns the key ID (hex).
pub fn add_key(root: &mut Signed<Root>, key: Key, roles: &[TopRole]) -> Result<String> {
    let existing = root
        .signed
        .keys
        .iter()
        .find(|(_, k)| **k == key)
        .map(|(id, _)| id.clone());
    let id = match existing {
        Some(id) => id,
        None => {
            let id = keys::key_id(&key)?;
            root.signed.keys.insert(id.clone(), key);
            id
        }
    };
    for role in roles {
        let entry = root
            .signed
            .roles
            .entry(role.role_type())
            .or_insert_with(|| RoleKeys {
                keyids: Vec::new(),
                threshold: NonZeroU64::MIN,
                _extra: HashMap::new(),
            });
        if !entry.keyids.contains(&id) {
            entry.keyids.push(id.clone());
        }
    }
    root.signatures.clear();
    Ok(hex::encode(&id))
}

/// Removes a key ID from one role, or (without a role) from every role and from the key list.
pub fn remove_key(root: &mut Signed<Root>, key_id: &str, role: Option<TopRole>) -> Result<()> {
    let id: Decoded<Hex> = key_id
        .parse()
        .ok()
        .context(error::BadKeyIdSnafu { key_id })?;
    let in_keys = root.signed.keys.contains_key(&id);
    let in_role = |r: &RoleKeys| r.keyids.contains(&id);
    match role {
        Some(role) => {
            let entry = root
                .signed
                .roles
                .get_mut(&role.role_type())
                .filter(|r| in_role(r))
                .context(error::KeyNotInRoleSnafu { key_id, role })?;
            entry.keyids.retain(|k| *k != id);
        }
        None => {
            ensure!(
                in_keys || root.signed.roles.values().any(in_role),
                error::KeyNotInRootSnafu { key_id }
            );
            for entry in root.signed.roles.values_mut() {
                entry.keyids.retain(|k| *k != id);
            }
            root.signed.keys.remove(&id);
        }
    }
    root.signatures.clear();
    Ok(())
}

/// Sets a role's threshold.
pub fn set_threshold(root: &mut Signed<Root>, role: TopRole, threshold: NonZeroU64) {
    root.signed
        .roles
        .entry(role.role_type())
        .and_modify(|r| r.threshold = threshold)
        .or_insert_with(|| RoleKeys {
            keyids: Vec::new(),
            threshold,
            _extra: HashMap::new(),
        });
    root.signatures.clear();
}

/// Sets the expiry (truncated to whole seconds).
pub fn set_expires(root: &mut Signed<Root>, expires: Timestamp) {
    root.signed.expires = crate::expiry::whole_seconds(expires);
    root.signatures.clear();
}

/// Sets the version.
pub fn set_version(root: &mut Signed<Root>, version: NonZeroU64) {
    root.signed.version = version;
    root.signatures.clear();
}

/// Increments the version.
pub fn bump_version(root: &mut Signed<Root>) -> Result<NonZeroU64> {
    let next = root
        .signed
        .version
        .checked_add(1)
        .context(error::VersionOverflowSnafu)?;
    set_version(root, next);
    Ok(next)
}

/// Which root's keys made a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Authority {
    /// The root being signed.
    This,
    /// The previous root (cross-signing for rotation).
    Previous,
}

/// How many valid root-role signatures a document carries from one root's point of view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdStatus {
    /// Whose keys are counted.
    pub authority: Authority,
    /// The version of the root whose keys are counted.
    pub authority_version: u64,
    /// Its root-role threshold.
    pub threshold: u64,
    /// Key IDs (hex) with a valid signature.
    pub valid: Vec<String>,
}

impl ThresholdStatus {
    /// Whether the threshold is met.
    pub fn met(&self) -> bool {
        self.valid.len() as u64 >= self.threshold
    }
}

/// Counts signatures on `doc` that are valid for `authority`'s root role, by asking tough to
/// verify each signature alone against a threshold of one (tough's own verification code, not a
/// re-implementation).
pub fn count_valid(authority: &Root, doc: &Signed<Root>, who: Authority) -> ThresholdStatus {
    let threshold = authority
        .roles
        .get(&RoleType::Root)
        .map_or(0, |r| r.threshold.get());
    let mut single = authority.clone();
    if let Some(r) = single.roles.get_mut(&RoleType::Root) {
        r.threshold = NonZeroU64::MIN;
    }
    let mut valid = Vec::new();
    for sig in &doc.signatures {
        let one = Signed {
            signed: doc.signed.clone(),
            signatures: vec![sig.clone()],
        };
        let id = hex::encode(&sig.keyid);
        if single.verify_role(&one).is_ok() && !valid.contains(&id) {
            valid.push(id);
        }
    }
    ThresholdStatus {
        authority: who,
        authority_version: authority.version.get(),
        threshold,
        valid,
    }
}

/// What `sign` did.
#[derive(Debug, Clone, Serialize)]
pub struct SignReport {
    /// Key IDs (hex) that signed in this run.
    pub signed_with: Vec<String>,
    /// This root's threshold status after signing.
    pub this: ThresholdStatus,
    /// The previous root's status, when cross-signing.
    pub previous: Option<ThresholdStatus>,
    /// True if every threshold is met.
    pub complete: bool,
}

/// Signs `root` with each signer that holds a root key of `root` or (cross-signing) of
/// `previous`. Existing signatures by other keys are kept (a signature by the same key ID is
/// replaced). With [`ThresholdPolicy::Enforce`] an unmet threshold is an error and `root` is left
/// unchanged.
pub async fn sign(
    root: &mut Signed<Root>,
    signers: &[Signer],
    previous: Option<&Signed<Root>>,
    policy: ThresholdPolicy,
    now: Timestamp,
) -> Result<SignReport> {
    ensure!(
        root.signed.expires > now,
        error::RootExpiredSnafu {
            version: root.signed.version.get(),
            expires: root.signed.expires
        }
    );
    crate::expiry::ensure_whole_seconds(root.signed.expires, "root")?;
    if policy == ThresholdPolicy::Enforce
        && let Some(problem) = structure_problems(&root.signed).into_iter().next()
    {
        return error::UnstableRootSnafu {
            problem: problem.to_string(),
        }
        .fail();
    }
    if let Some(prev) = previous {
        ensure!(
            root.signed.version.get() == prev.signed.version.get() + 1,
            error::CrossSignVersionSnafu {
                previous: prev.signed.version.get(),
                version: root.signed.version.get()
            }
        );
    }
    let data = canonical(&root.signed)?;
    let rng = SystemRandom::new();
    let mut new_sigs: Vec<Signature> = Vec::new();
    let mut signed_with = Vec::new();
    for signer in signers {
        let mut ids: Vec<Decoded<Hex>> = Vec::new();
        for authority in std::iter::once(&root.signed).chain(previous.map(|p| &p.signed)) {
            if let Some(id) = root_key_id(authority, &signer.public)
                && !ids.contains(&id)
            {
                ids.push(id);
            }
        }
        ensure!(
            !ids.is_empty(),
            error::NotARootKeySnafu {
                key: signer.url.to_string(),
                key_id: keys::key_id_hex(&signer.public)?,
            }
        );
        let sig = signer.key.sign(&data, &rng).await.map_err(|source| {
            // Token and KMS failures keep their own error (and exit code).
            match source.downcast::<key_source::Error>() {
                Ok(ours) => keys::key_error(*ours),
                Err(source) => error::Error::Sign {
                    key: signer.url.to_string(),
                    source,
                },
            }
        })?;
        for id in ids {
            signed_with.push(hex::encode(&id));
            new_sigs.retain(|s| s.keyid != id);
            new_sigs.push(Signature {
                keyid: id,
                sig: sig.clone().into(),
            });
        }
    }
    let mut candidate = root.clone();
    candidate
        .signatures
        .retain(|old| !new_sigs.iter().any(|n| n.keyid == old.keyid));
    candidate.signatures.extend(new_sigs);

    let this = count_valid(&candidate.signed, &candidate, Authority::This);
    let prev = previous.map(|p| count_valid(&p.signed, &candidate, Authority::Previous));
    let complete = this.met() && prev.as_ref().is_none_or(ThresholdStatus::met);
    if policy == ThresholdPolicy::Enforce {
        for status in std::iter::once(&this).chain(prev.as_ref()) {
            ensure!(
                status.met(),
                error::ThresholdNotMetSnafu {
                    authority: status.authority,
                    authority_version: status.authority_version,
                    valid: status.valid.len(),
                    threshold: status.threshold,
                }
            );
        }
    }
    *root = candidate;
    Ok(SignReport {
        signed_with,
        this,
        previous: prev,
        complete,
    })
}

/// The key ID under which `authority` lists `key` in its root role, if it does.
fn root_key_id(authority: &Root, key: &Key) -> Option<Decoded<Hex>> {
    let role = authority.roles.get(&RoleType::Root)?;
    authority
        .keys
        .iter()
        .find(|(id, k)| *k == key && role.keyids.contains(id))
        .map(|(id, _)| id.clone())
}

/// What `merge-signatures` produced.
#[derive(Debug, Clone, Serialize)]
pub struct MergeReport {
    /// Number of input files.
    pub inputs: usize,
    /// Distinct valid signatures in the result.
    pub signatures: usize,
    /// This root's threshold status.
    pub this: ThresholdStatus,
    /// The previous root's status, when given.
    pub previous: Option<ThresholdStatus>,
    /// True if every threshold is met.
    pub complete: bool,
}

/// Merges the signatures of several copies of the same root. Every copy must have the same
/// signed content; every signature must verify (against this root, or against `previous` for
/// keys only the previous root lists).
pub fn merge(
    inputs: &[(PathBuf, Signed<Root>)],
    previous: Option<&Signed<Root>>,
) -> Result<(Signed<Root>, MergeReport)> {
    let (first_path, first) = inputs.first().context(error::NothingToMergeSnafu)?;
    let reference = canonical(&first.signed)?;
    let mut merged = Signed {
        signed: first.signed.clone(),
        signatures: Vec::new(),
    };
    for (path, copy) in inputs {
        ensure!(
            canonical(&copy.signed)? == reference,
            error::MergeMismatchSnafu {
                path,
                first: first_path
            }
        );
        for sig in &copy.signatures {
            let id = hex::encode(&sig.keyid);
            let one = Signed {
                signed: copy.signed.clone(),
                signatures: vec![sig.clone()],
            };
            let authority = if copy.signed.keys.contains_key(&sig.keyid) {
                &copy.signed
            } else if let Some(prev) = previous.filter(|p| p.signed.keys.contains_key(&sig.keyid)) {
                &prev.signed
            } else {
                return error::UnknownSignatureKeySnafu { path, key_id: id }.fail();
            };
            let mut single = authority.clone();
            if let Some(r) = single.roles.get_mut(&RoleType::Root) {
                r.threshold = NonZeroU64::MIN;
            }
            ensure!(
                single.verify_role(&one).is_ok(),
                error::BadSignatureSnafu { path, key_id: id }
            );
            if !merged.signatures.iter().any(|s| s.keyid == sig.keyid) {
                merged.signatures.push(sig.clone());
            }
        }
    }
    let this = count_valid(&merged.signed, &merged, Authority::This);
    let prev = previous.map(|p| count_valid(&p.signed, &merged, Authority::Previous));
    let complete = this.met() && prev.as_ref().is_none_or(ThresholdStatus::met);
    let report = MergeReport {
        inputs: inputs.len(),
        signatures: merged.signatures.len(),
        this,
        previous: prev,
        complete,
    };
    Ok((merged, report))
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::keys::{KeyType, RsaBits};

    fn far() -> Timestamp {
        "2999-01-01T00:00:00Z".parse().unwrap()
    }
    fn now() -> Timestamp {
        "2030-01-01T00:00:00Z".parse().unwrap()
    }

    fn signer(dir: &Path, name: &str) -> Signer {
        let g = keys::generate(KeyType::Ed25519, RsaBits::B2048).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, &g.private).unwrap();
        keys::load_signer(&path).unwrap()
    }

    #[tokio::test]
    async fn edits_clear_signatures_and_file_bytes_are_stable() {
        let dir = tempfile::tempdir().unwrap();
        let k = signer(dir.path(), "k");
        let mut root = new_root(NonZeroU64::MIN, SnapshotNaming::Consistent, far());
        add_key(&mut root, k.public.clone(), &TopRole::ALL).unwrap();
        sign(
            &mut root,
            std::slice::from_ref(&k),
            None,
            ThresholdPolicy::Enforce,
            now(),
        )
        .await
        .unwrap();
        assert_eq!(root.signatures.len(), 1);
        assert!(verify(&root, None, now()).ok());
        let bytes = to_file_bytes(&root).unwrap();
        assert_eq!(to_file_bytes(&parse(&bytes, "x").unwrap()).unwrap(), bytes);
        set_threshold(&mut root, TopRole::Snapshot, NonZeroU64::MIN);
        assert!(root.signatures.is_empty());
    }

    #[tokio::test]
    async fn unstable_root_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let k = signer(dir.path(), "k");
        let mut root = new_root(NonZeroU64::MIN, SnapshotNaming::Consistent, far());
        add_key(&mut root, k.public.clone(), &[TopRole::Root]).unwrap();
        let err = sign(&mut root, &[k], None, ThresholdPolicy::Enforce, now())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("can never be signed"), "{err}");
    }

    #[test]
    fn problems_render() {
        let p = Problem::TooFewKeys {
            role: TopRole::Targets,
            keys: 1,
            threshold: 2,
        };
        assert_eq!(
            p.to_string(),
            "role 'targets' has 1 key(s) but a threshold of 2: it can never be signed"
        );
    }
}
