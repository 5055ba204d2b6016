//! A repository in an S3-compatible bucket: `s3://BUCKET/PREFIX`, laid out like a repository
//! directory (`PREFIX/metadata/<variant>/<arch>/`, `PREFIX/targets/`).
//!
//! Publishers serialise through the store's conditional writes, not a lock object:
//! - [`RepoStore::lock`] reads `timestamp.json`'s ETag (or notes that there is none) before the
//!   repository is loaded;
//! - versioned metadata (`N.root.json`, `V.targets.json`, `V.snapshot.json`) is created only if
//!   absent (`If-None-Match: *`);
//! - `timestamp.json` is replaced only if it still has the ETag read at the start (`If-Match`),
//!   or created only if still absent.
//!
//! Of two publishers at once, the second to reach either write gets
//! [`repo_store::Error::Conflict`] (exit 5); its own versioned metadata is removed, and the
//! repository stays the winner's. Targets are content-addressed (`<sha256>.<name>`): a target
//! present with the expected size is not uploaded again (an interrupted publish reruns without
//! re-sending finished images), and a failed publish never deletes one (another publisher may
//! reference it). Headers per object come from [`repo_store::kind`].

use super::{Placed, RepoStore, StoreLock, TargetMode};
use crate::error::{self, Result};
use repo_store::{Blocking, Bucket, ObjectKind, S3Url, Write};
use snafu::ResultExt;
use std::path::Path;
use std::sync::{Arc, Mutex};
use update_metadata::{Arch, Variant};
use url::Url;

/// A repository (one variant/arch's metadata and the shared targets) in a bucket.
#[derive(Debug)]
pub struct S3Store {
    bucket: Bucket,
    metadata: S3Url,
    targets: S3Url,
    runtime: Arc<Blocking>,
    /// `timestamp.json`'s ETag when the run started: `Some(None)` if there was none.
    timestamp_e_tag: Mutex<Option<Option<String>>>,
}

/// The metadata and targets locations of a repository at `base` (our repository-directory
/// layout), without any client: for readers.
pub fn repo_locations(base: &S3Url, variant: &Variant, arch: Arch) -> (S3Url, S3Url) {
    (
        base.join(&format!("metadata/{variant}/{arch}")),
        base.join("targets"),
    )
}

impl S3Store {
    /// The store for `variant`/`arch` of the repository at `base`.
    pub fn repo_dir(base: &S3Url, variant: &Variant, arch: Arch) -> Result<S3Store> {
        let (metadata, targets) = repo_locations(base, variant, arch);
        Ok(S3Store {
            bucket: Bucket::from_env(&base.bucket).context(error::ObjectStoreSnafu)?,
            metadata,
            targets,
            runtime: Arc::new(Blocking::new().context(error::ObjectStoreSnafu)?),
            timestamp_e_tag: Mutex::new(None),
        })
    }

    fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = repo_store::Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.runtime.run(fut).context(error::ObjectStoreSnafu)
    }

    fn metadata_key(&self, name: &str) -> String {
        self.metadata.key(name)
    }

    fn target_key(&self, name: &str) -> String {
        self.targets.key(name)
    }

    /// Present with the expected size: an earlier (perhaps interrupted) run, or another
    /// release, already uploaded it. Multipart uploads appear only once complete, so a
    /// present object is a whole one.
    fn target_present(&self, key: &str, len: u64) -> Result<bool> {
        let bucket = self.bucket.clone();
        let key = key.to_owned();
        let info = self.run(async move { bucket.head(&key).await })?;
        Ok(info.is_some_and(|i| i.size == len))
    }
}

impl RepoStore for S3Store {
    fn describe(&self) -> String {
        format!("metadata {} / targets {}", self.metadata, self.targets)
    }

    fn metadata_url(&self) -> Result<Url> {
        Ok(self.metadata.dir_url())
    }

    fn targets_url(&self) -> Result<Url> {
        Ok(self.targets.dir_url())
    }

    fn has_metadata(&self, file_name: &str) -> Result<bool> {
        let bucket = self.bucket.clone();
        let key = self.metadata_key(file_name);
        Ok(self.run(async move { bucket.head(&key).await })?.is_some())
    }

