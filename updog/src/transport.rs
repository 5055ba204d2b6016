//! The network edge: an HTTP client (reqwest + rustls) that adds updog's query parameters to
//! every request, honours the configured proxy, retries with backoff and reads with timeouts; a
//! tough [`Transport`] on top of it (with `file://` delegated to tough's `FilesystemTransport`);
//! and ranged byte streams for image targets.
//!
//! The transport also keeps a small cache of *immutable* metadata files (consistent-snapshot
//! `N.snapshot.json` / `N.targets.json` and the hash-named `manifest.json`), so when the
//! repository's `timestamp.json` has not changed, a check fetches nothing but the root probe and
//! the timestamp. Cached bytes still go through tough's full verification; the cache is only
//! written after a load succeeded.

use crate::config::NetworkSettings;
use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::reporter::{ProgressEvent, Reporter};
use async_trait::async_trait;
use bytes::Bytes;
use snafu::{IntoError, ResultExt};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tough::{FilesystemTransport, Transport, TransportError, TransportErrorKind, TransportStream};
use tracing::{debug, warn};
use url::Url;

/// Default retry deadline: how long one fetch may go on failing (no byte received) across all its
/// attempts and backoffs before updog gives up with the network exit status. Progress (a byte
/// received) starts a new window, so a slow but moving download is never cut.
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(60);

/// The one retry policy of updog: at most `retries` further attempts after consecutive failures
/// without progress, and never past the deadline (an attempt still running when it passes is
/// cut). Attempt counts are exact: `retries = N` means at most N + 1 requests without progress.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    retries: u32,
    failures: u32,
    deadline: Duration,
    window_start: std::time::Instant,
    backoff: Duration,
    backoff_max: Duration,
}

impl RetryBudget {
    /// A fresh budget from the client's settings.
    pub fn new(http: &HttpClient) -> Self {
        Self {
            retries: http.net.retries,
            failures: 0,
            deadline: http.deadline,
            window_start: std::time::Instant::now(),
            backoff: http.net.backoff,
            backoff_max: http.net.backoff_max,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_sub(self.window_start.elapsed())
    }

    /// The deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Bytes arrived: the failure count and the deadline window start again.
    pub fn progress(&mut self) {
        self.failures = 0;
        self.window_start = std::time::Instant::now();
    }

    /// Failures since the last progress.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure; the backoff before the next attempt, or `None` when the budget (count
    /// or deadline) is spent.
    pub fn next_attempt(&mut self) -> Option<Duration> {
        self.failures += 1;
        if self.failures > self.retries {
            return None;
        }
        let factor = 1u32
            .checked_shl(self.failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let delay = self.backoff.saturating_mul(factor).min(self.backoff_max);
        (delay < self.remaining()).then_some(delay)
    }

    /// Runs `attempt`, cut at the deadline.
    pub async fn run<T>(
        &self,
        url: &Url,
        attempt: impl std::future::Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.remaining(), attempt).await {
            Ok(r) => r,
            Err(_) => error::RetryDeadlineSnafu {
                url: url.as_str(),
                deadline: self.deadline,
                attempts: self.failures + 1,
            }
            .fail(),
        }
    }
}

/// Largest response the metadata transport buffers (tough's own limits are lower: 1-10 MiB).
pub const MAX_BUFFERED: u64 = 16 << 20;

/// Query parameters added, sorted by key, to every request (Bottlerocket §1.5: `version`, `seed`,
/// and during an update `target` and `migrations`).
#[derive(Debug, Clone, Default)]
pub struct QueryParams(Arc<Mutex<BTreeMap<String, String>>>);

impl QueryParams {
    /// Sets (or replaces) one parameter.
    pub fn set(&self, key: &str, value: impl Into<String>) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(key.to_owned(), value.into());
        }
    }

    /// `url` with the parameters appended (after any it already has).
    pub fn apply(&self, url: &Url) -> Url {
        let mut url = url.clone();
        if let Ok(m) = self.0.lock()
            && !m.is_empty()
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in m.iter() {
                pairs.append_pair(k, v);
            }
        }
        url
    }
}

/// A reporter handle that is `Debug` and `Clone`.
#[derive(Clone)]
pub struct SharedReporter(pub Arc<dyn Reporter>);

impl std::fmt::Debug for SharedReporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedReporter")
    }
}

/// The HTTP client shared by the tough transport and the image downloader.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    params: QueryParams,
    net: NetworkSettings,
    deadline: Duration,
    reporter: SharedReporter,
}

