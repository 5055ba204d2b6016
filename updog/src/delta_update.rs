//! Delta (block-reuse) updates of the root image (issue 16; format: `delta/README.md`).
//!
//! When the signed targets metadata lists `<root>.index` and `<root>.chunks` for the chosen
//! update's root image (published by `pubsys repo --delta`) and `updog.toml` does not say
//! `delta = false`, the root image is written from a delta instead of the full `.lz4` artifact:
//!
//! 1. the index is downloaded **through TUF** (length and SHA-256 from the signed targets
//!    metadata; a mismatch refuses the update with the verification exit status);
//! 2. one 1-byte Range request probes that the server honours Range;
//! 3. the running set's ROOT partition is cut with the index's chunking parameters and hashed;
//! 4. the plan copies what the host has and fetches the rest in coalesced Range requests (over
//!    updog's HTTP client: its proxy, query parameters, timeouts, retry budget and deadline);
//!    when the index plus the requests would not be smaller than the full artifact, the full
//!    artifact is used;
//! 5. the executor writes the inactive ROOT partition, re-hashing every copied chunk (a block
//!    flipped on this disk is fetched, never copied), checking every fetched chunk against the
//!    index and the whole image against the index's SHA-256; it records its progress in the
//!    resume directory, so a rerun after a kill re-verifies what was written and continues.
//!
//! Any delta failure that the full artifact can cure (server ignores Range, missing or short
//! chunk file, a chunk or the image not matching the index, an index that does not parse) is
//! logged and the full artifact is written instead; the inactive set is still unbootable then,
//! and the written set is verified exactly as after a full download (dm-verity tree and the root
//! hash from the new BOOT) before it is marked valid. Network failures after the retry budget
//! and disk errors are errors, as for full downloads (a rerun resumes).

use crate::error::{Error, Result};
use crate::http::{HttpClient, RetryBudget};
use crate::image::{self, ImagePlan, ImageResult, WriteSettings};
use crate::repo::{LoadedRepo, TargetInfo};
use crate::reporter::{ImageKind, ProgressEvent, Reporter};
use crate::resume;
use abos_delta::plan::Summary;
use abos_delta::{Decision, Index, LocalIndex, Plan};
use serde::{Deserialize, Serialize};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tracing::{info, warn};
use url::Url;

/// The executor's progress record in the resume directory.
pub const PROGRESS_FILE: &str = "delta-root.progress";

/// Largest index accepted (a 1 GiB root has a ~2.3 MB index; the TUF transport buffers at most
/// 16 MiB anyway).
pub const INDEX_LIMIT: u64 = 16 << 20;

/// Report progress about every this many bytes written.
const REPORT_EVERY: u64 = 1 << 20;

/// How the root image was (or would be) written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// From the delta.
    Delta,
    /// The full artifact.
    Full,
}

/// What `check-update` and `status` say about a delta for the offered update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeltaAvailability {
    /// Whether `update` would write the root image from the delta.
    pub available: bool,
    /// Why not (absent when available).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Bytes the delta downloads: the index plus the Range requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub planned_fetch_bytes: Option<u64>,
    /// Image bytes reused from the running root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuse_bytes: Option<u64>,
    /// Range requests planned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    /// The full root artifact's length (what a full update downloads for the root).
    pub full_bytes: u64,
    /// The update (version) these figures are for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// What the figures were computed from: the index's signed SHA-256 and the running ROOT
    /// partition's GUID. The running root is read-only (dm-verity), so a later check with the
    /// same key reuses the figures instead of downloading the index and scanning again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub computed_for: Option<String>,
}

