//! Metadata parsing and signature checks.
//!
//! Signatures are checked by tough (`Root::verify_role`: key ids must be unique among the
//! signatures, each key counts once, threshold) over the canonical JSON of the `signed` object
//! *as received* (parsed into a `serde_json::Value`, never through a typed round trip, so fields
//! this client does not model are still covered). Root metadata is read with tough's `Root`
//! (keys, key-id check, role thresholds). Timestamp, snapshot and targets are read into this
//! module's own types, because tough's `Hashes` requires SHA-256 and the TUF format (§4.4, §4.5)
//! allows any non-empty set of hashes.

use crate::error::{self, Result};
use crate::hash::Hashes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use snafu::{ResultExt, ensure};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::num::NonZeroU64;
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::Key;
use tough::schema::{Role, RoleKeys, RoleType, Root, Signature, Signed};

/// Names of the top-level roles (never allowed as delegated role names).
pub(crate) const TOP_LEVEL: [&str; 4] = ["root", "timestamp", "snapshot", "targets"];

/// A metadata file split into its signed part (as received) and its signatures.
#[derive(Debug, Clone)]
pub(crate) struct Envelope {
    pub(crate) signed: Value,
    pub(crate) signatures: Vec<Signature>,
}

/// Where a piece of metadata came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub(crate) role: &'a str,
    pub(crate) origin: &'a str,
}

impl Origin<'_> {
    fn malformed(&self, reason: impl Into<String>) -> error::Error {
        error::Error::Malformed {
            role: self.role.to_owned(),
            origin: self.origin.to_owned(),
            reason: reason.into(),
        }
    }
}

/// Parses the envelope and checks `signed._type` and `signed.spec_version`.
pub(crate) fn parse_envelope(bytes: &[u8], kind: &str, at: Origin<'_>) -> Result<Envelope> {
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| at.malformed(format!("not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(at.malformed("not a JSON object"));
    };
    let signed = map
        .remove("signed")
        .ok_or_else(|| at.malformed("no 'signed' object"))?;
    let signatures = map
        .remove("signatures")
        .ok_or_else(|| at.malformed("no 'signatures' list"))?;
    let signatures: Vec<Signature> = serde_json::from_value(signatures)
        .map_err(|e| at.malformed(format!("bad 'signatures': {e}")))?;
    let found = signed.get("_type").and_then(Value::as_str).unwrap_or("");
    ensure!(
        found == kind,
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: format!("_type is '{found}', expected '{kind}'"),
        }
    );
    let spec = signed
        .get("spec_version")
        .and_then(Value::as_str)
        .unwrap_or("");
    let parts: Vec<&str> = spec.split('.').collect();
    ensure!(
        (2..=3).contains(&parts.len())
            && parts[0] == "1"
            && parts.iter().all(|p| p.parse::<u64>().is_ok()),
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: format!("spec_version '{spec}' is not a supported 1.x version"),
        }
    );
    Ok(Envelope { signed, signatures })
}

/// The signed object as tough's `Role`, so that tough's `verify_role` signs over the canonical
/// form of the JSON as received.
struct Payload<'a>(&'a Value);

impl Serialize for Payload<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl Role for Payload<'_> {
    // The synthetic root built in `verify_threshold` lists the keys under this role type.
    const TYPE: RoleType = RoleType::Targets;
    fn expires(&self) -> jiff::Timestamp {
        jiff::Timestamp::MAX
    }
    fn version(&self) -> NonZeroU64 {
        NonZeroU64::MIN
    }
    fn filename(&self, _consistent_snapshot: bool) -> String {
        String::new()
    }
}

/// Checks that `env` carries valid signatures from a threshold of `role_keys`, with keys from
/// `keys`. `signer` names the key holder for the error message.
pub(crate) fn verify_threshold(
    keys: &HashMap<Decoded<Hex>, Key>,
    role_keys: &RoleKeys,
    env: &Envelope,
    signer: &str,
    at: Origin<'_>,
) -> Result<()> {
    let keys = role_keys
        .keyids
        .iter()
        .filter_map(|id| keys.get(id).map(|k| (id.clone(), k.clone())))
        .collect();
    let holder = Root {
        spec_version: "1.0.0".to_owned(),
        consistent_snapshot: false,
        version: NonZeroU64::MIN,
        expires: jiff::Timestamp::MAX,
        keys,
        roles: HashMap::from([(RoleType::Targets, role_keys.clone())]),
        _extra: HashMap::new(),
    };
    let signed = Signed {
        signed: Payload(&env.signed),
        signatures: env.signatures.clone(),
    };
    holder.verify_role(&signed).context(error::SignatureSnafu {
        role: at.role,
        signer,
        origin: at.origin,
    })
}

