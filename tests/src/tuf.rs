//! TUF test material generated at test time: ed25519 keys (PKCS#8 DER, the format tough reads),
//! a signed `root.json` with a far-future, whole-second expiry, and [`SignedRepo`]: the one
//! builder of signed test repositories (tough's editor) for every crate's tests.
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

/// Versions and expiry of the non-root roles of one publication (targets and snapshot expire
/// at [`far_future`]).
#[derive(Debug, Clone, Copy)]
pub struct RoleVersions {
    /// targets.json version.
    pub targets: u64,
    /// snapshot.json version.
    pub snapshot: u64,
    /// timestamp.json version.
    pub timestamp: u64,
    /// timestamp.json expiry.
    pub timestamp_expires: jiff::Timestamp,
}

impl RoleVersions {
    /// Every role at version `v`, the timestamp expiring at [`far_future`].
    pub fn all(v: u64) -> Self {
        RoleVersions {
            targets: v,
            snapshot: v,
            timestamp: v,
            timestamp_expires: far_future(),
        }
    }
}

/// A signed TUF repository on disk, written with tough's editor: `dir/metadata/` and
/// `dir/targets/` (consistent snapshots: `<sha256>.<name>` target files), signed by `keys`
/// under the trusted `root`. Each publication signs the files of one input directory as the
/// repository's targets.
#[derive(Debug, Clone)]
pub struct SignedRepo {
    /// The repository directory.
    pub dir: PathBuf,
    /// The trusted root.json.
    pub root: PathBuf,
    /// Private key files (anything tough's `LocalKeySource` reads) that sign every role.
    pub keys: Vec<PathBuf>,
}

impl SignedRepo {
    /// A repository in `dir` with one fresh ed25519 key holding every role ([`simple_root`]:
    /// `dir/root.json`, `dir/test-key.pk8`).
    pub fn simple(dir: &Path) -> SignedRepo {
        std::fs::create_dir_all(dir).expect("create repository directory");
        let (root, key) = simple_root(dir);
        SignedRepo {
            dir: dir.to_owned(),
            root,
            keys: vec![key.path],
        }
    }

    /// `dir/metadata`.
    pub fn metadata(&self) -> PathBuf {
        self.dir.join("metadata")
    }

    /// `dir/targets`.
    pub fn targets(&self) -> PathBuf {
        self.dir.join("targets")
    }

    /// `file://` URL of the metadata directory.
    pub fn metadata_url(&self) -> url::Url {
        url::Url::from_directory_path(self.metadata()).expect("absolute path")
    }

    /// `file://` URL of the targets directory.
    pub fn targets_url(&self) -> url::Url {
        url::Url::from_directory_path(self.targets()).expect("absolute path")
    }

    /// `dir/inputs`: the input directory of [`SignedRepo::publish`].
    pub fn inputs(&self) -> PathBuf {
        self.dir.join("inputs")
    }

    /// Adds input files (name, bytes) to [`SignedRepo::inputs`].
    pub fn add_files(&self, files: &[(&str, &[u8])]) {
        std::fs::create_dir_all(self.inputs()).expect("create inputs");
        for (name, bytes) in files {
            std::fs::write(self.inputs().join(name), bytes).expect("write input");
        }
    }

    /// Publishes every file of [`SignedRepo::inputs`], all roles at `version`.
    pub async fn publish(&self, version: u64) {
        self.publish_dir(&self.inputs(), RoleVersions::all(version))
            .await;
    }

    /// [`SignedRepo::publish`] with the timestamp expiring at `timestamp_expires`.
    pub async fn publish_expiring(&self, version: u64, timestamp_expires: jiff::Timestamp) {
        let v = RoleVersions {
            timestamp_expires,
            ..RoleVersions::all(version)
        };
        self.publish_dir(&self.inputs(), v).await;
    }

    /// Signs and writes a publication whose targets are the files of `inputs` (target name =
    /// file name), with the role versions and expiry of `v`; copies the target files into
    /// `dir/targets` (files already there are kept).
    pub async fn publish_dir(&self, inputs: &Path, v: RoleVersions) {
        use tough::editor::RepositoryEditor;
        use tough::key_source::{KeySource, LocalKeySource};
        let version = |n: u64| NonZeroU64::new(n).expect("role version > 0");
        let mut editor = RepositoryEditor::new(&self.root)
            .await
            .expect("load the root into tough's editor");
        editor
            .targets_version(version(v.targets))
            .expect("targets version")
            .targets_expires(far_future())
            .expect("targets expiry")
            .snapshot_version(version(v.snapshot))
            .snapshot_expires(far_future())
            .timestamp_version(version(v.timestamp))
            .timestamp_expires(v.timestamp_expires);
        let mut paths: Vec<PathBuf> = std::fs::read_dir(inputs)
            .expect("read inputs")
            .map(|e| e.expect("input entry").path())
            .collect();
        paths.sort();
        editor.add_target_paths(paths).await.expect("add targets");
        let keys: Vec<Box<dyn KeySource>> = self
            .keys
            .iter()
            .map(|p| Box::new(LocalKeySource { path: p.clone() }) as Box<dyn KeySource>)
            .collect();
        let signed = editor.sign(&keys).await.expect("sign");
        // The timestamp is the only unversioned file: the new one replaces the old.
        let _ = std::fs::remove_file(self.metadata().join("timestamp.json"));
        signed.write(self.metadata()).await.expect("write metadata");
        signed
            .copy_targets(
                inputs,
                self.targets(),
                tough::editor::signed::PathExists::Skip,
            )
            .await
            .expect("copy targets");
    }

    /// [`SignedRepo::publish_dir`] for tests without an async runtime.
    pub fn publish_dir_blocking(&self, inputs: &Path, v: RoleVersions) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(self.publish_dir(inputs, v));
    }

    /// The served file of target `name` (`<sha256>.<name>` in `dir/targets`).
    pub fn target_file(&self, name: &str) -> PathBuf {
        let suffix = format!(".{name}");
        std::fs::read_dir(self.targets())
            .expect("read targets")
            .map(|e| e.expect("target entry").path())
            .find(|p| {
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .ends_with(&suffix)
            })
            .unwrap_or_else(|| panic!("no target {name} in {}", self.targets().display()))
    }
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

    #[test]
    fn signed_repo_publishes_and_republishes_what_tough_loads() {
        let dir = crate::tempdir();
        let repo = SignedRepo::simple(&dir.path().join("repo"));
        repo.add_files(&[("a.txt", b"first")]);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(repo.publish(1));
        let second = dir.path().join("second");
        std::fs::create_dir(&second).unwrap();
        std::fs::write(second.join("b.txt"), b"second").unwrap();
        let v = RoleVersions {
            timestamp: 3,
            ..RoleVersions::all(2)
        };
        repo.publish_dir_blocking(&second, v);
        let root = std::fs::read(&repo.root).unwrap();
        let loaded = rt
            .block_on(
                tough::RepositoryLoader::new(&root, repo.metadata_url(), repo.targets_url()).load(),
            )
            .unwrap();
        assert_eq!(loaded.timestamp().signed.version.get(), 3);
        assert_eq!(loaded.snapshot().signed.version.get(), 2);
        let names: Vec<String> = loaded
            .targets()
            .signed
            .targets
            .keys()
            .map(|n| n.raw().to_owned())
            .collect();
        assert_eq!(names, ["b.txt"], "a publication holds only its inputs");
        assert_eq!(std::fs::read(repo.target_file("b.txt")).unwrap(), b"second");
    }
}