/// What `update` did for the root image (in the outcome JSON, `root_update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeltaReport {
    /// `delta` or `full`.
    pub method: Method,
    /// Why the full artifact was used (absent for `delta`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The plan's figures, when a plan was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub planned_fetch_bytes: Option<u64>,
    /// Image bytes the plan reuses, when a plan was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reuse_bytes: Option<u64>,
    /// The full root artifact's length.
    pub full_bytes: u64,
    /// Bytes downloaded for the delta in this run (index, probe, ranges; also when it fell back).
    pub delta_bytes: u64,
    /// Image bytes copied from the running root (after re-hashing).
    pub copied_bytes: u64,
    /// Range requests made.
    pub requests: u64,
    /// Chunks planned as copies whose local content no longer matched: fetched instead.
    pub refetched_chunks: u64,
    /// Chunks found written and verified by an earlier (killed) run.
    pub resumed_chunks: u64,
    /// How the delta wrote the inactive ROOT partition: `direct` (`O_DIRECT`) or `buffered`
    /// (the page cache); absent when the full artifact was written.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub write_io: Option<&'static str>,
    /// How the written root was checked against its dm-verity tree: `while-writing` (read back
    /// behind the writer) or `after-writing` (the separate pass: a block device without direct
    /// I/O, or the full image after a delta that failed). Set by the apply step.
    pub verified: &'static str,
}

impl DeltaReport {
    fn full(reason: impl Into<String>, full_bytes: u64) -> DeltaReport {
        DeltaReport {
            method: Method::Full,
            reason: Some(reason.into()),
            planned_fetch_bytes: None,
            reuse_bytes: None,
            full_bytes,
            delta_bytes: 0,
            copied_bytes: 0,
            requests: 0,
            refetched_chunks: 0,
            resumed_chunks: 0,
            write_io: None,
            verified: "after-writing",
        }
    }
}

/// Chunk file ranges over updog's HTTP client (its retry budget and deadline per request).
/// A server that answers a Range request with anything but the exact 206 gives
/// [`abos_delta::Error::RangeRefused`] / [`abos_delta::Error::ShortRange`] (fall back); a network
/// failure after the retries gives [`abos_delta::Error::Fetch`] and keeps updog's error, which
/// [`UpdogFetch::take_error`] hands back.
#[derive(Debug)]
pub struct UpdogFetch {
    http: HttpClient,
    url: Url,
    received: Arc<AtomicU64>,
    error: Option<Error>,
}

impl UpdogFetch {
    /// Fetches from `url`, adding every body byte received to `received`.
    pub fn new(http: HttpClient, url: Url, received: Arc<AtomicU64>) -> UpdogFetch {
        UpdogFetch {
            http,
            url,
            received,
            error: None,
        }
    }

    /// The updog error behind the last [`abos_delta::Error::Fetch`].
    pub fn take_error(&mut self) -> Option<Error> {
        self.error.take()
    }

    /// Whether the server honours Range requests (one 1-byte request).
    pub async fn supports_ranges(&mut self) -> Result<bool> {
        use abos_delta::fetch::Fetch;
        match self.fetch(0, 1).await {
            Ok(_) => Ok(true),
            Err(abos_delta::Error::RangeRefused { .. } | abos_delta::Error::ShortRange { .. }) => {
                Ok(false)
            }
            Err(e) => Err(self.take_error().unwrap_or_else(|| Error::DeltaIo {
                partition: "the chunk file".to_owned(),
                source: e,
            })),
        }
    }