    fn read_metadata(&self, file_name: &str) -> Result<Option<Vec<u8>>> {
        let bucket = self.bucket.clone();
        let key = self.metadata_key(file_name);
        Ok(self
            .run(async move { bucket.get(&key).await })?
            .map(|b| b.to_vec()))
    }

    fn put_target_file(&self, file_name: &str, source: &Path, _mode: TargetMode) -> Result<Placed> {
        let len = std::fs::metadata(source)
            .context(error::ReadInputSnafu { path: source })?
            .len();
        let key = self.target_key(file_name);
        if self.target_present(&key, len)? {
            return Ok(Placed::Present);
        }
        let bucket = self.bucket.clone();
        let source = source.to_owned();
        self.run(async move { bucket.upload_file(&key, &source).await })?;
        Ok(Placed::Created)
    }

    fn put_target_bytes(&self, file_name: &str, bytes: &[u8]) -> Result<Placed> {
        let key = self.target_key(file_name);
        if self.target_present(&key, bytes.len() as u64)? {
            return Ok(Placed::Present);
        }
        let bucket = self.bucket.clone();
        let bytes = bytes.to_vec();
        self.run(async move { bucket.put(&key, bytes, Write::Overwrite).await })?;
        Ok(Placed::Created)
    }

    fn remove_target(&self, file_name: &str) -> Result<()> {
        // Another publisher may have found this content-addressed object present and named it
        // in its metadata: an unreferenced target is harmless, a missing one is not.
        tracing::debug!(
            "leaving {} in place (targets in a bucket are never removed by a failed publish)",
            self.target_key(file_name)
        );
        Ok(())
    }

    fn remove_metadata(&self, file_name: &str) -> Result<()> {
        let bucket = self.bucket.clone();
        let key = self.metadata_key(file_name);
        self.run(async move { bucket.delete(&key).await })
    }

    fn versioned_metadata_is_create_only(&self) -> bool {
        true
    }

    fn sync_targets(&self) -> Result<()> {
        // A completed PUT is durable and readable after write.
        Ok(())
    }

    fn put_metadata(&self, file_name: &str, bytes: &[u8]) -> Result<()> {
        let key = self.metadata_key(file_name);
        let write = match ObjectKind::of(&key) {
            ObjectKind::Timestamp => {
                let pinned = self
                    .timestamp_e_tag
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone();
                let e_tag = match pinned {
                    Some(e_tag) => e_tag,
                    // Not pinned by `lock`: the best that can be done is now.
                    None => {
                        let bucket = self.bucket.clone();
                        let key = key.clone();
                        self.run(async move { bucket.head(&key).await })?
                            .and_then(|i| i.e_tag)
                    }
                };
                Write::Replace(e_tag)
            }
            ObjectKind::VersionedMetadata => Write::Create,
            _ => Write::Overwrite,
        };
        let bucket = self.bucket.clone();
        let owned = bytes.to_vec();
        let put_key = key.clone();
        let created = write == Write::Create;
        match self.run(async move { bucket.put(&put_key, owned, write).await.map(|_| ()) }) {
            Err(crate::Error::ObjectStore { source }) if created && source.is_conflict() => {
                // The same bytes already there (a root this run found missing a moment ago,
                // written meanwhile by a rerun or another publisher with the same root) is
                // fine; anything else is another publisher's version.
                let bucket = self.bucket.clone();
                let get_key = key.clone();
                let existing = self.run(async move { bucket.get(&get_key).await })?;
                if existing.as_deref() == Some(bytes) {
                    Ok(())
                } else {
                    Err(crate::Error::ObjectStore { source })
                }
            }
            other => other,
        }
    }

    fn lock(&self) -> Result<StoreLock> {
        let bucket = self.bucket.clone();
        let key = self.metadata_key("timestamp.json");
        let info = self.run(async move { bucket.head(&key).await })?;
        let e_tag = match info {
            None => None,
            Some(i) => Some(i.e_tag.unwrap_or_default()),
        };
        *self
            .timestamp_e_tag
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(e_tag);
        Ok(StoreLock::none())
    }
}
