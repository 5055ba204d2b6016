//! A TUF repository built and signed at test time (ed25519 test keys from `test-support`), laid
//! out as `<dir>/metadata/` and `<dir>/targets/`, with low-level hooks to write tampered files.
//!
//! Metadata is built as `serde_json::Value` so that tests can produce anything a repository (or
//! an attacker) could serve: SHA-512-only hashes, equal versions with different content, roles
//! missing from the snapshot, entries outside a role's paths.
#![allow(dead_code)]

use aws_lc_rs::digest::{SHA256, SHA512, digest};
use aws_lc_rs::signature::Ed25519KeyPair;
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use test_support::tuf::{TestKey, canonical_json, gen_ed25519_key};
use tuf_client::{ByteStream, Config, DefaultTransport, Transport, TransportError, Updater};

pub const FAR: &str = "2100-01-01T00:00:00Z";

/// A fixed "now" well before every far-future expiry.
pub fn now() -> jiff::Timestamp {
    "2030-06-01T12:00:00Z".parse().unwrap()
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(digest(&SHA256, data))
}

pub fn sha512_hex(data: &[u8]) -> String {
    hex::encode(digest(&SHA512, data))
}

/// Signs `signed` with `keys` into an envelope (pretty-printed, as tough writes it).
pub fn sign(signed: &Value, keys: &[&TestKey]) -> Vec<u8> {
    let msg = canonical_json(signed);
    let signatures: Vec<Value> = keys
        .iter()
        .map(|k| {
            let der = std::fs::read(&k.path).unwrap();
            let pair = Ed25519KeyPair::from_pkcs8(&der).unwrap();
            json!({"keyid": k.key_id, "sig": hex::encode(pair.sign(&msg).as_ref())})
        })
        .collect();
    serde_json::to_vec_pretty(&json!({"signed": signed, "signatures": signatures})).unwrap()
}

pub fn key_json(k: &TestKey) -> Value {
    serde_json::to_value(&k.public).unwrap()
}

/// One targets role (top-level or delegated).
#[derive(Debug, Clone)]
pub struct RoleDef {
    pub version: u64,
    pub expires: String,
    pub targets: Map<String, Value>,
    pub delegations: Option<Value>,
    pub signers: Vec<TestKey>,
    pub dirty: bool,
    /// Left out of the snapshot's meta when true.
    pub hidden_from_snapshot: bool,
}

#[derive(Debug)]
pub struct Repo {
    pub dir: tempfile::TempDir,
    key_counter: usize,
    pub consistent: bool,
    pub root_version: u64,
    pub root_expires: String,
    /// Keys per top-level role: root, timestamp, snapshot, targets.
    pub keys: BTreeMap<&'static str, Vec<TestKey>>,
    pub thresholds: BTreeMap<&'static str, u64>,
    pub roles: BTreeMap<String, RoleDef>,
    pub snapshot_version: u64,
    pub snapshot_expires: String,
    pub timestamp_version: u64,
    pub timestamp_expires: String,
    /// Put length and hashes of targets roles in the snapshot.
    pub snapshot_hashes: bool,
    /// Bytes of 1.root.json (the root shipped with clients).
    pub shipped_root: Vec<u8>,
}

impl Repo {
    /// A repository with one key per top-level role, root v1, empty targets, published once
    /// (timestamp v1, snapshot v1, targets v1).
    pub fn new() -> Self {
        Self::with_consistent(true)
    }

    pub fn with_consistent(consistent: bool) -> Self {
        let dir = test_support::tempdir();
        std::fs::create_dir_all(dir.path().join("metadata")).unwrap();
        std::fs::create_dir_all(dir.path().join("targets")).unwrap();
        std::fs::create_dir_all(dir.path().join("keys")).unwrap();
        let mut repo = Repo {
            dir,
            key_counter: 0,
            consistent,
            root_version: 0,
            root_expires: FAR.into(),
            keys: BTreeMap::new(),
            thresholds: BTreeMap::new(),
            roles: BTreeMap::new(),
            snapshot_version: 0,
            snapshot_expires: FAR.into(),
            timestamp_version: 0,
            timestamp_expires: FAR.into(),
            snapshot_hashes: false,
            shipped_root: Vec::new(),
        };
        for role in ["root", "timestamp", "snapshot", "targets"] {
            let k = repo.new_key();
            repo.keys.insert(role, vec![k]);
            repo.thresholds.insert(role, 1);
        }
        let targets_signers = repo.keys["targets"].clone();
        repo.roles.insert(
            "targets".into(),
            RoleDef {
                version: 0,
                expires: FAR.into(),
                targets: Map::new(),
                delegations: None,
                signers: targets_signers,
                dirty: true,
                hidden_from_snapshot: false,
            },
        );
        let signers: Vec<TestKey> = repo.keys["root"].clone();
        repo.root_version = 1;
        let bytes = repo.sign_root(&signers.iter().collect::<Vec<_>>());
        repo.shipped_root = bytes;
        repo.publish();
        repo
    }