    /// One attempt: the outer error is updog's (network, maybe retried), the inner the
    /// server's answer to the Range request.
    async fn once(&self, start: u64, end: u64) -> Result<abos_delta::Result<Vec<u8>>> {
        let url = self.url.to_string();
        if self.url.scheme() == "file" {
            // A repository on a local file system (or a mounted medium): positioned reads.
            let path = self.url.to_file_path().map_err(|()| Error::LocalTarget {
                path: PathBuf::from(self.url.path()),
                source: std::io::Error::other("not a local path"),
            })?;
            let got = match abos_delta::fetch::FileFetch::open(&path) {
                Ok(mut f) => {
                    use abos_delta::fetch::Fetch;
                    f.fetch(start, end).await
                }
                Err(e) => Err(e),
            };
            if let Ok(bytes) = &got {
                self.received
                    .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            }
            return match got {
                Err(
                    abos_delta::Error::Open { source, .. } | abos_delta::Error::Read { source, .. },
                ) => Err(Error::LocalTarget { path, source }),
                other => Ok(other),
            };
        }
        let resp = match self.http.get_range(&self.url, start, end).await {
            Ok(r) => r,
            Err(Error::HttpStatus { status, .. }) if !HttpClient::retryable_status(status) => {
                // 404 (chunk file gone), 416 (shorter than the index says), ...: fall back.
                return Ok(Err(abos_delta::Error::RangeRefused {
                    url,
                    start,
                    end,
                    status,
                }));
            }
            Err(e) => return Err(e),
        };
        let status = resp.status().as_u16();
        if status != 206 {
            return Ok(Err(abos_delta::Error::RangeRefused {
                url,
                start,
                end,
                status,
            }));
        }
        let content_range = resp
            .headers()
            .get(reqwest::header::CONTENT_RANGE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let want = format!("bytes {start}-{}/", end - 1);
        if !content_range.starts_with(&want) {
            return Ok(Err(abos_delta::Error::ShortRange {
                what: url,
                start,
                end,
                got: 0,
            }));
        }
        let mut resp = resp;
        let mut body = Vec::with_capacity((end - start) as usize);
        while let Some(chunk) = resp.chunk().await.map_err(|source| Error::HttpRequest {
            url: url.clone(),
            source: Box::new(source),
        })? {
            self.received
                .fetch_add(chunk.len() as u64, Ordering::Relaxed);
            if body.len() + chunk.len() > (end - start) as usize {
                return Ok(Err(abos_delta::Error::ShortRange {
                    what: url,
                    start,
                    end,
                    got: (body.len() + chunk.len()) as u64,
                }));
            }
            body.extend_from_slice(&chunk);
        }
        if body.len() as u64 != end - start {
            return Ok(Err(abos_delta::Error::ShortRange {
                what: url,
                start,
                end,
                got: body.len() as u64,
            }));
        }
        Ok(Ok(body))
    }

    async fn get(&mut self, start: u64, end: u64) -> abos_delta::Result<Vec<u8>> {
        let mut budget = RetryBudget::new(&self.http);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let e = match budget.run(&self.url, self.once(start, end)).await {
                Ok(answer) => return answer,
                Err(e) => e,
            };
            if HttpClient::retryable(&e)
                && let Some(delay) = budget.next_attempt()
            {
                self.http.wait_retry(&self.url, attempt, delay, &e).await;
                continue;
            }
            let reason = e.to_string();
            self.error = Some(e);
            return Err(abos_delta::Error::Fetch { start, end, reason });
        }
    }
}

impl abos_delta::fetch::Fetch for UpdogFetch {
    fn fetch(
        &mut self,
        start: u64,
        end: u64,
    ) -> impl std::future::Future<Output = abos_delta::Result<Vec<u8>>> + Send {
        self.get(start, end)
    }
}

/// The inactive ROOT partition as the executor's target: offsets from the partition's start,
/// bounded by its length; every write is counted and reported.
///
/// The disk I/O is [`crate::blockio::DiskTarget`]'s, the full write's policy for a writer that
/// seeks (`UPDOG_DIRECT_IO`): on a block device `O_DIRECT` through the full path's writer (the
/// chunks are written in order and contiguous, so they stream as one run; a partial block at a
/// checkpoint or the image's end is padded inside the partition and rewritten whole by what
/// follows), elsewhere or where refused the page cache. Durability: the executor calls `flush`
/// (every pending byte written) and `sync` (`fdatasync`, which also flushes the device's cache)
/// before each progress record and at the end, so a checkpoint covers only durable bytes and the
/// set is verified only after all of it is durable. Resume: the chunks a record covers are
/// re-read from the device ([`crate::blockio::DirectWindow`]: `O_DIRECT`, or the page cache after
/// dropping the partition's clean pages); even a page that stayed cached holds exactly what was
/// synced before the record was written (a block device's page cache is coherent with it, and a
/// power loss empties it). The root check reads the device too
/// ([`crate::verity::RootCheck`] behind the writer, else [`crate::verity::verify`]).
struct PartitionTarget {
    disk: crate::blockio::DiskTarget,
    len: u64,
    pos: u64,
    written: u64,
    reported: u64,
    received: Arc<AtomicU64>,
    total: u64,
    reporter: Arc<dyn Reporter>,
}

