//! S3-compatible object storage for TUF repositories, shared by pubsys and repo-tools.
//!
//! - [`S3Url`]: an `s3://bucket/prefix` repository location.
//! - [`Bucket`]: one bucket reached through `object_store`'s S3 client, configured from the
//!   standard AWS chain ([`config`]); reads, conditional writes (create-only for immutable
//!   objects, ETag compare-and-swap for `timestamp.json`), streamed multipart uploads with
//!   bounded memory, and the `Cache-Control` / `Content-Type` of every object ([`kind`]).
//! - [`S3Transport`]: a tough transport that reads `s3://` URLs through the S3 API and every
//!   other URL (`file://`, `http(s)://`) through tough's default transport.
//! - [`Blocking`]: runs S3 calls from synchronous code (pubsys's store seam) on a runtime of its
//!   own, also when the caller is itself inside an async runtime.

pub mod config;
mod error;
pub mod kind;
mod location;
mod transport;

pub use error::{Error, Result};
pub use kind::ObjectKind;
pub use location::S3Url;
pub use transport::S3Transport;

use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::AmazonS3;
use object_store::path::Path as ObjectPath;
use object_store::{
    ObjectStore, ObjectStoreExt, PutMode, PutMultipartOptions, PutOptions, PutPayload,
    UpdateVersion, WriteMultipart,
};
use snafu::{OptionExt, ResultExt};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Size of one multipart part (S3's minimum is 5 MiB).
pub const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts uploaded at once. Memory held by one upload is about `PART_SIZE * (PARTS_IN_FLIGHT + 1)`
/// whatever the size of the file.
pub const PARTS_IN_FLIGHT: usize = 4;

/// What is at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Size in bytes.
    pub size: u64,
    /// The object's ETag (for a compare-and-swap update), if the server gave one.
    pub e_tag: Option<String>,
}

/// How a small object is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Unconditionally (content-addressed objects: the name fixes the bytes).
    Overwrite,
    /// Only if no object has that key (`If-None-Match: *`): versioned metadata, never replaced.
    Create,
    /// Only if the object still has this ETag (`If-Match`); `None`: only if it does not exist.
    /// The single switch of a publish (`timestamp.json`).
    Replace(Option<String>),
}

/// One S3 bucket.
#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<AmazonS3>,
    name: String,
}