/// True for statuses that mean "this file is not there" (S3 answers 403 for missing keys).
fn is_not_found(status: u16) -> bool {
    matches!(status, 403 | 404 | 410)
}

fn is_retryable_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

impl HttpClient {
    /// Builds the client from the network settings.
    pub fn new(
        net: NetworkSettings,
        params: QueryParams,
        reporter: Arc<dyn Reporter>,
    ) -> Result<Self> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("updog/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(net.connect_timeout)
            .read_timeout(net.read_timeout);
        if let Some(proxy) = &net.https_proxy {
            // Like Bottlerocket: the configured proxy wins over the environment.
            let mut p = reqwest::Proxy::https(proxy.as_str()).context(error::HttpClientSnafu)?;
            if !net.no_proxy.is_empty() {
                p = p.no_proxy(reqwest::NoProxy::from_string(&net.no_proxy.join(",")));
            }
            builder = builder.proxy(p);
        }
        let client = builder.build().context(error::HttpClientSnafu)?;
        Ok(Self {
            client,
            params,
            net,
            deadline: DEFAULT_RETRY_DEADLINE,
            reporter: SharedReporter(reporter),
        })
    }

    /// Sets the retry deadline (see [`RetryBudget`]; default [`DEFAULT_RETRY_DEADLINE`]).
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The retry deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// The query parameters (shared with every clone).
    pub fn params(&self) -> &QueryParams {
        &self.params
    }

    /// The network settings.
    pub fn settings(&self) -> &NetworkSettings {
        &self.net
    }

    /// Reports a retry and sleeps for the backoff.
    pub async fn wait_retry(
        &self,
        url: &Url,
        attempt: u32,
        delay: Duration,
        reason: &(dyn std::fmt::Display + Sync),
    ) {
        let reason = reason.to_string();
        warn!("request for {url} failed (attempt {attempt}): {reason}; retrying in {delay:?}");
        self.reporter.0.report(ProgressEvent::Retry {
            url: url.to_string(),
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason,
        });
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
    }

    /// One GET (no retry). `offset > 0` sends `Range: bytes=offset-`. Returns the response if the
    /// status is 200 or 206.
    pub async fn get_once(&self, url: &Url, offset: u64) -> Result<reqwest::Response> {
        let full = self.params.apply(url);
        debug!("GET {full} (offset {offset})");
        let mut req = self.client.get(full.clone());
        if offset > 0 {
            req = req.header(reqwest::header::RANGE, format!("bytes={offset}-"));
        }
        let resp = req
            .send()
            .await
            .context(error::HttpRequestSnafu { url: url.as_str() })?;
        let status = resp.status().as_u16();
        if status == 200 || status == 206 {
            Ok(resp)
        } else {
            error::HttpStatusSnafu {
                url: url.as_str(),
                status,
            }
            .fail()
        }
    }

    /// Whether another attempt may help.
    pub fn retryable(e: &Error) -> bool {
        match e {
            Error::HttpStatus { status, .. } => is_retryable_status(*status),
            Error::HttpRequest { .. } => true,
            _ => false,
        }
    }

    /// GET the whole body into memory (at most `limit` bytes), retrying the whole request on any
    /// network failure within one [`RetryBudget`].
    pub async fn get_bytes(&self, url: &Url, limit: u64) -> Result<Vec<u8>> {
        let mut budget = RetryBudget::new(self);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let fetch = async {
                let mut resp = self.get_once(url, 0).await?;
                let mut body = Vec::new();
                while let Some(chunk) = resp
                    .chunk()
                    .await
                    .context(error::HttpRequestSnafu { url: url.as_str() })?
                {
                    if body.len() as u64 + chunk.len() as u64 > limit {
                        return error::TargetTooLongSnafu {
                            name: url.to_string(),
                            expected: limit,
                        }
                        .fail();
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body)
            };
            match budget.run(url, fetch).await {
                Ok(b) => return Ok(b),
                Err(e) if Self::retryable(&e) => match budget.next_attempt() {
                    Some(delay) => self.wait_retry(url, attempt, delay, &e).await,
                    None => return Err(e),
                },
                Err(e) => return Err(e),
            }
        }
    }
}