/// Verifies `env` against the keys `root` gives `role` (a top-level role).
pub(crate) fn verify_by_root(
    root: &Root,
    role: RoleType,
    env: &Envelope,
    signer: &str,
    at: Origin<'_>,
) -> Result<()> {
    let role_keys = root
        .roles
        .get(&role)
        .ok_or_else(|| at.malformed(format!("the root has no keys for {role}")))?;
    verify_threshold(&root.keys, role_keys, env, signer, at)
}

/// Parses root metadata (tough's schema: key ids are checked against the keys) and checks that
/// the four top-level roles are present.
pub(crate) fn parse_root(env: &Envelope, at: Origin<'_>) -> Result<Root> {
    let root: Root = serde_json::from_value(env.signed.clone())
        .map_err(|e| at.malformed(format!("not root metadata: {e}")))?;
    for role in [
        RoleType::Root,
        RoleType::Timestamp,
        RoleType::Snapshot,
        RoleType::Targets,
    ] {
        ensure!(
            root.roles.contains_key(&role),
            error::MalformedSnafu {
                role: at.role,
                origin: at.origin,
                reason: format!("no '{role}' role"),
            }
        );
    }
    Ok(root)
}

/// Version and expiry common to every role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) version: u64,
    pub(crate) expires: jiff::Timestamp,
}

/// One entry of `meta` in timestamp or snapshot metadata (§4.4 METAFILES).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaFile {
    pub(crate) version: u64,
    pub(crate) length: Option<u64>,
    pub(crate) hashes: Option<Hashes>,
}

/// Timestamp metadata.
#[derive(Debug, Clone)]
pub(crate) struct TimestampRole {
    pub(crate) header: Header,
    pub(crate) snapshot: MetaFile,
}

/// Snapshot metadata.
#[derive(Debug, Clone)]
pub(crate) struct SnapshotRole {
    pub(crate) header: Header,
    pub(crate) meta: BTreeMap<String, MetaFile>,
}

/// One target entry (§4.5 TARGETS).
#[derive(Debug, Clone)]
pub(crate) struct TargetEntry {
    pub(crate) length: u64,
    pub(crate) hashes: Hashes,
    pub(crate) custom: Option<Value>,
}

/// Which target paths a delegation covers.
#[derive(Debug, Clone)]
pub(crate) enum PathSet {
    Paths(Vec<String>),
    HashPrefixes(Vec<String>),
}

impl PathSet {
    /// True if `target` is covered (python-tuf's `is_delegated_path`).
    pub(crate) fn matches(&self, target: &str) -> bool {
        match self {
            PathSet::Paths(patterns) => patterns.iter().any(|p| crate::pattern::matches(p, target)),
            PathSet::HashPrefixes(prefixes) => {
                let digest = hex::encode(
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, target.as_bytes())
                        .as_ref(),
                );
                prefixes.iter().any(|p| digest.starts_with(p.as_str()))
            }
        }
    }
}

/// One delegated role.
#[derive(Debug, Clone)]
pub(crate) struct DelegatedRole {
    pub(crate) name: String,
    pub(crate) keys: RoleKeys,
    pub(crate) terminating: bool,
    pub(crate) paths: PathSet,
}

/// The delegations of a targets role.
#[derive(Debug, Clone)]
pub(crate) struct Delegations {
    pub(crate) keys: HashMap<Decoded<Hex>, Key>,
    pub(crate) roles: Vec<DelegatedRole>,
}

/// Targets (top-level or delegated) metadata.
#[derive(Debug, Clone)]
pub(crate) struct TargetsRole {
    pub(crate) header: Header,
    pub(crate) targets: BTreeMap<String, TargetEntry>,
    pub(crate) delegations: Option<Delegations>,
}