    pub fn new_key(&mut self) -> TestKey {
        self.key_counter += 1;
        let path = self
            .dir
            .path()
            .join("keys")
            .join(format!("key-{}.pk8", self.key_counter));
        gen_ed25519_key(&path)
    }

    pub fn metadata_dir(&self) -> PathBuf {
        self.dir.path().join("metadata")
    }

    pub fn targets_dir(&self) -> PathBuf {
        self.dir.path().join("targets")
    }

    pub fn write_meta(&self, file: &str, bytes: &[u8]) {
        std::fs::write(self.metadata_dir().join(file), bytes).unwrap();
    }

    pub fn read_meta(&self, file: &str) -> Vec<u8> {
        std::fs::read(self.metadata_dir().join(file)).unwrap()
    }

    pub fn remove_meta(&self, file: &str) {
        std::fs::remove_file(self.metadata_dir().join(file)).unwrap();
    }

    /// The signed part of root version `self.root_version` from the current keys.
    pub fn root_value(&self) -> Value {
        let mut keys = Map::new();
        let mut roles = Map::new();
        for (role, ks) in &self.keys {
            for k in ks {
                keys.insert(k.key_id.clone(), key_json(k));
            }
            roles.insert(
                (*role).to_owned(),
                json!({
                    "keyids": ks.iter().map(|k| k.key_id.clone()).collect::<Vec<_>>(),
                    "threshold": self.thresholds[role],
                }),
            );
        }
        json!({
            "_type": "root",
            "spec_version": "1.0.0",
            "consistent_snapshot": self.consistent,
            "version": self.root_version,
            "expires": self.root_expires,
            "keys": keys,
            "roles": roles,
        })
    }

    /// Signs the current root with `signers`, writes `N.root.json` and `root.json`.
    pub fn sign_root(&self, signers: &[&TestKey]) -> Vec<u8> {
        let bytes = sign(&self.root_value(), signers);
        self.write_meta(&format!("{}.root.json", self.root_version), &bytes);
        self.write_meta("root.json", &bytes);
        bytes
    }

