//! updog's one HTTP client (reqwest + rustls): it adds updog's query parameters to every request,
//! honours the configured proxy, retries with backoff within one [`RetryBudget`] (a count and a
//! deadline) and reads with timeouts. The TUF transport ([`crate::transport`]) and the image
//! stream ([`crate::target_stream`]) both go through it.

use crate::config::NetworkSettings;
use crate::error::{self, Error, Result};
use crate::reporter::{ProgressEvent, Reporter};
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::{debug, warn};
use url::Url;

/// Default retry deadline: how long one fetch may go on failing (no byte received) across all its
/// attempts and backoffs before updog gives up with the network exit status. Progress (a byte
/// received) starts a new window, so a slow but moving download is never cut.
pub const DEFAULT_RETRY_DEADLINE: Duration = Duration::from_secs(60);

/// updog's use of the workspace's one retry policy ([`abos_retry`]): at most `retries` further
/// attempts after consecutive failures without progress, and never past the deadline (an attempt
/// still running when it passes is cut, see [`RetryBudget::run`]). Attempt counts are exact:
/// `retries = N` means at most N + 1 requests without progress.
#[derive(Debug, Clone)]
pub struct RetryBudget {
    tries: abos_retry::Tries,
    deadline: Duration,
}

impl RetryBudget {
    /// A fresh budget from the client's settings.
    pub fn new(http: &HttpClient) -> Self {
        let policy = abos_retry::RetryPolicy::attempts(http.net.retries.saturating_add(1))
            .with_deadline(http.deadline)
            .with_backoff(http.net.backoff, http.net.backoff_max);
        Self {
            tries: policy.start(),
            deadline: http.deadline,
        }
    }

    /// Time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.tries.remaining().unwrap_or(self.deadline)
    }

    /// The deadline.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Bytes arrived: the failure count and the deadline window start again.
    pub fn progress(&mut self) {
        self.tries.progress();
    }

    /// Failures since the last progress.
    pub fn failures(&self) -> u32 {
        self.tries.made() - 1
    }

    /// Records a failure; the backoff before the next attempt, or `None` when the budget (count
    /// or deadline) is spent.
    pub fn next_attempt(&mut self) -> Option<Duration> {
        self.tries.again(true)
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
                attempts: self.tries.made(),
            }
            .fail(),
        }
    }
}

/// Largest response the TUF transport buffers (tuf-client's own limits are lower: 16 KiB to
/// 5 MiB for metadata; manifest.json and migrations are small).
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

/// The HTTP client shared by the TUF transport and the image downloader.
#[derive(Debug, Clone)]
pub struct HttpClient {
    client: reqwest::Client,
    params: QueryParams,
    net: NetworkSettings,
    deadline: Duration,
    reporter: SharedReporter,
}

/// True for statuses that mean "this file is not there" (S3 answers 403 for missing keys).
pub(crate) fn is_not_found(status: u16) -> bool {
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
        self.get_with_range(url, (offset > 0).then(|| format!("bytes={offset}-")))
            .await
    }

    /// One GET of bytes `start..end` (no retry), for delta updates: `Range: bytes=start-(end-1)`.
    /// Returns the response if the status is 200 or 206 (the caller checks that it is a 206
    /// for exactly that range: a 200 means the server ignores Range).
    pub async fn get_range(&self, url: &Url, start: u64, end: u64) -> Result<reqwest::Response> {
        let range = format!("bytes={start}-{}", end.saturating_sub(1));
        self.get_with_range(url, Some(range)).await
    }

    /// One GET of `url` with the query parameters and an optional `Range` header; a status
    /// other than 200 or 206 is an error.
    async fn get_with_range(&self, url: &Url, range: Option<String>) -> Result<reqwest::Response> {
        let full = self.params.apply(url);
        debug!("GET {full} ({})", range.as_deref().unwrap_or("whole"));
        let mut req = self.client.get(full);
        if let Some(range) = range {
            req = req.header(reqwest::header::RANGE, range);
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

    /// Whether an HTTP status is worth another attempt (408, 429, 5xx).
    pub fn retryable_status(status: u16) -> bool {
        is_retryable_status(status)
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
}
