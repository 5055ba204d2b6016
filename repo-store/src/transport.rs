//! A tough [`Transport`] for `s3://` URLs (through the S3 API, with the AWS configuration
//! chain's credentials) and, for every other URL, tough's default transport.

use crate::{Bucket, S3Url};
use futures::StreamExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tough::{DefaultTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use url::Url;

/// Reads `s3://bucket/key` through the S3 API; `file://` and `http(s)://` as tough does.
#[derive(Debug, Clone, Default)]
pub struct S3Transport {
    default: DefaultTransport,
    buckets: Arc<Mutex<HashMap<String, Bucket>>>,
}

impl S3Transport {
    /// A new transport (S3 clients are made on first use, one per bucket).
    pub fn new() -> Self {
        Self::default()
    }

    fn bucket(&self, name: &str) -> crate::Result<Bucket> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(b) = buckets.get(name) {
            return Ok(b.clone());
        }
        let b = Bucket::from_env(name)?;
        buckets.insert(name.to_owned(), b.clone());
        Ok(b)
    }
}

#[tough::async_trait]
impl Transport for S3Transport {
    async fn fetch(&self, url: Url) -> Result<TransportStream, TransportError> {
        if url.scheme() != "s3" {
            return self.default.fetch(url).await;
        }
        let other = |e: crate::Error| {
            TransportError::new_with_cause(TransportErrorKind::Other, url.as_str(), e)
        };
        let (bucket, key) = S3Url::split_url(&url).map_err(other)?;
        let bucket = self.bucket(&bucket).map_err(other)?;
        match bucket.get_stream(&key).await.map_err(other)? {
            None => Err(TransportError::new(
                TransportErrorKind::FileNotFound,
                url.as_str(),
            )),
            Some(stream) => {
                let url = url.clone();
                Ok(Box::pin(SyncStream(std::sync::Mutex::new(
                    stream
                        .map(move |r| {
                            r.map_err(|e| {
                                TransportError::new_with_cause(
                                    TransportErrorKind::Other,
                                    url.as_str(),
                                    e,
                                )
                            })
                        })
                        .boxed(),
                ))))
            }
        }
    }
}

/// tough wants a `Sync` stream; object_store's is only `Send`. Polling needs `&mut self`, so the
/// mutex is never contended (`get_mut`); it only provides the `Sync` bound.
struct SyncStream<S>(std::sync::Mutex<S>);

impl<S: futures::Stream + Unpin> futures::Stream for SyncStream<S> {
    type Item = S::Item;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        let inner = self
            .get_mut()
            .0
            .get_mut()
            .unwrap_or_else(|p| p.into_inner());
        inner.poll_next_unpin(cx)
    }
}
