//! Shared helpers for pubsys's integration tests: real keys, real roots, real images on disk.
#![allow(dead_code, clippy::print_stderr, clippy::print_stdout)]

use jiff::Timestamp;
use pubsys::keys::KeySpec;
use pubsys::policy::ExpirationPolicy;
use pubsys::release::{ImagePaths, PublishOutcome, PublishRequest, ReleaseInputs};
use pubsys::repo::{Expiry, RepoSource};
use pubsys::store::{LocalStore, Placed, RepoStore, TargetMode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use test_support::tuf::{TestKey, simple_root};
use update_metadata::{Arch, Variant, Version};

pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A temp dir with a root, a key, image inputs and a repository directory.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub root: PathBuf,
    pub key: TestKey,
    pub repo_dir: PathBuf,
    pub variant: Variant,
    pub arch: Arch,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = test_support::tempdir();
        let (root, key) = simple_root(dir.path());
        let repo_dir = dir.path().join("repo");
        Fixture {
            root,
            key,
            repo_dir,
            variant: "aws-dev".parse().unwrap(),
            arch: Arch::X86_64,
            dir,
        }
    }

    pub fn store(&self) -> LocalStore {
        LocalStore::repo_dir(&self.repo_dir, &self.variant, self.arch)
    }

    pub fn source(&self) -> RepoSource {
        pubsys::repo::source_of_store(&self.store()).unwrap()
    }

    pub fn root_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.root).unwrap()
    }

    /// Writes three small images for `version` (content depends on the version).
    pub fn images(&self, version: &str, size: usize) -> ImagePaths {
        let d = self.dir.path().join(format!("build-{version}"));
        std::fs::create_dir_all(&d).unwrap();
        let name = |part: &str| {
            d.join(format!(
                "bottlerocket-{}-{}-{version}-abcdef0-{part}",
                self.variant, self.arch
            ))
        };
        let paths = ImagePaths {
            boot: name("boot.ext4.lz4"),
            root: name("root.ext4.lz4"),
            hash: name("root.verity.lz4"),
        };
        for (i, p) in [&paths.boot, &paths.root, &paths.hash]
            .into_iter()
            .enumerate()
        {
            let bytes: Vec<u8> = (0..size)
                .map(|n| {
                    (n as u8)
                        ^ (i as u8 * 31)
                        ^ version.len() as u8
                        ^ version.as_bytes()[version.len() - 1]
                })
                .collect();
            std::fs::write(p, bytes).unwrap();
        }
        paths
    }

    pub fn request(&self, version: &str, now: Timestamp) -> PublishRequest {
        PublishRequest {
            trusted_root: self.root.clone(),
            keys: vec![KeySpec::File(self.key.path.clone())],
            source: None,
            inputs: ReleaseInputs {
                variant: self.variant.clone(),
                arch: self.arch,
                version: version.parse::<Version>().unwrap(),
                images: self.images(version, 64 * 1024 + version.len()),
                expected: None,
            },
            release_file: None,
            extra_targets: vec![],
            link_targets: vec![],
            reinstate_yanked: false,
            wave_policy: None,
            release_start: now,
            expiration: ExpirationPolicy::default(),
            expired: Expiry::Safe,
            target_mode: TargetMode::Copy,
            datastore: None,
            now,
        }
    }

    pub fn publish(&self, req: &PublishRequest) -> pubsys::Result<PublishOutcome> {
        rt().block_on(pubsys::release::publish(
            req,
            &self.store(),
            Arc::new(pubsys::NoReporter),
        ))
    }

    pub fn metadata_dir(&self) -> PathBuf {
        self.store().metadata_dir().to_path_buf()
    }

    pub fn targets_dir(&self) -> PathBuf {
        self.store().targets_dir().to_path_buf()
    }
}

pub fn now() -> Timestamp {
    pubsys::policy::whole_seconds(Timestamp::now())
}

/// A store that records every write (and can fail one), over a real local store.
#[derive(Debug)]
pub struct RecordingStore {
    pub inner: LocalStore,
    pub log: Mutex<Vec<String>>,
    pub fail_on: Option<String>,
}

impl RecordingStore {
    pub fn new(inner: LocalStore, fail_on: Option<&str>) -> Self {
        RecordingStore {
            inner,
            log: Mutex::new(Vec::new()),
            fail_on: fail_on.map(str::to_string),
        }
    }
    fn record(&self, what: String, name: &str) -> pubsys::Result<()> {
        self.log.lock().unwrap().push(what);
        if let Some(f) = &self.fail_on
            && name.ends_with(f.as_str())
        {
            return Err(pubsys::Error::StoreIo {
                action: "write (injected failure)".into(),
                path: name.into(),
                source: std::io::Error::other("injected"),
            });
        }
        Ok(())
    }
}

impl RepoStore for RecordingStore {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    fn metadata_url(&self) -> pubsys::Result<url::Url> {
        self.inner.metadata_url()
    }
    fn targets_url(&self) -> pubsys::Result<url::Url> {
        self.inner.targets_url()
    }
    fn has_metadata(&self, file_name: &str) -> pubsys::Result<bool> {
        self.inner.has_metadata(file_name)
    }
    fn read_metadata(&self, file_name: &str) -> pubsys::Result<Option<Vec<u8>>> {
        self.inner.read_metadata(file_name)
    }
    fn put_target_file(&self, n: &str, source: &Path, mode: TargetMode) -> pubsys::Result<Placed> {
        self.record(format!("target {n}"), n)?;
        self.inner.put_target_file(n, source, mode)
    }
    fn put_target_bytes(&self, n: &str, bytes: &[u8]) -> pubsys::Result<Placed> {
        self.record(format!("target {n}"), n)?;
        self.inner.put_target_bytes(n, bytes)
    }
    fn remove_target(&self, n: &str) -> pubsys::Result<()> {
        self.log.lock().unwrap().push(format!("remove {n}"));
        self.inner.remove_target(n)
    }
    fn lock(&self) -> pubsys::Result<pubsys::store::StoreLock> {
        self.inner.lock()
    }
    fn sync_targets(&self) -> pubsys::Result<()> {
        self.log.lock().unwrap().push("sync targets".into());
        self.inner.sync_targets()
    }
    fn put_metadata(&self, n: &str, bytes: &[u8]) -> pubsys::Result<()> {
        self.record(format!("metadata {n}"), n)?;
        self.inner.put_metadata(n, bytes)
    }
}

/// Flips one byte of a file at `offset` (from the end if negative).
pub fn flip_byte(path: &Path, offset: i64) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = if offset < 0 {
        (bytes.len() as i64 + offset) as usize
    } else {
        offset as usize
    };
    bytes[i] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

/// The consistent-name file of a target in a targets dir.
pub fn target_file(targets_dir: &Path, name: &str) -> PathBuf {
    std::fs::read_dir(targets_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let f = p.file_name().unwrap().to_string_lossy();
            f.len() > 65 && &f[65..] == name
        })
        .unwrap_or_else(|| panic!("no target file for {name}"))
}