impl Bucket {
    /// A client for `bucket`, configured from the AWS environment and profile
    /// (see [`config::builder`]).
    pub fn from_env(bucket: &str) -> Result<Bucket> {
        let store = config::builder(bucket)?
            .build()
            .context(error::ClientSnafu { bucket })?;
        Ok(Bucket {
            store: Arc::new(store),
            name: bucket.to_owned(),
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn path(key: &str) -> ObjectPath {
        ObjectPath::from(key)
    }

    fn request_err(
        &self,
        action: &'static str,
        key: &str,
    ) -> impl FnOnce(object_store::Error) -> Error {
        let bucket = self.name.clone();
        let key = key.to_owned();
        move |source| Error::Request {
            action,
            bucket,
            key,
            source: Box::new(source),
        }
    }

    /// Size and ETag of the object at `key`, or `None`.
    pub async fn head(&self, key: &str) -> Result<Option<ObjectInfo>> {
        match self.store.head(&Self::path(key)).await {
            Ok(meta) => Ok(Some(ObjectInfo {
                size: meta.size,
                e_tag: meta.e_tag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.request_err("HEAD", key)(e)),
        }
    }

    /// The whole object at `key`, or `None`.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let result = match self.store.get(&Self::path(key)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.request_err("GET", key)(e)),
        };
        result
            .bytes()
            .await
            .map(Some)
            .map_err(self.request_err("GET", key))
    }

    /// The object at `key` as a stream of chunks, or `None`.
    pub async fn get_stream(&self, key: &str) -> Result<Option<BoxStream<'static, Result<Bytes>>>> {
        let result = match self.store.get(&Self::path(key)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.request_err("GET", key)(e)),
        };
        let bucket = self.name.clone();
        let key = key.to_owned();
        Ok(Some(
            result
                .into_stream()
                .map(move |r| {
                    r.map_err(|source| Error::Request {
                        action: "GET",
                        bucket: bucket.clone(),
                        key: key.clone(),
                        source: Box::new(source),
                    })
                })
                .boxed(),
        ))
    }

    /// Writes a small object in one request with its kind's headers.
    /// [`Write::Create`] / [`Write::Replace`] that lose the race give [`Error::Conflict`].
    pub async fn put(
        &self,
        key: &str,
        bytes: impl Into<Bytes>,
        write: Write,
    ) -> Result<Option<String>> {
        let mode = match &write {
            Write::Overwrite => PutMode::Overwrite,
            Write::Create | Write::Replace(None) => PutMode::Create,
            Write::Replace(Some(e_tag)) => PutMode::Update(UpdateVersion {
                e_tag: Some(e_tag.clone()),
                version: None,
            }),
        };
        let opts = PutOptions {
            mode,
            attributes: ObjectKind::of(key).attributes(),
            ..Default::default()
        };
        match self
            .store
            .put_opts(&Self::path(key), PutPayload::from_bytes(bytes.into()), opts)
            .await
        {
            Ok(r) => Ok(r.e_tag),
            Err(object_store::Error::AlreadyExists { .. }) => error::ConflictSnafu {
                bucket: &self.name,
                key,
                reason: "it already exists",
            }
            .fail(),
            Err(object_store::Error::Precondition { .. }) => error::ConflictSnafu {
                bucket: &self.name,
                key,
                reason: "it changed since this run read it",
            }
            .fail(),
            Err(e) => Err(self.request_err("PUT", key)(e)),
        }
    }

    /// Uploads a local file: one PUT when it is small, else a multipart upload of
    /// [`PART_SIZE`] parts, [`PARTS_IN_FLIGHT`] at a time, read from the file as they go (memory
    /// stays bounded whatever the file's size). The object appears only when complete; a
    /// failed upload is aborted.
    pub async fn upload_file(&self, key: &str, path: &std::path::Path) -> Result<()> {
        let mut file = tokio::fs::File::open(path)
            .await
            .context(error::ReadFileSnafu { path })?;
        let len = file
            .metadata()
            .await
            .context(error::ReadFileSnafu { path })?
            .len();
        if len <= PART_SIZE as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            file.read_to_end(&mut buf)
                .await
                .context(error::ReadFileSnafu { path })?;
            self.put(key, buf, Write::Overwrite).await?;
            return Ok(());
        }
        let mut upload = self.start_multipart(key).await?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(source) => {
                    let _ = upload.abort().await;
                    return Err(Error::ReadFile {
                        path: path.to_owned(),
                        source,
                    });
                }
            };
            if n == 0 {
                break;
            }
            if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = upload.abort().await;
                return Err(self.request_err("upload part of", key)(e));
            }
            upload.write(&buf[..n]);
        }
        upload
            .finish()
            .await
            .map(|_| ())
            .map_err(self.request_err("complete multipart upload of", key))
    }

    /// Uploads a stream of chunks (a target read through tough, say) the same way as
    /// [`Bucket::upload_file`]. On an error from the stream the upload is aborted and that error
    /// returned.
    pub async fn upload_stream<E>(
        &self,
        key: &str,
        mut chunks: impl futures::Stream<Item = std::result::Result<Bytes, E>> + Unpin,
    ) -> std::result::Result<u64, UploadError<E>> {
        let mut upload = self
            .start_multipart(key)
            .await
            .map_err(UploadError::Store)?;
        let mut total = 0u64;
        while let Some(chunk) = chunks.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => {
                    let _ = upload.abort().await;
                    return Err(UploadError::Source(e));
                }
            };
            if let Err(e) = upload.wait_for_capacity(PARTS_IN_FLIGHT).await {
                let _ = upload.abort().await;
                return Err(UploadError::Store(self.request_err("upload part of", key)(
                    e,
                )));
            }
            total += chunk.len() as u64;
            upload.write(&chunk);
        }
        upload.finish().await.map_err(|e| {
            UploadError::Store(self.request_err("complete multipart upload of", key)(e))
        })?;
        Ok(total)
    }

    async fn start_multipart(&self, key: &str) -> Result<WriteMultipart> {
        let opts = PutMultipartOptions {
            attributes: ObjectKind::of(key).attributes(),
            ..Default::default()
        };
        let upload = self
            .store
            .put_multipart_opts(&Self::path(key), opts)
            .await
            .map_err(self.request_err("start multipart upload of", key))?;
        Ok(WriteMultipart::new_with_chunk_size(upload, PART_SIZE))
    }

    /// Deletes the object at `key` (absent is not an error).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&Self::path(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.request_err("DELETE", key)(e)),
        }
    }

    /// Every key under `prefix` (a "directory": `a/b` lists `a/b/...`).
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>> {
        let prefix = Self::path(prefix.trim_end_matches('/'));
        let mut out = Vec::new();
        let mut stream = self.store.list(Some(&prefix));
        while let Some(meta) = stream.next().await {
            let meta = meta.map_err(self.request_err("LIST", prefix.as_ref()))?;
            out.push(meta.location.to_string());
        }
        out.sort();
        Ok(out)
    }
}

/// A failed [`Bucket::upload_stream`]: the source stream's error, or the store's.
#[derive(Debug)]
pub enum UploadError<E> {
    /// The stream of chunks failed.
    Source(E),
    /// The upload failed.
    Store(Error),
}

/// Runs futures on a small runtime of its own and waits for them from synchronous code, also
/// from a thread that is itself running an async runtime (where `block_on` would panic).
#[derive(Debug)]
pub struct Blocking {
    // Always `Some` until dropped.
    runtime: Option<tokio::runtime::Runtime>,
}

impl Blocking {
    /// A runtime with two worker threads (S3 calls are I/O-bound).
    pub fn new() -> Result<Blocking> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("repo-store")
            .enable_all()
            .build()
            .context(error::StartRuntimeSnafu)?;
        Ok(Blocking {
            runtime: Some(runtime),
        })
    }

    /// Runs `fut` to completion on this runtime and returns its output.
    pub fn run<T: Send + 'static>(
        &self,
        fut: impl std::future::Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        let runtime = self.runtime.as_ref().context(error::RuntimeSnafu)?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().ok().context(error::RuntimeSnafu)?
    }
}

impl Drop for Blocking {
    fn drop(&mut self) {
        // Dropping a runtime inside another runtime's thread panics; shut it down in the
        // background instead.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