impl PartitionTarget {
    fn report(&mut self) {
        self.reported = self.written;
        self.reporter.report(ProgressEvent::ImageProgress {
            image: ImageKind::Root,
            received: self.received.load(Ordering::Relaxed),
            total: self.total,
            written: self.written,
        });
    }
}

impl Read for PartitionTarget {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len.saturating_sub(self.pos);
        let n = (buf.len() as u64).min(left) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.disk.seek(SeekFrom::Start(self.pos))?;
        self.disk.read_exact(&mut buf[..n])?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for PartitionTarget {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.pos + buf.len() as u64 > self.len {
            return Err(std::io::Error::other(format!(
                "the image does not fit the partition ({} bytes)",
                self.len
            )));
        }
        self.disk.seek(SeekFrom::Start(self.pos))?;
        self.disk.write_all(buf)?;
        self.pos += buf.len() as u64;
        self.written += buf.len() as u64;
        if self.written - self.reported >= REPORT_EVERY {
            self.report();
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.disk.flush()
    }
}

impl Seek for PartitionTarget {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let pos = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
        };
        self.pos = pos.ok_or_else(|| std::io::Error::other("seek before the partition"))?;
        Ok(self.pos)
    }
}

impl abos_delta::execute::Target for PartitionTarget {
    fn sync(&mut self) -> std::io::Result<()> {
        self.disk.sync().map_err(std::io::Error::other)
    }
}

/// Everything the executor needs, once the delta is decided.
struct Ready {
    index: Index,
    index_bytes: u64,
    plan: Plan,
    summary: Summary,
    fetch: UpdogFetch,
    sources: Vec<std::fs::File>,
}

/// Why there is no delta (with the figures, when a plan was made).
struct NotAvailable {
    reason: String,
    summary: Option<Summary>,
}

enum Prepared {
    Ready(Box<Ready>),
    No(NotAvailable),
}

fn no(reason: impl Into<String>) -> Prepared {
    Prepared::No(NotAvailable {
        reason: reason.into(),
        summary: None,
    })
}

/// Where the delta's inputs and output are.
#[derive(Debug, Clone)]
pub struct DeltaDisk {
    /// The whole disk (or image file) holding both sets.
    pub disk: PathBuf,
    /// The running set's ROOT partition (read to find reusable chunks).
    pub active_root: signpost::Partition,
    /// The inactive set's ROOT partition (written).
    pub inactive_root: signpost::Partition,
}

