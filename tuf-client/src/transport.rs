//! The network edge: a small [`Transport`] trait that opens a URL as a byte stream and says
//! whether a failure means "not there" (which ends the root chain walk, §5.3.3) or anything else.
//!
//! Implementations: [`HttpTransport`] (reqwest), [`FileTransport`] (`file://`) and
//! [`DefaultTransport`], which picks one of them by URL scheme. Length limits, hashes and query
//! parameters are the updater's business, not the transport's.

use async_trait::async_trait;
use bytes::Bytes;
use futures::{Stream, StreamExt, TryStreamExt};
use std::fmt;
use std::pin::Pin;
use url::Url;

/// A stream of body chunks.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;

/// Opens URLs. Implement it to add retries, proxies or caching (updog's HTTP client does).
#[async_trait]
pub trait Transport: fmt::Debug + Send + Sync {
    /// Opens `url` for reading. A missing file must be reported with
    /// [`TransportErrorKind::NotFound`].
    async fn fetch(&self, url: &Url) -> Result<ByteStream, TransportError>;
}

/// What kind of failure a [`TransportError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The file does not exist (HTTP 403, 404 or 410; `ENOENT`).
    NotFound,
    /// The URL's scheme is not handled by this transport.
    UnsupportedScheme,
    /// Any other failure (connection, I/O, other HTTP status, body cut short).
    Other,
}

/// A transport failure, with its kind and URL.
#[derive(Debug)]
pub struct TransportError {
    kind: TransportErrorKind,
    url: String,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl TransportError {
    /// A new error of `kind` for `url`.
    pub fn new(
        kind: TransportErrorKind,
        url: &Url,
        message: impl Into<String>,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            kind,
            url: url.to_string(),
            message: message.into(),
            source,
        }
    }

    /// The kind of failure.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// The URL that failed.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// HTTP(S) over reqwest. 403, 404 and 410 are "not found" (S3 answers 403 for a missing key).
#[derive(Debug, Clone)]
pub struct HttpTransport {
    client: reqwest::Client,
}

impl HttpTransport {
    /// A transport over an existing client (with its timeouts, proxy and user agent).
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }
}

impl Default for HttpTransport {
    fn default() -> Self {
        Self::new(reqwest::Client::new())
    }
}

#[async_trait]
impl Transport for HttpTransport {
    async fn fetch(&self, url: &Url) -> Result<ByteStream, TransportError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(TransportError::new(
                TransportErrorKind::UnsupportedScheme,
                url,
                format!("scheme '{}' is not http or https", url.scheme()),
                None,
            ));
        }
        let response = self.client.get(url.clone()).send().await.map_err(|e| {
            TransportError::new(
                TransportErrorKind::Other,
                url,
                "HTTP request failed",
                Some(Box::new(e)),
            )
        })?;
        let status = response.status().as_u16();
        if matches!(status, 403 | 404 | 410) {
            return Err(TransportError::new(
                TransportErrorKind::NotFound,
                url,
                format!("HTTP status {status}: not found"),
                None,
            ));
        }
        if !response.status().is_success() {
            return Err(TransportError::new(
                TransportErrorKind::Other,
                url,
                format!("HTTP status {status}"),
                None,
            ));
        }
        let body_url = url.clone();
        let stream = response.bytes_stream().map_err(move |e| {
            TransportError::new(
                TransportErrorKind::Other,
                &body_url,
                "reading the HTTP body failed",
                Some(Box::new(e)),
            )
        });
        Ok(stream.boxed())
    }
}

/// `file://` URLs, read with tokio.
#[derive(Debug, Clone, Copy, Default)]
pub struct FileTransport;

#[async_trait]
impl Transport for FileTransport {
    async fn fetch(&self, url: &Url) -> Result<ByteStream, TransportError> {
        if url.scheme() != "file" {
            return Err(TransportError::new(
                TransportErrorKind::UnsupportedScheme,
                url,
                format!("scheme '{}' is not file", url.scheme()),
                None,
            ));
        }
        let path = url.to_file_path().map_err(|()| {
            TransportError::new(
                TransportErrorKind::Other,
                url,
                "not a local file path",
                None,
            )
        })?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            let kind = if e.kind() == std::io::ErrorKind::NotFound {
                TransportErrorKind::NotFound
            } else {
                TransportErrorKind::Other
            };
            TransportError::new(
                kind,
                url,
                format!("cannot open '{}'", path.display()),
                Some(Box::new(e)),
            )
        })?;
        let is_file = file.metadata().await.is_ok_and(|m| m.is_file());
        if !is_file {
            return Err(TransportError::new(
                TransportErrorKind::NotFound,
                url,
                format!("'{}' is not a regular file", path.display()),
                None,
            ));
        }
        let body_url = url.clone();
        let stream = tokio_util::io::ReaderStream::new(file).map_err(move |e| {
            TransportError::new(
                TransportErrorKind::Other,
                &body_url,
                "reading the file failed",
                Some(Box::new(e)),
            )
        });
        Ok(stream.boxed())
    }
}

/// `http`, `https` and `file` URLs, each to its transport.
#[derive(Debug, Clone, Default)]
pub struct DefaultTransport {
    http: HttpTransport,
    file: FileTransport,
}

impl DefaultTransport {
    /// With a default reqwest client.
    pub fn new() -> Self {
        Self::default()
    }

    /// With the given HTTP transport.
    pub fn with_http(http: HttpTransport) -> Self {
        Self {
            http,
            file: FileTransport,
        }
    }
}

#[async_trait]
impl Transport for DefaultTransport {
    async fn fetch(&self, url: &Url) -> Result<ByteStream, TransportError> {
        match url.scheme() {
            "file" => self.file.fetch(url).await,
            _ => self.http.fetch(url).await,
        }
    }
}
