//! Signing keys: where they come from (the key-source seam) and whether root lets them sign.
//!
//! A [`KeySpec`] names a key source. Local files (a plain path or `file:///path`) are built in;
//! other schemes (`aws-kms://`, `aws-ssm://`, `pkcs11:`) are rejected with a clear error until a
//! backend is added behind this same enum. Each key is read and parsed up front, so a missing or
//! wrongly formatted key fails before anything is loaded or written, and then checked against
//! root.json so "this key is not in root" is reported by name instead of as a bare signing failure.

use crate::error::{self, Result};
use snafu::{ResultExt, ensure};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use tough::key_source::{KeySource, LocalKeySource};
use tough::schema::{RoleType, Root};
use tough::sign::Sign;

/// Where a signing key lives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeySpec {
    /// A key file on local disk: ed25519/ECDSA P-256 PKCS#8 DER, or RSA PEM.
    File(PathBuf),
}

impl FromStr for KeySpec {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self> {
        if let Some(rest) = s.strip_prefix("file://") {
            return Ok(KeySpec::File(PathBuf::from(rest)));
        }
        if s.contains("://") || s.starts_with("pkcs11:") {
            return error::KeySourceUnsupportedSnafu { spec: s }.fail();
        }
        Ok(KeySpec::File(PathBuf::from(s)))
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySpec::File(p) => write!(f, "{}", p.display()),
        }
    }
}

/// A key that was read and parsed, with its TUF key id.
#[derive(Debug)]
pub struct LoadedKey {
    /// Where it came from.
    pub spec: KeySpec,
    /// Hex key id (sha256 of the canonical public key).
    pub key_id: String,
}

/// The keys a command signs with.
#[derive(Debug)]
pub struct SigningKeys {
    keys: Vec<LoadedKey>,
}

impl SigningKeys {
    /// Reads and parses every key. Fails on a missing file or an unsupported format.
    pub fn load(specs: &[KeySpec]) -> Result<SigningKeys> {
        ensure!(!specs.is_empty(), error::NoKeysSnafu);
        let mut keys = Vec::new();
        for spec in specs {
            let KeySpec::File(path) = spec;
            let bytes = std::fs::read(path).context(error::ReadKeySnafu { path })?;
            let pair =
                tough::sign::parse_keypair(&bytes).context(error::KeyFormatSnafu { path })?;
            let key_id = pair
                .tuf_key()
                .key_id()
                .map(|id| hex::encode(&*id))
                .context(error::KeyIdSnafu { path })?;
            keys.push(LoadedKey {
                spec: spec.clone(),
                key_id,
            });
        }
        Ok(SigningKeys { keys })
    }

    /// The loaded keys.
    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// The key sources, as tough's editor wants them.
    pub fn sources(&self) -> Vec<Box<dyn KeySource>> {
        self.keys
            .iter()
            .map(|k| match &k.spec {
                KeySpec::File(path) => {
                    Box::new(LocalKeySource { path: path.clone() }) as Box<dyn KeySource>
                }
            })
            .collect()
    }

    /// Checks that every key is listed in `root` and that, together, they meet the threshold of
    /// each role in `roles`.
    pub fn check_against(&self, root: &Root, roles: &[RoleType]) -> Result<()> {
        for key in &self.keys {
            let listed = root.keys.keys().any(|id| hex::encode(&**id) == key.key_id);
            let KeySpec::File(path) = &key.spec;
            ensure!(
                listed,
                error::KeyNotInRootSnafu {
                    path,
                    key_id: &key.key_id,
                    root_version: root.version.get(),
                }
            );
        }
        for role in roles {
            let role_keys = root.roles.get(role);
            let (threshold, ids): (u64, Vec<String>) = match role_keys {
                Some(rk) => (
                    rk.threshold.get(),
                    rk.keyids.iter().map(|id| hex::encode(&**id)).collect(),
                ),
                None => (1, Vec::new()),
            };
            let mut have: Vec<&str> = self
                .keys
                .iter()
                .filter(|k| ids.contains(&k.key_id))
                .map(|k| k.key_id.as_str())
                .collect();
            have.sort_unstable();
            have.dedup();
            ensure!(
                have.len() as u64 >= threshold,
                error::KeyThresholdSnafu {
                    role: role.to_string(),
                    threshold,
                    authorised: ids.len(),
                    have: have.len(),
                }
            );
        }
        Ok(())
    }
}

/// The roles pubsys signs (root is never signed here; repo-tools owns it).
pub const SIGNED_ROLES: [RoleType; 3] =
    [RoleType::Targets, RoleType::Snapshot, RoleType::Timestamp];

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn key_spec_parsing() {
        assert_eq!(
            "file:///k/a.der".parse::<KeySpec>().unwrap(),
            KeySpec::File("/k/a.der".into())
        );
        assert_eq!(
            "k.pem".parse::<KeySpec>().unwrap(),
            KeySpec::File("k.pem".into())
        );
        let err = "aws-kms://default/abc".parse::<KeySpec>().unwrap_err();
        assert!(err.to_string().contains("aws-kms://default/abc"), "{err}");
    }

    #[test]
    fn missing_and_malformed_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.der");
        let err = SigningKeys::load(&[KeySpec::File(missing.clone())]).unwrap_err();
        assert!(matches!(err, crate::Error::ReadKey { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.der"));

        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = SigningKeys::load(&[KeySpec::File(bad)]).unwrap_err();
        assert!(matches!(err, crate::Error::KeyFormat { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 3);
    }
}
