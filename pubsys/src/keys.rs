//! Signing keys: where they come from (the `key-source` seam, shared with repo-tools) and whether
//! root lets them sign.
//!
//! A [`KeySpec`] names a key: a path or `file://PATH`, a PKCS#11 token key (`pkcs11:` URI, RFC
//! 7512) or an AWS KMS key (`aws-kms://[PROFILE]/KEY-ID`). Each key is reached up front (file
//! read, token login, KMS `GetPublicKey`), so a missing file, a wrong PIN or an unreachable KMS
//! fails before anything is loaded or written, and is then checked against root.json so "this key
//! is not in root" is reported by name instead of as a bare signing failure.

use crate::error::{self, Result};
use key_source::LoadedKey;
use snafu::ensure;
use tough::key_source::KeySource;
use tough::schema::{RoleType, Root};

/// Where a signing key lives (the URL grammar of the `key-source` crate).
pub use key_source::KeyUrl as KeySpec;

/// The keys a command signs with.
#[derive(Debug)]
pub struct SigningKeys {
    keys: Vec<LoadedKey>,
}

/// Our error for a key source's: file problems keep their own variants (`ReadKey`, `KeyFormat`).
fn key_error(source: key_source::Error) -> crate::Error {
    match source {
        key_source::Error::ReadFile { path, source } => crate::Error::ReadKey { path, source },
        key_source::Error::FileFormat { path, source } => crate::Error::KeyFormat { path, source },
        other => crate::Error::KeySource { source: other },
    }
}

impl SigningKeys {
    /// Reaches every key (reads files, logs in to tokens, asks KMS for public keys). Fails on
    /// the first key that cannot be used, naming it.
    pub async fn load(specs: &[KeySpec]) -> Result<SigningKeys> {
        ensure!(!specs.is_empty(), error::NoKeysSnafu);
        let mut keys = Vec::new();
        for spec in specs {
            keys.push(LoadedKey::load(spec).await.map_err(key_error)?);
        }
        Ok(SigningKeys { keys })
    }

    /// The loaded keys.
    pub fn keys(&self) -> &[LoadedKey] {
        &self.keys
    }

    /// The key sources, as tough's editor wants them.
    pub fn sources(&self) -> Vec<Box<dyn KeySource>> {
        self.keys.iter().map(LoadedKey::key_source).collect()
    }

    /// Checks that every key is listed in `root` and that, together, they meet the threshold of
    /// each role in `roles`.
    pub fn check_against(&self, root: &Root, roles: &[RoleType]) -> Result<()> {
        for key in &self.keys {
            let listed = root
                .keys
                .keys()
                .any(|id| hex::encode(&**id) == key.key_id());
            ensure!(
                listed,
                error::KeyNotInRootSnafu {
                    key: key.url().to_string(),
                    key_id: key.key_id(),
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
                .map(LoadedKey::key_id)
                .filter(|id| ids.iter().any(|i| i == id))
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
        assert_eq!(
            "aws-kms://default/abc"
                .parse::<KeySpec>()
                .unwrap()
                .backend(),
            "aws-kms"
        );
        let err = key_error("aws-ssm://default/abc".parse::<KeySpec>().unwrap_err());
        assert!(err.to_string().contains("aws-ssm://default/abc"), "{err}");
        assert_eq!(err.exit_code(), 3);
    }

    #[tokio::test]
    async fn missing_and_malformed_keys_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.der");
        let err = SigningKeys::load(&[KeySpec::File(missing.clone())])
            .await
            .unwrap_err();
        assert!(matches!(err, crate::Error::ReadKey { .. }), "{err:?}");
        assert!(err.to_string().contains("nope.der"));

        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        let err = SigningKeys::load(&[KeySpec::File(bad)]).await.unwrap_err();
        assert!(matches!(err, crate::Error::KeyFormat { .. }), "{err:?}");
        assert_eq!(err.exit_code(), 3);
    }
}
