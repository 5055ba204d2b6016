//! Immutable metadata kept across runs (`/var/lib/updog/metadata-cache`): files that can never
//! change under their name — consistent-snapshot `N.snapshot.json` / `N.<role>.json` and the
//! hash-named `<sha256>.manifest.json` — so when the repository's `timestamp.json` has not
//! changed, a check fetches nothing but the root probe and the timestamp. (tuf-client already
//! keeps the verified snapshot and targets in its datastore; the cache adds `manifest.json`.)
//! Cached bytes still go through tuf-client's full verification; the cache is only written after
//! a load succeeded, and never through a link.

use crate::error::Result;
use crate::fsutil;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tracing::{debug, warn};
use url::Url;

/// The cache (see the module docs).
#[derive(Debug, Clone)]
pub struct MetadataCache {
    dir: PathBuf,
    metadata_base: Url,
    targets_base: Url,
    used: Arc<Mutex<BTreeSet<String>>>,
    fetched: Arc<Mutex<BTreeMap<String, Vec<u8>>>>,
}

impl MetadataCache {
    /// A cache in `dir` for these repository URLs.
    pub fn new(dir: PathBuf, metadata_base: Url, targets_base: Url) -> Self {
        Self {
            dir,
            metadata_base,
            targets_base,
            used: Arc::default(),
            fetched: Arc::default(),
        }
    }

    /// The cache key for `url`, if that file is immutable by name.
    pub(crate) fn key(&self, url: &Url) -> Option<String> {
        let s = url.as_str();
        let file = s.rsplit('/').next()?;
        if let Some(rest) = s.strip_prefix(self.metadata_base.as_str()) {
            if rest != file {
                return None;
            }
            let (version, role) = file.split_once('.')?;
            let versioned = !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit());
            let role_ok = role.ends_with(".json")
                && role != "root.json"
                && role
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            return (versioned && role_ok).then(|| format!("meta.{file}"));
        }
        if let Some(rest) = s.strip_prefix(self.targets_base.as_str()) {
            let (hash, name) = rest.split_once('.')?;
            let hashed = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
            return (hashed && name == "manifest.json").then(|| format!("target.{rest}"));
        }
        None
    }

    pub(crate) fn lookup(&self, url: &Url) -> Option<Vec<u8>> {
        let key = self.key(url)?;
        let bytes = match fsutil::read_state_file(&self.dir.join(&key)) {
            Ok(b) => b?,
            Err(e) => {
                warn!("not using the metadata cache: {e}");
                return None;
            }
        };
        if let Ok(mut u) = self.used.lock() {
            u.insert(key);
        }
        debug!("served {url} from the metadata cache");
        Some(bytes)
    }

    pub(crate) fn remember(&self, url: &Url, bytes: &[u8]) {
        if let Some(key) = self.key(url)
            && let Ok(mut f) = self.fetched.lock()
        {
            f.insert(key, bytes.to_vec());
        }
    }

    /// How many files were served from the cache in this run.
    pub fn hits(&self) -> usize {
        self.used.lock().map(|u| u.len()).unwrap_or(0)
    }

    /// After a successful, verified load: store what was fetched and drop entries not used.
    pub fn commit(&self) -> Result<()> {
        match self.dir.parent() {
            Some(parent) => fsutil::ensure_state_dir(parent, &self.dir)?,
            None => fsutil::ensure_state_dir(&self.dir, &self.dir)?,
        }
        let fetched = self.fetched.lock().map(|f| f.clone()).unwrap_or_default();
        let mut keep: BTreeSet<String> = self.used.lock().map(|u| u.clone()).unwrap_or_default();
        for (key, bytes) in &fetched {
            fsutil::write_atomic(&self.dir.join(key), bytes)?;
            keep.insert(key.clone());
        }
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if !keep.contains(&name) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(())
    }

    /// Drops everything (used when a load with cached files failed, before retrying online).
    pub fn clear(&self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Ok(mut u) = self.used.lock() {
            u.clear();
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn cache_keys_only_for_immutable_names() {
        let c = MetadataCache::new(
            PathBuf::from("/nonexistent"),
            "http://h/meta/".parse().unwrap(),
            "http://h/targets/".parse().unwrap(),
        );
        let k = |s: &str| c.key(&s.parse().unwrap());
        assert_eq!(
            k("http://h/meta/3.snapshot.json").as_deref(),
            Some("meta.3.snapshot.json")
        );
        assert_eq!(
            k("http://h/meta/12.targets.json").as_deref(),
            Some("meta.12.targets.json")
        );
        assert_eq!(k("http://h/meta/timestamp.json"), None);
        assert_eq!(k("http://h/meta/2.root.json"), None);
        assert_eq!(k("http://h/meta/snapshot.json"), None);
        let h = "a".repeat(64);
        assert!(k(&format!("http://h/targets/{h}.manifest.json")).is_some());
        assert_eq!(k(&format!("http://h/targets/{h}.root.ext4.lz4")), None);
    }
}
