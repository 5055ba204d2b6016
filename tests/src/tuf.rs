//! TUF test material generated at test time: ed25519 keys (PKCS#8 DER, the format tough reads)
//! and a signed `root.json` with a far-future, whole-second expiry.
//!
//! Nothing here is committed as a fixture, so nothing expires on a date (STYLE.md anti-pattern 10).

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use serde::Serialize;
use std::collections::HashMap;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use tough::schema::decoded::{Decoded, Hex};
use tough::schema::key::{Ed25519Key, Ed25519Scheme, Key};
use tough::schema::{RoleKeys, RoleType, Root, Signature, Signed};

/// A test signing key written to disk.
#[derive(Debug, Clone)]
pub struct TestKey {
    /// PKCS#8 DER private key file (usable as a tough `LocalKeySource`).
    pub path: PathBuf,
    /// The TUF key id (hex).
    pub key_id: String,
    /// The public key as tough models it.
    pub public: Key,
}

/// Far-future expiry used by test roots and metadata: 2100-01-01T00:00:00Z (whole seconds).
pub fn far_future() -> jiff::Timestamp {
    "2100-01-01T00:00:00Z".parse().expect("valid timestamp")
}

/// Generate an ed25519 key at `path` (PKCS#8 DER).
pub fn gen_ed25519_key(path: &Path) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).expect("generate ed25519 key");
    std::fs::write(path, pkcs8.as_ref()).expect("write key");
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).expect("parse generated key");
    let public = Key::Ed25519 {
        keyval: Ed25519Key {
            public: pair.public_key().as_ref().to_vec().into(),
            _extra: HashMap::new(),
        },
        scheme: Ed25519Scheme::Ed25519,
        _extra: HashMap::new(),
    };
    let key_id = hex::encode(public.key_id().expect("key id").as_ref());
    TestKey {
        path: path.to_path_buf(),
        key_id,
        public,
    }
}

/// Canonical JSON bytes (the form TUF signs).
pub fn canonical_json<T: Serialize>(value: &T) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut ser =
        serde_json::Serializer::with_formatter(&mut buf, olpc_cjson::CanonicalFormatter::new());
    value.serialize(&mut ser).expect("canonical json");
    buf
}

/// Build a root (version `version`) in which every one of the four roles is held by `keys` with
/// `threshold`, signed by `signers`, and write it to `path`. Returns the root.
pub fn write_root(
    path: &Path,
    version: u64,
    keys: &[&TestKey],
    threshold: u64,
    signers: &[&TestKey],
    expires: jiff::Timestamp,
) -> Root {
    let mut key_map = HashMap::new();
    let mut ids: Vec<Decoded<Hex>> = Vec::new();
    for key in keys {
        let id = key.public.key_id().expect("key id");
        key_map.insert(id.clone(), key.public.clone());
        ids.push(id);
    }
    let roles = [
        RoleType::Root,
        RoleType::Snapshot,
        RoleType::Targets,
        RoleType::Timestamp,
    ]
    .into_iter()
    .map(|role| {
        let rk = RoleKeys {
            keyids: ids.clone(),
            threshold: NonZeroU64::new(threshold).expect("threshold > 0"),
            _extra: HashMap::new(),
        };
        (role, rk)
    })
    .collect();
    let root = Root {
        spec_version: "1.0.0".to_string(),
        consistent_snapshot: true,
        version: NonZeroU64::new(version).expect("version > 0"),
        expires,
        keys: key_map,
        roles,
        _extra: HashMap::new(),
    };
    let signed = sign_root(&root, signers);
    std::fs::write(
        path,
        serde_json::to_vec_pretty(&signed).expect("serialize root"),
    )
    .expect("write root");
    root
}

/// Sign `root` with each of `signers`.
pub fn sign_root(root: &Root, signers: &[&TestKey]) -> Signed<Root> {
    let msg = canonical_json(root);
    let signatures = signers
        .iter()
        .map(|key| {
            let der = std::fs::read(&key.path).expect("read key");
            let pair = Ed25519KeyPair::from_pkcs8(&der).expect("parse key");
            Signature {
                keyid: key.public.key_id().expect("key id"),
                sig: pair.sign(&msg).as_ref().to_vec().into(),
            }
        })
        .collect();
    Signed {
        signed: root.clone(),
        signatures,
    }
}

/// One key holding all four roles, threshold 1, root version 1, in `dir`:
/// `dir/root.json` and `dir/test-key.pk8`.
pub fn simple_root(dir: &Path) -> (PathBuf, TestKey) {
    let key = gen_ed25519_key(&dir.join("test-key.pk8"));
    let root_path = dir.join("root.json");
    write_root(&root_path, 1, &[&key], 1, &[&key], far_future());
    (root_path, key)
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn root_loads_in_tough() {
        let dir = crate::tempdir();
        let (root_path, key) = simple_root(dir.path());
        let bytes = std::fs::read(&root_path).unwrap();
        let parsed: Signed<Root> = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(parsed.signed.version.get(), 1);
        assert_eq!(hex::encode(parsed.signatures[0].keyid.as_ref()), key.key_id);
        // tough verifies the root's self-signature when it loads a repository; a repository
        // with only root.json fails later (no timestamp), but not on the root signature.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let meta = dir.path().join("metadata");
        std::fs::create_dir(&meta).unwrap();
        let url = format!("file://{}/", meta.display());
        let err = rt
            .block_on(
                tough::RepositoryLoader::new(&bytes, url.parse().unwrap(), url.parse().unwrap())
                    .load(),
            )
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("timestamp"),
            "expected a missing-timestamp error, got: {err}"
        );
    }
}