/// Immutable metadata kept across runs (see the module docs).
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
    fn key(&self, url: &Url) -> Option<String> {
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

    fn lookup(&self, url: &Url) -> Option<Vec<u8>> {
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

    fn remember(&self, url: &Url, bytes: &[u8]) {
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

/// The tough transport: HTTP(S) through [`HttpClient`], `file://` through tough's own.
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
}

fn one_chunk(bytes: Vec<u8>) -> TransportStream {
    Box::pin(futures::stream::once(async move { Ok(Bytes::from(bytes)) }))
}

#[async_trait]
impl Transport for UpdogTransport {
    async fn fetch(&self, url: Url) -> std::result::Result<TransportStream, TransportError> {
        if let Some(cache) = &self.cache
            && let Some(bytes) = cache.lookup(&url)
        {
            return Ok(one_chunk(bytes));
        }
        match url.scheme() {
            "file" => {
                let stream = FilesystemTransport.fetch(url.clone()).await?;
                if self.cache.as_ref().and_then(|c| c.key(&url)).is_some() {
                    use tough::IntoVec;
                    let bytes = stream.into_vec().await?;
                    if let Some(c) = &self.cache {
                        c.remember(&url, &bytes);
                    }
                    return Ok(one_chunk(bytes));
                }
                Ok(stream)
            }
            "http" | "https" => match self.http.get_bytes(&url, MAX_BUFFERED).await {
                Ok(bytes) => {
                    if let Some(c) = &self.cache {
                        c.remember(&url, &bytes);
                    }
                    Ok(one_chunk(bytes))
                }
                Err(Error::HttpStatus { status, .. }) if is_not_found(status) => {
                    Err(TransportError::new(TransportErrorKind::FileNotFound, url))
                }
                Err(e) => Err(TransportError::new_with_cause(
                    TransportErrorKind::Other,
                    url,
                    e,
                )),
            },
            _ => Err(TransportError::new(
                TransportErrorKind::UnsupportedUrlScheme,
                url,
            )),
        }
    }
}

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

/// Builds the URL of a target as tough does (`<sha256>.<name>` with consistent snapshots).
pub fn target_url(
    targets_base: &Url,
    name: &str,
    sha256_hex: &str,
    consistent: bool,
) -> Result<Url> {
    let file = if consistent {
        format!("{sha256_hex}.{name}")
    } else {
        name.to_owned()
    };
    targets_base.join(&file).map_err(|source| {
        error::JoinUrlSnafu {
            base: targets_base.as_str(),
            path: file,
        }
        .into_error(source)
    })
}

/// Path helper for error messages.
pub fn display_path(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn params_are_sorted_and_appended() {
        let p = QueryParams::default();
        p.set("version", "1.2.3");
        p.set("seed", "42");
        p.set("migrations", "a,b,manifest.json");
        let url = p.apply(&"http://h/x/timestamp.json".parse().unwrap());
        assert_eq!(
            url.query(),
            Some("migrations=a%2Cb%2Cmanifest.json&seed=42&version=1.2.3")
        );
    }

    fn client(retries: u32, deadline: Duration) -> HttpClient {
        let net = NetworkSettings {
            retries,
            backoff: Duration::from_millis(10),
            backoff_max: Duration::from_millis(40),
            ..NetworkSettings::default()
        };
        HttpClient::new(net, QueryParams::default(), Arc::new(crate::NullReporter))
            .unwrap()
            .with_deadline(deadline)
    }

    #[test]
    fn retry_budget_allows_exactly_n_retries_without_progress() {
        let http = client(3, Duration::from_secs(60));
        let mut b = RetryBudget::new(&http);
        let delays: Vec<_> = std::iter::from_fn(|| b.next_attempt()).collect();
        assert_eq!(
            delays,
            [10, 20, 40].map(Duration::from_millis),
            "3 retries, doubling, capped"
        );
        // Progress starts a new count.
        b.progress();
        assert_eq!(b.failures(), 0);
        assert!(b.next_attempt().is_some());
        // No retries at all.
        let mut none = RetryBudget::new(&client(0, Duration::from_secs(60)));
        assert_eq!(none.next_attempt(), None);
    }

    #[test]
    fn retry_budget_stops_at_the_deadline() {
        let http = client(1000, Duration::from_millis(30));
        let mut b = RetryBudget::new(&http);
        assert!(b.remaining() <= Duration::from_millis(30));
        std::thread::sleep(Duration::from_millis(35));
        assert_eq!(b.remaining(), Duration::ZERO);
        assert_eq!(b.next_attempt(), None, "no retry after the deadline");
        // An attempt still running at the deadline is cut with a network error.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let url: Url = "http://h/x".parse().unwrap();
        let b = RetryBudget::new(&http);
        let started = std::time::Instant::now();
        let e = rt
            .block_on(b.run(&url, async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            }))
            .unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(e.exit_code(), crate::ExitStatus::Network);
        assert!(e.to_string().contains("retry deadline"), "{e}");
    }

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