#[derive(Deserialize)]
struct RawHeader {
    version: u64,
    expires: String,
}

#[derive(Deserialize)]
struct RawMetaFile {
    version: u64,
    #[serde(default)]
    length: Option<u64>,
    #[serde(default)]
    hashes: Option<serde_json::Map<String, Value>>,
}

#[derive(Deserialize)]
struct RawTimestamp {
    meta: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct RawSnapshot {
    meta: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
struct RawTarget {
    length: u64,
    hashes: serde_json::Map<String, Value>,
    #[serde(default)]
    custom: Option<Value>,
}

#[derive(Deserialize)]
struct RawTargets {
    targets: serde_json::Map<String, Value>,
    #[serde(default)]
    delegations: Option<RawDelegations>,
}

#[derive(Deserialize)]
struct RawDelegations {
    keys: serde_json::Map<String, Value>,
    #[serde(default)]
    roles: Option<Vec<RawDelegatedRole>>,
    #[serde(default)]
    succinct_roles: Option<Value>,
}

#[derive(Deserialize)]
struct RawDelegatedRole {
    name: String,
    keyids: Vec<Decoded<Hex>>,
    threshold: NonZeroU64,
    #[serde(default)]
    terminating: bool,
    #[serde(default)]
    paths: Option<Vec<String>>,
    #[serde(default)]
    path_hash_prefixes: Option<Vec<String>>,
}

fn parse_header(signed: &Value, at: Origin<'_>) -> Result<Header> {
    let raw: RawHeader = serde_json::from_value(signed.clone())
        .map_err(|e| at.malformed(format!("bad version or expires: {e}")))?;
    ensure!(
        raw.version > 0,
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: "version 0",
        }
    );
    Ok(Header {
        version: raw.version,
        expires: parse_expires(&raw.expires, at)?,
    })
}

/// `expires` must be `YYYY-MM-DDTHH:MM:SS(.fff)Z` (UTC).
fn parse_expires(text: &str, at: Origin<'_>) -> Result<jiff::Timestamp> {
    ensure!(
        text.ends_with('Z'),
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: format!("expires '{text}' is not in UTC ('Z')"),
        }
    );
    text.parse()
        .map_err(|e| at.malformed(format!("expires '{text}': {e}")))
}

fn parse_metafile(name: &str, value: &Value, at: Origin<'_>) -> Result<MetaFile> {
    let raw: RawMetaFile = serde_json::from_value(value.clone())
        .map_err(|e| at.malformed(format!("meta entry '{name}': {e}")))?;
    ensure!(
        raw.version > 0,
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: format!("meta entry '{name}' has version 0"),
        }
    );
    ensure!(
        raw.length != Some(0),
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: format!("meta entry '{name}' has length 0"),
        }
    );
    let hashes = match raw.hashes {
        None => None,
        Some(map) => Some(
            Hashes::from_json(&map)
                .map_err(|reason| at.malformed(format!("meta entry '{name}': {reason}")))?,
        ),
    };
    Ok(MetaFile {
        version: raw.version,
        length: raw.length,
        hashes,
    })
}

/// Parses timestamp metadata (signature already checked).
pub(crate) fn parse_timestamp(env: &Envelope, at: Origin<'_>) -> Result<TimestampRole> {
    let header = parse_header(&env.signed, at)?;
    let raw: RawTimestamp = serde_json::from_value(env.signed.clone())
        .map_err(|e| at.malformed(format!("bad 'meta': {e}")))?;
    let snapshot = raw
        .meta
        .get("snapshot.json")
        .ok_or_else(|| at.malformed("'meta' has no 'snapshot.json'"))?;
    Ok(TimestampRole {
        header,
        snapshot: parse_metafile("snapshot.json", snapshot, at)?,
    })
}

/// Parses snapshot metadata (signature already checked).
pub(crate) fn parse_snapshot(env: &Envelope, at: Origin<'_>) -> Result<SnapshotRole> {
    let header = parse_header(&env.signed, at)?;
    let raw: RawSnapshot = serde_json::from_value(env.signed.clone())
        .map_err(|e| at.malformed(format!("bad 'meta': {e}")))?;
    let mut meta = BTreeMap::new();
    for (name, value) in &raw.meta {
        meta.insert(name.clone(), parse_metafile(name, value, at)?);
    }
    Ok(SnapshotRole { header, meta })
}

