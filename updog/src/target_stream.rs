//! The byte stream of one image target from a given offset: HTTP with a `Range` request (and a
//! fallback when the server ignores it), or a positioned `file://` read. Length and hash checks
//! are the image writer's ([`crate::image`]), which keeps a resumable SHA-256 across runs.

use crate::error::{self, Error, Result};
use crate::http::HttpClient;
use bytes::Bytes;
use snafu::ResultExt;
use std::path::PathBuf;
use tracing::{debug, warn};
use url::Url;

/// A byte stream of one target, starting at a given offset.
#[derive(Debug)]
pub enum TargetStream {
    /// Over HTTP; `skip` bytes must be dropped first when the server ignored the Range request.
    Http {
        /// The response.
        response: reqwest::Response,
        /// Bytes still to drop.
        skip: u64,
        /// Bytes received and dropped so far (not yet taken by [`TargetStream::take_discarded`]).
        discarded: u64,
        /// URL (for errors).
        url: Url,
    },
    /// A local file, already positioned.
    File {
        /// The file.
        file: tokio::fs::File,
        /// Path (for errors).
        path: PathBuf,
        /// Read buffer.
        buf: Vec<u8>,
    },
}

impl TargetStream {
    /// Opens `url` at byte `offset` (HTTP Range, or a seek for `file://`).
    pub async fn open(http: &HttpClient, url: &Url, offset: u64) -> Result<TargetStream> {
        if url.scheme() == "file" {
            use tokio::io::AsyncSeekExt;
            let path = url.to_file_path().map_err(|()| Error::LocalTarget {
                path: PathBuf::from(url.path()),
                source: std::io::Error::other("not a local path"),
            })?;
            let mut file = tokio::fs::File::open(&path)
                .await
                .context(error::LocalTargetSnafu { path: &path })?;
            file.seek(std::io::SeekFrom::Start(offset))
                .await
                .context(error::LocalTargetSnafu { path: &path })?;
            return Ok(TargetStream::File {
                file,
                path,
                buf: vec![0; 256 << 10],
            });
        }
        let response = http.get_once(url, offset).await?;
        let mut skip = 0;
        if offset > 0 {
            let start = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if response.status().as_u16() == 206 && start == Some(offset) {
                debug!("resuming {url} at byte {offset}");
            } else {
                warn!("{url}: server ignored the Range request; re-reading {offset} bytes");
                skip = offset;
            }
        }
        Ok(TargetStream::Http {
            response,
            skip,
            discarded: 0,
            url: url.clone(),
        })
    }

    /// Bytes the network delivered that were dropped (a server that ignored the Range request
    /// sends the prefix again) since the last call: they were fetched, so they count as
    /// downloaded.
    pub fn take_discarded(&mut self) -> u64 {
        match self {
            TargetStream::Http { discarded, .. } => std::mem::take(discarded),
            TargetStream::File { .. } => 0,
        }
    }

    /// The next chunk, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Bytes>> {
        match self {
            TargetStream::Http {
                response,
                skip,
                discarded,
                url,
            } => loop {
                let chunk = response
                    .chunk()
                    .await
                    .context(error::HttpRequestSnafu { url: url.as_str() })?;
                let Some(mut chunk) = chunk else {
                    return Ok(None);
                };
                if *skip > 0 {
                    let n = (*skip).min(chunk.len() as u64);
                    *skip -= n;
                    *discarded += n;
                    chunk = chunk.slice(n as usize..);
                    if chunk.is_empty() {
                        continue;
                    }
                }
                return Ok(Some(chunk));
            },
            TargetStream::File { file, path, buf } => {
                use tokio::io::AsyncReadExt;
                let n = file.read(buf).await.context(error::LocalTargetSnafu {
                    path: path.as_path(),
                })?;
                Ok((n > 0).then(|| Bytes::copy_from_slice(&buf[..n])))
            }
        }
    }
}