/// Index download, Range probe, scan of the running root, plan and decision. Errors are those
/// that must stop the update (the index fails TUF verification, the network is down); anything
/// the full artifact cures is [`Prepared::No`].
async fn prepare(
    http: &HttpClient,
    loaded: &LoadedRepo,
    root: &TargetInfo,
    where_: &DeltaDisk,
    received: &Arc<AtomicU64>,
) -> Result<Prepared> {
    let Some((index_info, chunks_info)) = loaded.delta_targets(&root.name).await? else {
        return Ok(no(format!(
            "no delta is published for {} (no signed {} and {})",
            root.name,
            abos_delta::publish::index_name(&root.name),
            abos_delta::publish::chunks_name(&root.name)
        )));
    };
    let bytes = loaded.download_small(&index_info.name, INDEX_LIMIT).await?;
    received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
    let index_bytes = bytes.len() as u64;
    let index = match Index::from_slice(&bytes) {
        Ok(i) => i,
        Err(e) => return Ok(no(format!("the delta index does not parse: {e}"))),
    };
    drop(bytes);
    if index.header.image_length > where_.inactive_root.len_bytes {
        return Ok(no(format!(
            "the delta's image ({} bytes) is larger than the inactive root partition ({} bytes)",
            index.header.image_length, where_.inactive_root.len_bytes
        )));
    }
    if index.header.chunks_length != chunks_info.length {
        return Ok(no(format!(
            "the delta index describes a chunk file of {} bytes, the signed {} has {}",
            index.header.chunks_length, chunks_info.name, chunks_info.length
        )));
    }
    let mut fetch = UpdogFetch::new(http.clone(), chunks_info.url.clone(), received.clone());
    if chunks_info.length > 0 && !fetch.supports_ranges().await? {
        return Ok(no(format!(
            "the server does not honour Range requests for {}",
            chunks_info.name
        )));
    }
    let started = std::time::Instant::now();
    let disk = match std::fs::File::open(&where_.disk) {
        Ok(f) => f,
        Err(e) => {
            return Ok(no(format!(
                "cannot read the running root ({}): {e}",
                where_.disk.display()
            )));
        }
    };
    let mut reader = BufReader::with_capacity(1 << 20, &disk);
    let scanned = reader
        .seek(SeekFrom::Start(where_.active_root.first_byte))
        .map_err(|source| abos_delta::Error::Read {
            what: where_.active_root.label.clone(),
            source,
        })
        .and_then(|_| {
            let mut local = LocalIndex::new();
            local
                .add_source_at(
                    reader.take(where_.active_root.len_bytes),
                    index.header.chunking,
                    &where_.active_root.label,
                    where_.active_root.first_byte,
                )
                .map(|_| local)
        });
    let local = match scanned {
        Ok(l) => l,
        Err(e) => return Ok(no(format!("cannot read the running root: {e}"))),
    };
    let plan = Plan::new(&index, &local, abos_delta::plan::Options::default());
    let decision = plan.decide(index_bytes, root.length);
    info!(
        "delta: scanned the running root ({} bytes, {} distinct chunks) in {:.2?}; {decision:?}",
        local.scanned_bytes(),
        local.len(),
        started.elapsed()
    );
    drop(local);
    match decision {
        Decision::Delta(summary) => Ok(Prepared::Ready(Box::new(Ready {
            index,
            index_bytes,
            plan,
            summary,
            fetch,
            sources: vec![disk],
        }))),
        Decision::Full(summary) => Ok(Prepared::No(NotAvailable {
            reason: format!(
                "the delta would download {} bytes, not less than the full image's {}",
                summary.download_bytes, summary.full_bytes
            ),
            summary: Some(summary),
        })),
    }
}