/// Parses targets metadata (signature already checked).
pub(crate) fn parse_targets(env: &Envelope, at: Origin<'_>) -> Result<TargetsRole> {
    let header = parse_header(&env.signed, at)?;
    let raw: RawTargets = serde_json::from_value(env.signed.clone())
        .map_err(|e| at.malformed(format!("bad targets or delegations: {e}")))?;
    let mut targets = BTreeMap::new();
    for (name, value) in &raw.targets {
        let t: RawTarget = serde_json::from_value(value.clone())
            .map_err(|e| at.malformed(format!("target '{name}': {e}")))?;
        let hashes = Hashes::from_json(&t.hashes)
            .map_err(|reason| at.malformed(format!("target '{name}': {reason}")))?;
        targets.insert(
            name.clone(),
            TargetEntry {
                length: t.length,
                hashes,
                custom: t.custom,
            },
        );
    }
    let delegations = raw
        .delegations
        .map(|d| parse_delegations(d, at))
        .transpose()?;
    Ok(TargetsRole {
        header,
        targets,
        delegations,
    })
}

fn parse_delegations(raw: RawDelegations, at: Origin<'_>) -> Result<Delegations> {
    let mut keys = HashMap::new();
    for (id, value) in &raw.keys {
        let key: Key = serde_json::from_value(value.clone())
            .map_err(|e| at.malformed(format!("delegated key {id}: {e}")))?;
        let decoded = hex::decode(id)
            .map_err(|_| at.malformed(format!("delegated key id '{id}' is not hex")))?;
        let calculated = key
            .key_id()
            .map_err(|e| at.malformed(format!("delegated key {id}: {e}")))?;
        ensure!(
            calculated.as_ref() == decoded.as_slice(),
            error::MalformedSnafu {
                role: at.role,
                origin: at.origin,
                reason: format!(
                    "delegated key id {id} does not match its key ({})",
                    hex::encode(&calculated)
                ),
            }
        );
        keys.insert(Decoded::from(decoded), key);
    }
    ensure!(
        raw.succinct_roles.is_none(),
        error::MalformedSnafu {
            role: at.role,
            origin: at.origin,
            reason: "succinct_roles (TAP 15) is not supported",
        }
    );
    let mut seen = HashSet::new();
    let mut roles = Vec::new();
    for r in raw.roles.unwrap_or_default() {
        ensure!(
            !r.name.is_empty() && !TOP_LEVEL.contains(&r.name.as_str()),
            error::MalformedSnafu {
                role: at.role,
                origin: at.origin,
                reason: format!("'{}' cannot be a delegated role name", r.name),
            }
        );
        ensure!(
            seen.insert(r.name.clone()),
            error::MalformedSnafu {
                role: at.role,
                origin: at.origin,
                reason: format!("delegated role '{}' is listed twice", r.name),
            }
        );
        let paths = match (r.paths, r.path_hash_prefixes) {
            (Some(p), None) => PathSet::Paths(p),
            (None, Some(h)) => PathSet::HashPrefixes(h),
            _ => {
                return Err(at.malformed(format!(
                    "delegated role '{}' must have exactly one of paths and path_hash_prefixes",
                    r.name
                )));
            }
        };
        roles.push(DelegatedRole {
            name: r.name,
            keys: RoleKeys {
                keyids: r.keyids,
                threshold: r.threshold,
                _extra: HashMap::new(),
            },
            terminating: r.terminating,
            paths,
        });
    }
    Ok(Delegations { keys, roles })
}

/// The keys (id → key) `root` gives `role`, to tell whether they changed (§5.3.11).
pub(crate) fn role_key_set(root: &Root, role: RoleType) -> BTreeMap<Vec<u8>, String> {
    root.roles
        .get(&role)
        .map(|rk| {
            rk.keyids
                .iter()
                .map(|id| {
                    let key = root
                        .keys
                        .get(id)
                        .and_then(|k| serde_json::to_string(k).ok())
                        .unwrap_or_default();
                    (id.as_ref().to_vec(), key)
                })
                .collect()
        })
        .unwrap_or_default()
}
