//! The TUF transport: how tuf-client's [`tuf_client::Updater`] reaches the repository from
//! updog. HTTP(S) goes through updog's [`HttpClient`] (query parameters, proxy, retries within
//! the retry budget and deadline, timeouts); `file://` through tuf-client's [`FileTransport`].
//! Immutable files are served from, and remembered for, the [`MetadataCache`].
//!
//! The HTTP client, the metadata cache and the image target stream live in their own modules
//! ([`crate::http`], [`crate::metadata_cache`], [`crate::target_stream`]); they are re-exported
//! here under their old paths.

use crate::error::Error;
use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use tuf_client::{ByteStream, FileTransport, Transport, TransportError, TransportErrorKind};
use url::Url;

pub use crate::http::{
    DEFAULT_RETRY_DEADLINE, HttpClient, MAX_BUFFERED, QueryParams, RetryBudget, SharedReporter,
};
pub use crate::metadata_cache::MetadataCache;
pub use crate::target_stream::TargetStream;

/// tuf-client's transport over [`HttpClient`] (and `file://`), with an optional
/// immutable-metadata cache.
#[derive(Debug, Clone)]
pub struct UpdogTransport {
    http: HttpClient,
    cache: Option<MetadataCache>,
}

impl UpdogTransport {
    /// A transport using `http`, with an optional immutable-metadata cache.
    pub fn new(http: HttpClient, cache: Option<MetadataCache>) -> Self {
        Self { http, cache }
    }

    /// The HTTP client.
    pub fn http(&self) -> &HttpClient {
        &self.http
    }
}

fn one_chunk(bytes: Vec<u8>) -> ByteStream {
    futures::stream::once(async move { Ok(Bytes::from(bytes)) }).boxed()
}

#[async_trait]
impl Transport for UpdogTransport {
    async fn fetch(&self, url: &Url) -> Result<ByteStream, TransportError> {
        if let Some(cache) = &self.cache
            && let Some(bytes) = cache.lookup(url)
        {
            return Ok(one_chunk(bytes));
        }
        match url.scheme() {
            "file" => {
                let mut stream = FileTransport.fetch(url).await?;
                let Some(cache) = self.cache.as_ref().filter(|c| c.key(url).is_some()) else {
                    return Ok(stream);
                };
                let mut bytes = Vec::new();
                while let Some(chunk) = stream.next().await {
                    bytes.extend_from_slice(&chunk?);
                }
                cache.remember(url, &bytes);
                Ok(one_chunk(bytes))
            }
            "http" | "https" => match self.http.get_bytes(url, MAX_BUFFERED).await {
                Ok(bytes) => {
                    if let Some(c) = &self.cache {
                        c.remember(url, &bytes);
                    }
                    Ok(one_chunk(bytes))
                }
                Err(e @ Error::HttpStatus { status, .. }) if crate::http::is_not_found(status) => {
                    Err(TransportError::new(
                        TransportErrorKind::NotFound,
                        url,
                        format!("HTTP status {status}: not found"),
                        Some(Box::new(e)),
                    ))
                }
                Err(e) => Err(TransportError::new(
                    TransportErrorKind::Other,
                    url,
                    "the request failed",
                    Some(Box::new(e)),
                )),
            },
            other => Err(TransportError::new(
                TransportErrorKind::UnsupportedScheme,
                url,
                format!("updog does not fetch {other}:// URLs"),
                None,
            )),
        }
    }
}