    /// Replaces the keys of `roles` with fresh ones and publishes root N+1, signed by the old
    /// and the new root keys.
    pub fn rotate_keys(&mut self, roles: &[&'static str]) {
        let old_root = self.keys["root"].clone();
        for role in roles {
            let k = self.new_key();
            self.keys.insert(role, vec![k]);
        }
        self.root_version += 1;
        let mut signers: Vec<&TestKey> = old_root.iter().collect();
        let new_root = self.keys["root"].clone();
        for k in &new_root {
            if !signers.iter().any(|s| s.key_id == k.key_id) {
                signers.push(k);
            }
        }
        self.sign_root(&signers);
        if roles.contains(&"targets") {
            let ks = self.keys["targets"].clone();
            let t = self.roles.get_mut("targets").unwrap();
            t.signers = ks;
            t.dirty = true;
        }
    }

    /// Writes `content` as target `name` of `role` (sha256 only), under both its plain and its
    /// consistent name.
    pub fn add_target(&mut self, role: &str, name: &str, content: &[u8]) {
        self.add_target_with(role, name, content, &["sha256"]);
    }

    /// Like `add_target` with the listed hash algorithms (`sha256`, `sha512`), in that order.
    pub fn add_target_with(&mut self, role: &str, name: &str, content: &[u8], algs: &[&str]) {
        let mut hashes = Map::new();
        for alg in algs {
            let h = match *alg {
                "sha256" => sha256_hex(content),
                "sha512" => sha512_hex(content),
                other => panic!("unknown algorithm {other}"),
            };
            hashes.insert((*alg).to_owned(), Value::String(h));
        }
        self.write_target_files(name, content, &hashes);
        let def = self.roles.get_mut(role).expect("role exists");
        def.targets.insert(
            name.to_owned(),
            json!({"length": content.len(), "hashes": hashes}),
        );
        def.dirty = true;
    }

    /// Writes the target body under its plain name and under `dir/<hash>.file` for each hash.
    pub fn write_target_files(&self, name: &str, content: &[u8], hashes: &Map<String, Value>) {
        let plain = self.targets_dir().join(name);
        std::fs::create_dir_all(plain.parent().unwrap()).unwrap();
        std::fs::write(&plain, content).unwrap();
        let (dir, file) = match name.rsplit_once('/') {
            Some((d, f)) => (Some(d), f),
            None => (None, name),
        };
        for h in hashes.values() {
            let fname = format!("{}.{file}", h.as_str().unwrap());
            let p = match dir {
                Some(d) => self.targets_dir().join(d).join(fname),
                None => self.targets_dir().join(fname),
            };
            std::fs::write(p, content).unwrap();
        }
    }

    /// Adds a delegation from `parent` to a new role `name` (with its own fresh key).
    /// `paths` is the JSON of either `{"paths": [...]}` or `{"path_hash_prefixes": [...]}`.
    pub fn delegate(&mut self, parent: &str, name: &str, paths: Value, terminating: bool) {
        let key = self.new_key();
        let def = self.roles.get_mut(parent).expect("parent exists");
        let mut d = def
            .delegations
            .take()
            .unwrap_or_else(|| json!({"keys": {}, "roles": []}));
        d["keys"][&key.key_id] = key_json(&key);
        let mut role = json!({
            "name": name,
            "keyids": [key.key_id],
            "threshold": 1,
            "terminating": terminating,
        });
        for (k, v) in paths.as_object().unwrap() {
            role[k] = v.clone();
        }
        d["roles"].as_array_mut().unwrap().push(role);
        def.delegations = Some(d);
        def.dirty = true;
        self.roles.insert(
            name.to_owned(),
            RoleDef {
                version: 0,
                expires: FAR.into(),
                targets: Map::new(),
                delegations: None,
                signers: vec![key],
                dirty: true,
                hidden_from_snapshot: false,
            },
        );
    }

    pub fn targets_value(&self, role: &str) -> Value {
        let def = &self.roles[role];
        let mut v = json!({
            "_type": "targets",
            "spec_version": "1.0.0",
            "version": def.version,
            "expires": def.expires,
            "targets": def.targets,
        });
        if let Some(d) = &def.delegations {
            v["delegations"] = d.clone();
        }
        v
    }

    pub fn role_file(&self, role: &str, version: u64) -> String {
        let quoted = role.replace('/', "%2F");
        if self.consistent {
            format!("{version}.{quoted}.json")
        } else {
            format!("{quoted}.json")
        }
    }

    pub fn snapshot_value(&self) -> Value {
        let mut meta = Map::new();
        for (name, def) in &self.roles {
            if def.hidden_from_snapshot {
                continue;
            }
            let mut entry = json!({"version": def.version});
            if self.snapshot_hashes {
                let bytes = self.read_meta(&self.role_file(name, def.version));
                entry["length"] = json!(bytes.len());
                entry["hashes"] = json!({"sha256": sha256_hex(&bytes)});
            }
            meta.insert(format!("{name}.json"), entry);
        }
        json!({
            "_type": "snapshot",
            "spec_version": "1.0.0",
            "version": self.snapshot_version,
            "expires": self.snapshot_expires,
            "meta": meta,
        })
    }

    pub fn snapshot_file(&self) -> String {
        if self.consistent {
            format!("{}.snapshot.json", self.snapshot_version)
        } else {
            "snapshot.json".into()
        }
    }

    pub fn timestamp_value(&self) -> Value {
        let snap = self.read_meta(&self.snapshot_file());
        json!({
            "_type": "timestamp",
            "spec_version": "1.0.0",
            "version": self.timestamp_version,
            "expires": self.timestamp_expires,
            "meta": {"snapshot.json": {
                "version": self.snapshot_version,
                "length": snap.len(),
                "hashes": {"sha256": sha256_hex(&snap)},
            }},
        })
    }

    fn keys_of(&self, role: &str) -> Vec<&TestKey> {
        self.keys[role].iter().collect()
    }

    /// Signs and writes every dirty targets role (version + 1), then a new snapshot and a new
    /// timestamp (each version + 1).
    pub fn publish(&mut self) {
        let dirty: Vec<String> = self
            .roles
            .iter()
            .filter(|(_, d)| d.dirty)
            .map(|(n, _)| n.clone())
            .collect();
        for name in dirty {
            self.roles.get_mut(&name).unwrap().version += 1;
            self.write_role(&name);
            self.roles.get_mut(&name).unwrap().dirty = false;
        }
        self.snapshot_version += 1;
        self.write_snapshot();
        self.timestamp_version += 1;
        self.write_timestamp();
    }

    pub fn write_role(&self, name: &str) {
        let def = &self.roles[name];
        let signers: Vec<&TestKey> = def.signers.iter().collect();
        let bytes = sign(&self.targets_value(name), &signers);
        self.write_meta(&self.role_file(name, def.version), &bytes);
        if self.consistent {
            let quoted = name.replace('/', "%2F");
            self.write_meta(&format!("{quoted}.json"), &bytes);
        }
    }

    pub fn write_snapshot(&self) {
        let bytes = sign(&self.snapshot_value(), &self.keys_of("snapshot"));
        self.write_meta(&self.snapshot_file(), &bytes);
        if self.consistent {
            self.write_meta("snapshot.json", &bytes);
        }
    }

    pub fn write_timestamp(&self) {
        let bytes = sign(&self.timestamp_value(), &self.keys_of("timestamp"));
        self.write_meta("timestamp.json", &bytes);
    }

    /// Signs `signed` with the current keys of top-level `role`.
    pub fn sign_as(&self, role: &str, signed: &Value) -> Vec<u8> {
        sign(signed, &self.keys_of(role))
    }

    pub fn file_url(&self) -> (url::Url, url::Url) {
        let base = url::Url::from_directory_path(self.dir.path()).unwrap();
        (
            base.join("metadata/").unwrap(),
            base.join("targets/").unwrap(),
        )
    }
}

thread_local! {
    /// URL paths (without query) that updaters built by these helpers asked for, on this test's
    /// thread (`#[tokio::test]` polls everything on the test thread). Recorded by the client
    /// before each request, so unlike the server's log it never lags behind the client.
    static FETCHED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// Wraps the default transport and records every URL path requested.
#[derive(Debug, Default)]
pub struct RecordingTransport(DefaultTransport);

#[async_trait::async_trait]
impl Transport for RecordingTransport {
    async fn fetch(&self, url: &url::Url) -> Result<ByteStream, TransportError> {
        FETCHED.with(|f| f.borrow_mut().push(url.path().to_owned()));
        self.0.fetch(url).await
    }
}

/// Every path requested so far on this thread.
pub fn fetched_paths() -> Vec<String> {
    FETCHED.with(|f| f.borrow().clone())
}

/// Forgets the recorded paths.
pub fn clear_fetched() {
    FETCHED.with(|f| f.borrow_mut().clear());
}

/// Metadata files requested so far (without the `/metadata/` prefix).
pub fn fetched_metadata() -> Vec<String> {
    fetched_paths()
        .into_iter()
        .filter_map(|p| p.strip_prefix("/metadata/").map(str::to_owned))
        .collect()
}

/// A client of `repo` over HTTP (served by `server`), with its datastore in `datastore`.
pub fn http_updater(server: &test_support::http::Server, repo: &Repo, datastore: &Path) -> Updater {
    http_updater_with(server, repo, datastore, |_| {})
}

/// A client of `repo` over `file://`.
pub fn file_updater(repo: &Repo, datastore: &Path) -> Updater {
    let (meta, targets) = repo.file_url();
    let config = Config::new(meta, targets, datastore, repo.shipped_root.clone());
    Updater::new(config, RecordingTransport::default()).unwrap()
}

/// A client with a custom configuration hook.
pub fn http_updater_with(
    server: &test_support::http::Server,
    repo: &Repo,
    datastore: &Path,
    tweak: impl FnOnce(&mut Config),
) -> Updater {
    let base: url::Url = server.url().parse().unwrap();
    let mut config = Config::new(
        base.join("metadata/").unwrap(),
        base.join("targets/").unwrap(),
        datastore,
        repo.shipped_root.clone(),
    );
    tweak(&mut config);
    Updater::new(config, RecordingTransport::default()).unwrap()
}