/// What `check-update` and `status` show: the planned bytes of a delta for `root` (this scans
/// the running root and downloads the index; nothing is written), or `cached` when it was
/// computed for the same signed index and running root. `None` when no delta is published for
/// `root` (a Bottlerocket-shaped repository). Never fails otherwise: a problem is the reason the
/// delta is not available.
pub async fn availability(
    http: &HttpClient,
    loaded: &LoadedRepo,
    root: &str,
    where_: Result<DeltaDisk>,
    enabled: bool,
    cached: Option<&DeltaAvailability>,
) -> Option<DeltaAvailability> {
    let (root, index) = match loaded.delta_targets(root).await {
        Ok(Some((index, _))) => match loaded.target(root).await {
            Ok(r) => (r, index),
            Err(e) => return Some(unavailable(0, crate::render::error_text(&e))),
        },
        Ok(None) => return None,
        Err(e) => return Some(unavailable(0, crate::render::error_text(&e))),
    };
    if !enabled {
        return Some(unavailable(
            root.length,
            "turned off in updog.toml (delta = false)".to_owned(),
        ));
    }
    let where_ = match where_ {
        Ok(w) => w,
        Err(e) => return Some(unavailable(root.length, crate::render::error_text(&e))),
    };
    let key = format!(
        "index {} running root {}",
        hex::encode(index.sha256),
        where_.active_root.unique_guid
    );
    if let Some(c) = cached.filter(|c| c.computed_for.as_deref() == Some(key.as_str())) {
        info!("delta figures reused from the last check ({key})");
        return Some(c.clone());
    }
    let mut a = unavailable(root.length, String::new());
    let received = Arc::new(AtomicU64::new(0));
    match prepare(http, loaded, &root, &where_, &received).await {
        Ok(Prepared::Ready(r)) => {
            a.available = true;
            a.reason = None;
            a.planned_fetch_bytes = Some(r.summary.download_bytes);
            a.reuse_bytes = Some(r.summary.reuse_bytes);
            a.requests = Some(r.summary.requests as u64);
        }
        Ok(Prepared::No(n)) => {
            a.reason = Some(n.reason);
            if let Some(s) = n.summary {
                a.planned_fetch_bytes = Some(s.download_bytes);
                a.reuse_bytes = Some(s.reuse_bytes);
                a.requests = Some(s.requests as u64);
            }
        }
        Err(e) => a.reason = Some(crate::render::error_text(&e)),
    }
    // Only a plan is worth keeping (a refused Range or a network error may pass).
    if a.planned_fetch_bytes.is_some() {
        a.computed_for = Some(key);
    }
    Some(a)
}

fn unavailable(full_bytes: u64, reason: String) -> DeltaAvailability {
    DeltaAvailability {
        available: false,
        reason: Some(reason),
        planned_fetch_bytes: None,
        reuse_bytes: None,
        requests: None,
        full_bytes,
        version: None,
        computed_for: None,
    }
}

/// Removes the executor's progress record (after the set verified, or when it must not be
/// trusted).
pub fn clear(resume_dir: &Path) -> Result<()> {
    crate::fsutil::remove_durable(&resume_dir.join(PROGRESS_FILE))
}

/// Writes the root image of `plan` into the inactive ROOT partition from the delta when one is
/// published and worth it, else (or when the delta fails in a way the full artifact cures) with
/// [`image::write_image`]. Returns the same per-image result as `write_image` (with
/// `downloaded` = every byte fetched for the root in this run) and how it was done. `check` is
/// the root check behind the writer: it follows the delta executor's writes (in image order,
/// through a watched [`crate::blockio::DiskTarget`]) or the full image's; after a delta that
/// failed and fell back, the full image is checked by the separate pass.
pub async fn write_root(
    http: &HttpClient,
    loaded: &LoadedRepo,
    plan: &ImagePlan,
    active_root: &signpost::Partition,
    settings: &WriteSettings,
    enabled: bool,
    check: Option<crate::verity::RootCheck>,
) -> Result<(ImageResult, DeltaReport)> {
    let full_bytes = plan.length;
    let reporter = settings.reporter.clone();
    let progress_path = settings.resume_dir.join(PROGRESS_FILE);
    let mut check = check;
    let fall_back = |mut report: DeltaReport, check| async move {
        let reason = report.reason.clone().unwrap_or_default();
        info!("root image: full download ({reason})");
        reporter_event(&settings.reporter, &report);
        clear(&settings.resume_dir)?;
        let mut result = image::write_image(http, plan, settings, check).await?;
        result.downloaded += report.delta_bytes;
        report.method = Method::Full;
        Ok((result, report))
    };
    if !enabled {
        return fall_back(
            DeltaReport::full("turned off in updog.toml (delta = false)", full_bytes),
            check,
        )
        .await;
    }
    if resume::load_record(&settings.resume_dir, plan).is_some() {
        return fall_back(
            DeltaReport::full(
                "an earlier run was writing the full image; it continues",
                full_bytes,
            ),
            check,
        )
        .await;
    }
    let root = TargetInfo {
        name: plan.target.clone(),
        length: plan.length,
        sha256: plan.sha256,
        url: plan.url.clone(),
    };
    let where_ = DeltaDisk {
        disk: plan.disk.clone(),
        active_root: active_root.clone(),
        inactive_root: plan.partition.clone(),
    };
    let received = Arc::new(AtomicU64::new(0));
    let ready = match prepare(http, loaded, &root, &where_, &received).await? {
        Prepared::Ready(r) => r,
        Prepared::No(n) => {
            let mut report = DeltaReport::full(n.reason, full_bytes);
            report.planned_fetch_bytes = n.summary.map(|s| s.download_bytes);
            report.reuse_bytes = n.summary.map(|s| s.reuse_bytes);
            report.delta_bytes = received.load(Ordering::Relaxed);
            return fall_back(report, check).await;
        }
    };
    let Ready {
        index,
        index_bytes,
        plan: delta_plan,
        summary,
        mut fetch,
        sources,
    } = *ready;
    let mut report = DeltaReport {
        method: Method::Delta,
        reason: None,
        planned_fetch_bytes: Some(summary.download_bytes),
        reuse_bytes: Some(summary.reuse_bytes),
        full_bytes,
        delta_bytes: 0,
        copied_bytes: 0,
        requests: 0,
        refetched_chunks: 0,
        resumed_chunks: 0,
        write_io: None,
        verified: "after-writing",
    };
    reporter_event(&reporter, &report);
    info!(
        "root image: delta ({} bytes to download instead of {full_bytes}, {} bytes reused; index {index_bytes} bytes)",
        summary.download_bytes, summary.reuse_bytes
    );
    reporter.report(ProgressEvent::ImageStart {
        image: ImageKind::Root,
        target: abos_delta::publish::chunks_name(&plan.target),
        total: summary.download_bytes,
        resumed_at: 0,
    });
    let mut disk = crate::blockio::DiskTarget::open(
        &plan.disk,
        plan.partition.first_byte,
        plan.partition.len_bytes,
        crate::blockio::DirectPolicy::from_env(),
    )?;
    // The executor writes the chunks in image order: the root is checked behind it as for the
    // full image (from byte 0: chunks resumed from an earlier run are read back too).
    let checker = match check.take() {
        Some(c) => {
            let (tx, thread) = c.spawn(0)?;
            disk = disk.watched(tx);
            Some(thread)
        }
        None => None,
    };
    // Waits for the checking thread once every sender (the target's) is gone.
    let join = |thread: Option<std::thread::JoinHandle<Result<crate::verity::Checked>>>| {
        thread.map(|t| {
            t.join().map_err(|_| Error::ThreadPanic {
                what: "root check behind the writer",
            })?
        })
    };
    let mut target = PartitionTarget {
        disk,
        len: plan.partition.len_bytes,
        pos: 0,
        written: 0,
        reported: 0,
        received: received.clone(),
        total: summary.download_bytes,
        reporter: reporter.clone(),
    };
    let progress = abos_delta::execute::Progress {
        path: progress_path,
        every_bytes: settings.checkpoint_bytes.max(1),
    };
    let started = std::time::Instant::now();
    let executed = abos_delta::execute::execute(
        &index,
        &delta_plan,
        &sources,
        &mut fetch,
        &mut target,
        Some(&progress),
    )
    .await;
    report.delta_bytes = received.load(Ordering::Relaxed);
    let outcome = match executed {
        Ok(o) => o,
        Err(e) => {
            use abos_delta::Error as D;
            // The check stops with the writes (its result does not matter now).
            drop(target);
            let _ = join(checker);
            return match e {
                D::Fetch { .. } => Err(fetch.take_error().unwrap_or(Error::DeltaIo {
                    partition: plan.partition.label.clone(),
                    source: e,
                })),
                D::Write { .. } | D::Read { .. } | D::Open { .. } => Err(Error::DeltaIo {
                    partition: plan.partition.label.clone(),
                    source: e,
                }),
                other => {
                    warn!("root image: the delta failed ({other}); writing the full image");
                    report.method = Method::Full;
                    report.reason = Some(format!("the delta failed: {other}"));
                    fall_back(report, None).await
                }
            };
        }
    };
    target.report();
    report.copied_bytes = outcome.copied_bytes;
    report.requests = outcome.requests;
    report.refetched_chunks = outcome.refetched_chunks;
    report.resumed_chunks = outcome.resumed_chunks;
    let mode = target.disk.mode();
    report.write_io = mode.map(|m| match m {
        crate::blockio::IoMode::Direct { .. } => "direct",
        crate::blockio::IoMode::Buffered => "buffered",
    });
    // Every write is synced (the executor's last step): the check has its last end.
    drop(target);
    let checked = match join(checker).transpose() {
        Ok(c) => c,
        Err(e) => {
            // What is on the device cannot be trusted: the next run starts over.
            let _ = clear(&settings.resume_dir);
            return Err(e);
        }
    };
    if let Some(crate::verity::Checked::NotProven(why)) = &checked {
        info!("root image not checked behind the writer ({why}): the verify step reads it");
    }
    info!(
        "root image written from the delta ({}) in {:.2?}: {} bytes downloaded ({} planned), {} \
         bytes copied from the running root, {} requests, {} chunks fetched instead of copied, {} \
         chunks resumed{}",
        mode.map_or_else(|| "nothing left to write".to_owned(), |m| format!("{m:?}")),
        started.elapsed(),
        report.delta_bytes,
        summary.download_bytes,
        outcome.copied_bytes,
        outcome.requests,
        outcome.refetched_chunks,
        outcome.resumed_chunks,
        image::peak_memory()
            .map(|k| format!(", peak RSS so far {k} KiB"))
            .unwrap_or_default()
    );
    reporter.report(ProgressEvent::ImageDone {
        image: ImageKind::Root,
        written: index.header.image_length,
    });
    Ok((
        ImageResult {
            kind: ImageKind::Root,
            written: index.header.image_length,
            downloaded: report.delta_bytes,
            resumed_at: 0,
            already_complete: false,
            verified_behind: checked == Some(crate::verity::Checked::Verified),
        },
        report,
    ))
}

fn reporter_event(reporter: &Arc<dyn Reporter>, report: &DeltaReport) {
    reporter.report(ProgressEvent::Delta {
        method: match report.method {
            Method::Delta => "delta",
            Method::Full => "full",
        }
        .to_owned(),
        reason: report.reason.clone(),
        planned_fetch_bytes: report.planned_fetch_bytes,
        reuse_bytes: report.reuse_bytes,
        full_bytes: report.full_bytes,
    });
}

/// The two ROOT partitions and the disk, from the partition table.
pub fn delta_disk(sp: &signpost::Signpost) -> Result<DeltaDisk> {
    let active = sp.active();
    let inactive = sp.inactive().map_err(|source| Error::Signpost {
        op: "find the inactive set",
        source: Box::new(source),
    })?;
    let a = sp.disk().set(active).map_err(|source| Error::Signpost {
        op: "read the running set",
        source: Box::new(source),
    })?;
    let b = sp.disk().set(inactive).map_err(|source| Error::Signpost {
        op: "read the inactive set",
        source: Box::new(source),
    })?;
    Ok(DeltaDisk {
        disk: sp.disk().path().to_path_buf(),
        active_root: a.root,
        inactive_root: b.root,
    })
}
