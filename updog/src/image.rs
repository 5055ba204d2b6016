//! Streaming an image target into a partition, resumably.
//!
//! Two stages on two threads with bounded channels, so memory does not grow with the image:
//!
//! 1. network + hash (the async task): ranged HTTP (or `file://`) chunks → SHA-256 → LZ4 framing
//!    into whole blocks (into one reused buffer, see `POOL`);
//! 2. decode + write (a std thread): LZ4 block decode → `pwrite` into the whole disk at the
//!    partition's first byte, bounded by the partition length → periodic `fdatasync` + a durable
//!    resume record.
//!
//! The signed length and SHA-256 (from tough's verified targets metadata) are enforced here: the
//! stream may not exceed the length, and the final digest must match, or the image is refused.
//! Nothing here marks anything bootable; the caller verifies and activates afterwards.
//!
//! Resume: at a checkpoint (a block boundary, every `checkpoint_bytes` written) the partition is
//! flushed and a record is written with the exact target (name, SHA-256, length), the partition
//! (GUID, offset, length), the compressed offset, the SHA-256 mid-state, and the LZ4 framer and
//! decoder states. The next run restores these and asks the server only for the bytes after the
//! checkpoint (HTTP Range), so at most one checkpoint interval is fetched again. The records
//! themselves (format, matching, loading, clearing) are [`crate::resume`]'s.

use crate::blockio::{self, Writer};
use crate::error::{self, Error, Result};
use crate::fsutil;
use crate::lz4::{self, BlockDecoder, Boundary, DecodeOrSink, DecoderState, Event, Framer};
use crate::reporter::{ImageKind, ProgressEvent, Reporter};
use crate::resume::{
    RECORD_FORMAT, ResumeRecord, load_hash, load_record, record_path, save_hash, write_record,
};
use crate::transport::{HttpClient, RetryBudget, TargetStream};
use crate::verity::{Checked, RootCheck};
use serde::Serialize;
use sha2::Digest;
use snafu::{IntoError, ResultExt};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::{debug, info};
use url::Url;

/// Number of compressed-block buffers: one. The network stage fills it, the decode stage
/// decompresses it and hands it back at once, before it checksums (xxh32) and writes the output,
/// so the network stage fills the next block meanwhile; the bytes after it wait in the socket's
/// receive buffer (kernel memory, bounded by TCP flow control), not in ours. A second buffer
/// would let the network stage run a whole block ahead, at the cost of up to one more
/// maximum-size block (4 MiB for the `lz4` tool's default frames): measured (README,
/// "Benchmarks"), peak RSS is ~3.6 MiB lower with one.
const POOL: usize = 1;

/// Everything needed to write one image target.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ImagePlan {
    /// Which image.
    pub kind: ImageKind,
    /// TUF target name.
    pub target: String,
    /// Where to download it.
    pub url: Url,
    /// Signed length of the compressed target.
    pub length: u64,
    /// Signed SHA-256 of the compressed target.
    #[serde(serialize_with = "crate::plan::serialize_hex")]
    pub sha256: [u8; 32],
    /// The whole-disk path to write into.
    pub disk: PathBuf,
    /// The inactive partition receiving it.
    pub partition: signpost::Partition,
}

/// What happened to one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageResult {
    /// Which image.
    pub kind: ImageKind,
    /// Decompressed bytes in the partition.
    pub written: u64,
    /// Compressed bytes fetched in this run.
    pub downloaded: u64,
    /// Compressed offset this run started at (0 = fresh).
    pub resumed_at: u64,
    /// The image was already complete from an earlier run.
    pub already_complete: bool,
    /// The root image was read back and checked against the hash tree behind the writer
    /// ([`crate::verity::RootCheck`]), so the separate verify pass has nothing left to prove.
    #[serde(skip)]
    pub verified_behind: bool,
}

enum Msg {
    Event {
        event: Event,
        offset_after: u64,
        boundary: Option<(Boundary, sha2::Sha256)>,
    },
    Finish,
}

/// Settings for one write.
#[derive(Clone)]
pub struct WriteSettings {
    /// Directory for resume records.
    pub resume_dir: PathBuf,
    /// Checkpoint distance in decompressed bytes.
    pub checkpoint_bytes: u64,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for WriteSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteSettings")
            .field("resume_dir", &self.resume_dir)
            .field("checkpoint_bytes", &self.checkpoint_bytes)
            .finish_non_exhaustive()
    }
}

/// Writes one image (resuming if a matching record exists). With `check` (the root image), the
/// written bytes are read back and checked against the hash tree behind the writer.
pub async fn write_image(
    http: &HttpClient,
    plan: &ImagePlan,
    settings: &WriteSettings,
    check: Option<RootCheck>,
) -> Result<ImageResult> {
    let record = load_record(&settings.resume_dir, plan);
    if let Some(r) = &record
        && r.complete
    {
        info!(
            "{} image {} already written by an earlier run",
            plan.kind, plan.target
        );
        settings.reporter.report(ProgressEvent::ImageDone {
            image: plan.kind,
            written: r.decoder.produced,
        });
        return Ok(ImageResult {
            kind: plan.kind,
            written: r.decoder.produced,
            downloaded: 0,
            resumed_at: r.compressed_offset,
            already_complete: true,
            verified_behind: false,
        });
    }
    // A partial record resumes with both hash mid-states (the compressed stream's, and for an
    // image that is read back, the decoded bytes'); without them the image starts over.
    let restored = record.and_then(|r| {
        let h = load_hash(&r.hash_state)?;
        let w = if reads_back(plan.kind) {
            Some(load_hash(&r.written_hash)?)
        } else {
            None
        };
        Some((r, h, w))
    });
    let (start_offset, hasher, written_hash, boundary, decoder_state) = match restored {
        Some((r, h, w)) => {
            info!(
                "resuming {} image at compressed byte {} ({} bytes already written)",
                plan.kind, r.compressed_offset, r.decoder.produced
            );
            (r.compressed_offset, h, w, r.boundary, Some(r.decoder))
        }
        None => (
            0,
            sha2::Sha256::new(),
            reads_back(plan.kind).then(sha2::Sha256::new),
            Boundary::BetweenFrames { seen_frame: false },
            None,
        ),
    };
    settings.reporter.report(ProgressEvent::ImageStart {
        image: plan.kind,
        target: plan.target.clone(),
        total: plan.length,
        resumed_at: start_offset,
    });

    // The decode + write stage.
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(&plan.disk)
        .context(error::DiskOpenSnafu { path: &plan.disk })?;
    let mut decoder = match decoder_state {
        Some(state) => {
            let mut window = Vec::new();
            if BlockDecoder::needs_window(&boundary) {
                let len = state.frame_produced.min(lz4::WINDOW as u64);
                window.resize(len as usize, 0);
                let at = plan.partition.first_byte + state.produced - len;
                file.read_exact_at(&mut window, at)
                    .context(error::DiskReadSnafu {
                        path: &plan.disk,
                        offset: at,
                    })?;
            }
            BlockDecoder::resume(state, window)
        }
        None => BlockDecoder::new(),
    };
    if plan.kind == ImageKind::Root {
        // Every root block is checked against the dm-verity tree (behind the writer, or by the
        // verify step): the frames' xxh32 content checksums would prove nothing more.
        decoder = decoder.without_content_checksums();
    }
    let started = std::time::Instant::now();
    let (tx, rx) = mpsc::channel::<Msg>(1);
    let (pool_tx, mut pool_rx) = mpsc::channel::<Vec<u8>>(POOL);
    for _ in 0..POOL {
        let _ = pool_tx.try_send(Vec::new());
    }
    let writer = {
        let plan = plan.clone();
        let settings = settings.clone();
        std::thread::Builder::new()
            .name(format!("write-{}", plan.kind))
            .spawn(move || {
                writer_stage(
                    file,
                    decoder,
                    written_hash,
                    check,
                    rx,
                    pool_tx,
                    &plan,
                    &settings,
                )
            })
            .map_err(|source| error::RuntimeSnafu.into_error(source))?
    };

    let net = network_stage(
        http,
        plan,
        start_offset,
        hasher,
        boundary,
        tx,
        &mut pool_rx,
        settings,
    )
    .await;
    let written = writer.join().map_err(|_| Error::ThreadPanic {
        what: "image writer",
    })?;
    let downloaded = match net {
        Ok(n) => n,
        Err(e) => {
            // A writer error (disk full, image too large, a block that does not match the tree)
            // is the root cause if there is one.
            let e = match written {
                Err(w) if !matches!(w, Error::ThreadPanic { .. }) && is_channel_closed(&e) => w,
                _ => e,
            };
            return Err(untrusted(settings, plan, e));
        }
    };
    let Written {
        state,
        digest,
        mode,
        checked,
    } = written.map_err(|e| untrusted(settings, plan, e))?;
    if let Some(Checked::NotProven(why)) = &checked {
        info!("root image not checked behind the writer ({why}): the verify step reads it");
    }
    if let Some(expected) = digest
        && let Err(e) = read_back(plan, state.produced, &expected)
    {
        return Err(untrusted(settings, plan, e));
    }
    // Durable "complete" record so a later run skips this image.
    let done = ResumeRecord {
        format: RECORD_FORMAT,
        target: plan.target.clone(),
        sha256: hex::encode(plan.sha256),
        length: plan.length,
        partition_guid: plan.partition.unique_guid.clone(),
        partition_first_byte: plan.partition.first_byte,
        partition_len: plan.partition.len_bytes,
        complete: true,
        compressed_offset: plan.length,
        hash_state: String::new(),
        written_hash: String::new(),
        boundary: Boundary::BetweenFrames { seen_frame: true },
        decoder: state.clone(),
    };
    write_record(&settings.resume_dir, plan.kind, &done)?;
    info!(
        "{} image written ({mode:?}): {} bytes ({} compressed bytes fetched) in {:.2?}{}",
        plan.kind,
        state.produced,
        downloaded,
        started.elapsed(),
        peak_memory()
            .map(|k| format!(", peak RSS so far {k} KiB"))
            .unwrap_or_default()
    );
    settings.reporter.report(ProgressEvent::ImageDone {
        image: plan.kind,
        written: state.produced,
    });
    Ok(ImageResult {
        kind: plan.kind,
        written: state.produced,
        downloaded,
        resumed_at: start_offset,
        already_complete: false,
        verified_behind: checked == Some(Checked::Verified),
    })
}

/// Drops the image's resume record when `e` says its bytes cannot be trusted (a wrong hash, too
/// many bytes, a bad LZ4 stream, bytes on the device that do not match the tree), so the next
/// run starts the image over; a record behind any other error (a dropped connection, a full
/// disk) is kept for resuming. Returns `e`.
fn untrusted(settings: &WriteSettings, plan: &ImagePlan, e: Error) -> Error {
    if matches!(
        e,
        Error::TargetHash { .. }
            | Error::TargetTooLong { .. }
            | Error::Decode { .. }
            | Error::Verity { .. }
            | Error::Verify { .. }
    ) {
        let _ = fsutil::remove_durable(&record_path(&settings.resume_dir, plan.kind));
    }
    e
}

/// Peak resident set size of this process (`VmHWM`), where /proc is available.
pub fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn is_channel_closed(e: &Error) -> bool {
    matches!(
        e,
        Error::ThreadPanic {
            what: "writer channel"
        }
    )
}

#[allow(clippy::too_many_arguments)]
async fn network_stage(
    http: &HttpClient,
    plan: &ImagePlan,
    start_offset: u64,
    mut hasher: sha2::Sha256,
    boundary: Boundary,
    tx: mpsc::Sender<Msg>,
    pool_rx: &mut mpsc::Receiver<Vec<u8>>,
    _settings: &WriteSettings,
) -> Result<u64> {
    let mut framer = Framer::resume(boundary, start_offset);
    let mut received = start_offset;
    // Bytes fetched but dropped because the server ignored a Range request.
    let mut discarded = 0u64;
    // One retry budget for the whole image: attempts without progress are counted, and the
    // deadline cuts a server that stalls (see `RetryBudget`).
    let mut budget = RetryBudget::new(http);
    let mut attempt = 0u32;
    let closed = || Error::ThreadPanic {
        what: "writer channel",
    };
    let decode_err = |source| Error::Decode {
        name: plan.target.clone(),
        source,
    };
    loop {
        attempt += 1;
        let outcome: Result<()> = async {
            let mut stream = budget
                .run(&plan.url, TargetStream::open(http, &plan.url, received))
                .await?;
            loop {
                let next = budget.run(&plan.url, stream.next()).await;
                discarded += stream.take_discarded();
                let Some(chunk) = next? else { break };
                if received + chunk.len() as u64 > plan.length {
                    return error::TargetTooLongSnafu {
                        name: plan.target.clone(),
                        expected: plan.length,
                    }
                    .fail();
                }
                received += chunk.len() as u64;
                budget.progress();
                let mut input: &[u8] = &chunk;
                while !input.is_empty() {
                    if framer.needs_buffer() {
                        let buf = pool_rx.recv().await.ok_or_else(closed)?;
                        framer.set_buffer(buf);
                    }
                    let before = input.len();
                    let event = framer.feed(&mut input).map_err(decode_err)?;
                    hasher.update(&chunk[chunk.len() - before..chunk.len() - input.len()]);
                    if let Some(event) = event {
                        let boundary = framer.boundary().map(|b| (b, hasher.clone()));
                        tx.send(Msg::Event {
                            event,
                            offset_after: framer.offset(),
                            boundary,
                        })
                        .await
                        .map_err(|_| closed())?;
                    }
                }
            }
            Ok(())
        }
        .await;
        let cause = match outcome {
            Ok(()) if received == plan.length => break,
            // The server (or the local file) ended cleanly before the signed length: its copy
            // is short, and asking again would get the same bytes. (A cut connection is an
            // error from the HTTP layer instead, and is retried below.)
            Ok(()) => {
                return error::TargetShortSnafu {
                    name: plan.target.clone(),
                    url: plan.url.to_string(),
                    got: received,
                    expected: plan.length,
                }
                .fail();
            }
            Err(
                e @ (Error::HttpRequest { .. }
                | Error::StreamEnded { .. }
                | Error::LocalTarget { .. }),
            ) => e,
            Err(e @ Error::HttpStatus { .. }) if HttpClient::retryable(&e) => e,
            Err(e @ Error::RetryDeadline { .. }) => return Err(incomplete(plan, received, e)),
            Err(e) => return Err(e),
        };
        match budget.next_attempt() {
            Some(delay) => {
                http.wait_retry(
                    &plan.url,
                    attempt,
                    delay,
                    &format!("stopped at byte {received}: {cause}"),
                )
                .await;
            }
            None => return Err(incomplete(plan, received, cause)),
        }
    }
    framer.finish().map_err(decode_err)?;
    let digest: [u8; 32] = hasher.finalize().into();
    if digest != plan.sha256 {
        return error::TargetHashSnafu {
            name: plan.target.clone(),
            expected: hex::encode(plan.sha256),
            actual: hex::encode(digest),
        }
        .fail();
    }
    tx.send(Msg::Finish).await.map_err(|_| closed())?;
    Ok(received - start_offset + discarded)
}

fn incomplete(plan: &ImagePlan, received: u64, cause: Error) -> Error {
    Error::TargetIncomplete {
        name: plan.target.clone(),
        expected: plan.length,
        got: received,
        source: Box::new(cause),
    }
}

/// What the decode + write stage ends with.
struct Written {
    state: DecoderState,
    /// SHA-256 of the decoded bytes (boot and hash images; see [`reads_back`]).
    digest: Option<[u8; 32]>,
    mode: blockio::IoMode,
    /// How the check behind the writer ended (when there was one).
    checked: Option<Checked>,
}

#[allow(clippy::too_many_arguments)]
fn writer_stage(
    file: std::fs::File,
    decoder: BlockDecoder,
    written_hash: Option<sha2::Sha256>,
    check: Option<RootCheck>,
    rx: mpsc::Receiver<Msg>,
    pool_tx: mpsc::Sender<Vec<u8>>,
    plan: &ImagePlan,
    settings: &WriteSettings,
) -> Result<Written> {
    // The check behind the writer: its thread first reads back what an earlier run wrote.
    let (watch, checker) = match check {
        Some(c) => {
            let (tx, thread) = c.spawn(decoder.state().produced)?;
            (Some(tx), Some(thread))
        }
        None => (None, None),
    };
    // Checkpoints are flushed by a helper thread, so the disk keeps writing while the decoder
    // goes on. The disk writer's I/O thread hands a checkpoint on only once every byte before it
    // is written; one that arrives while the previous one is being flushed waits for the next
    // write (and a newer one replaces it).
    let sync_file = file
        .try_clone()
        .context(error::DiskOpenSnafu { path: &plan.disk })?;
    let (ck_tx, ck_rx) = std::sync::mpsc::sync_channel::<ResumeRecord>(1);
    let resume_dir = settings.resume_dir.clone();
    let kind = plan.kind;
    let disk = plan.disk.clone();
    std::thread::scope(|s| {
        let syncer = s.spawn(move || -> Result<()> {
            for record in ck_rx {
                sync_file
                    .sync_data()
                    .context(error::DiskSyncSnafu { path: &disk })?;
                write_record(&resume_dir, kind, &record)?;
                debug!(
                    "checkpoint: {kind} at compressed {}, written {}",
                    record.compressed_offset, record.decoder.produced
                );
            }
            Ok(())
        });
        let part = &plan.partition;
        let result = blockio::open_for_write(
            &plan.disk,
            part.first_byte,
            part.len_bytes,
            blockio::DirectPolicy::from_env(),
        )
        .and_then(|target| {
            let mode = target.mode;
            debug!(
                "writing {} image to {} ({mode:?})",
                plan.kind,
                plan.disk.display()
            );
            let writer = Writer::watched(
                target,
                &plan.disk,
                part.first_byte + decoder.state().produced,
                move |record: ResumeRecord| match ck_tx.try_send(record) {
                    Ok(()) => Ok(None),
                    Err(std::sync::mpsc::TrySendError::Full(r)) => Ok(Some(r)),
                    Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                        Err(Error::ThreadPanic { what: "checkpoint" })
                    }
                },
                move |end, mode| {
                    // A checker that stopped has failed; its error is reported at the end. The
                    // download goes on meanwhile, so that a download whose SHA-256 does not match
                    // is reported as that (the bytes were bad) rather than as a bad block.
                    if let Some(tx) = &watch {
                        let _ = tx.send(blockio::Written::Upto { end, mode });
                    }
                    Ok(())
                },
            )?;
            write_loop(writer, decoder, written_hash, rx, pool_tx, plan, settings)
        });
        let synced = syncer
            .join()
            .map_err(|_| Error::ThreadPanic { what: "checkpoint" })?;
        // The writer's I/O thread has ended (and with it the checker's sender).
        let checked = checker.map(|t| {
            t.join().map_err(|_| Error::ThreadPanic {
                what: "root check behind the writer",
            })
        });
        // A failed check wins: the device does not hold what the tree says.
        if let Some(Ok(Err(e))) = checked {
            return Err(e);
        }
        // A writer error is the root cause of a checkpoint that could not be handed on.
        let mut written = result?;
        synced?;
        written.checked = checked.transpose()?.transpose()?;
        file.sync_all()
            .context(error::DiskSyncSnafu { path: &plan.disk })?;
        Ok(written)
    })
}

fn write_loop(
    mut writer: Writer<ResumeRecord>,
    mut decoder: BlockDecoder,
    mut written_hash: Option<sha2::Sha256>,
    mut rx: mpsc::Receiver<Msg>,
    pool_tx: mpsc::Sender<Vec<u8>>,
    plan: &ImagePlan,
    settings: &WriteSettings,
) -> Result<Written> {
    let part = &plan.partition;
    let mut since_checkpoint = 0u64;
    let mut last_report = 0u64;
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Event {
                event,
                offset_after,
                boundary,
            } => {
                let mut written = decoder.state().produced;
                let before = written;
                let mut sink = |bytes: &[u8]| -> Result<()> {
                    let end = written + bytes.len() as u64;
                    if end > part.len_bytes {
                        return error::ImageTooLargeSnafu {
                            name: plan.target.clone(),
                            partition: part.label.clone(),
                            limit: part.len_bytes,
                        }
                        .fail();
                    }
                    if let Some(h) = written_hash.as_mut() {
                        h.update(bytes);
                    }
                    writer.push(bytes)?;
                    written = end;
                    Ok(())
                };
                let handled = match event {
                    Event::Block {
                        data,
                        stored: false,
                        checksum,
                    } => {
                        let decoded = decoder.decode_block(&data, checksum, offset_after);
                        // The compressed bytes are decoded: the buffer goes back to the network
                        // stage now, so it fills it with the next block while this thread hashes
                        // and writes the output (with one buffer, see `POOL`, that is what keeps
                        // the two stages overlapping). The network side may have gone away.
                        let _ = pool_tx.try_send(data);
                        decoded
                            .map_err(DecodeOrSink::Decode)
                            .and_then(|n| decoder.emit_decoded(n, &mut sink))
                    }
                    event => {
                        let handled = decoder.handle(&event, offset_after, &mut sink);
                        if let Event::Block { data, .. } = event {
                            let _ = pool_tx.try_send(data);
                        }
                        handled
                    }
                };
                handled.map_err(|e| match e {
                    DecodeOrSink::Decode(source) => Error::Decode {
                        name: plan.target.clone(),
                        source,
                    },
                    DecodeOrSink::Sink(e) => e,
                })?;
                let produced = decoder.state().produced;
                since_checkpoint += produced - before;
                if produced - last_report >= 4 << 20 {
                    last_report = produced;
                    settings.reporter.report(ProgressEvent::ImageProgress {
                        image: plan.kind,
                        received: offset_after,
                        total: plan.length,
                        written: produced,
                    });
                }
                if since_checkpoint >= settings.checkpoint_bytes
                    && let Some((boundary, hasher)) = boundary
                {
                    let record = ResumeRecord {
                        format: RECORD_FORMAT,
                        target: plan.target.clone(),
                        sha256: hex::encode(plan.sha256),
                        length: plan.length,
                        partition_guid: part.unique_guid.clone(),
                        partition_first_byte: part.first_byte,
                        partition_len: part.len_bytes,
                        complete: false,
                        compressed_offset: offset_after,
                        hash_state: save_hash(&hasher),
                        written_hash: written_hash.as_ref().map(save_hash).unwrap_or_default(),
                        boundary,
                        decoder: decoder.state().clone(),
                    };
                    writer.mark(record)?;
                    since_checkpoint = 0;
                }
            }
            Msg::Finish => {
                let stats = writer.finish()?;
                return Ok(Written {
                    state: decoder.state().clone(),
                    digest: written_hash.map(|h| h.finalize().into()),
                    mode: stats.mode,
                    checked: None,
                });
            }
        }
    }
    // The network side stopped without finishing; its error is reported by the caller.
    Err(Error::ThreadPanic { what: "network" })
}

/// Whether `write_image` reads an image back from the device itself. The root image is not: the
/// verify step that follows reads every root block back and checks it against the hash tree
/// (see `verity::verify`), a second read here would prove nothing more. The boot and hash images
/// are: they anchor that check (the root hash comes from the boot partition, the tree from the
/// hash partition), and if the device had silently dropped the writes to all three partitions
/// their *old* contents would still verify against each other. So the bytes of each are read back
/// (direct I/O, after the flush) and their SHA-256 compared with that of the decoded signed image.
fn reads_back(kind: ImageKind) -> bool {
    kind != ImageKind::Root
}

/// Reads `len` written bytes back from the device and compares their SHA-256 with `expected`.
fn read_back(plan: &ImagePlan, len: u64, expected: &[u8; 32]) -> Result<()> {
    let mut reader = blockio::DirectReader::new(
        &plan.disk,
        plan.partition.first_byte,
        len,
        blockio::DirectPolicy::from_env(),
    )?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    loop {
        let n = std::io::Read::read(&mut reader, &mut buf).context(error::DiskReadSnafu {
            path: &plan.disk,
            offset: plan.partition.first_byte + got,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n as u64;
    }
    let actual: [u8; 32] = h.finalize().into();
    if got != len || actual != *expected {
        let what = match plan.kind {
            ImageKind::Boot => "boot partition",
            ImageKind::Hash => "hash partition",
            ImageKind::Root => "root partition",
        };
        return Err(Error::Verify {
            what,
            detail: format!(
                "read back from {} after the flush ({:?}), its {len} bytes at {} do not match \
                 the signed {} image (SHA-256 of what was written {}, of what the device \
                 returned {} over {got} bytes): the device did not keep what was written",
                plan.disk.display(),
                reader.mode(),
                plan.partition.first_byte,
                plan.kind,
                hex::encode(expected),
                hex::encode(actual),
            ),
        });
    }
    debug!(
        "{} image read back from the device: {len} bytes match",
        plan.kind
    );
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    /// The read-back check of a BOOT or HASH image: bytes the device did not keep (here: a disk
    /// that still holds other bytes where the image was written) are refused.
    #[test]
    fn read_back_refuses_bytes_the_device_did_not_keep() {
        let dir = tempfile::tempdir().unwrap();
        let disk = dir.path().join("disk.img");
        let image: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i % 251) as u8).collect();
        let mut on_disk = vec![0u8; 8192];
        on_disk.extend_from_slice(&image);
        on_disk.resize(64 << 10, 0);
        std::fs::write(&disk, &on_disk).unwrap();
        let plan = ImagePlan {
            kind: ImageKind::Boot,
            target: "boot.ext4.lz4".into(),
            url: "file:///nowhere".parse().unwrap(),
            length: 1,
            sha256: [0; 32],
            disk: disk.clone(),
            partition: signpost::Partition {
                number: 4,
                first_byte: 8192,
                len_bytes: 32 << 10,
                unique_guid: "00000000-0000-0000-0000-000000000000".into(),
                label: "BOOT-B".into(),
            },
        };
        let digest: [u8; 32] = sha2::Sha256::digest(&image).into();
        read_back(&plan, image.len() as u64, &digest).unwrap();
        // One byte the device "dropped".
        on_disk[8192 + 5000] ^= 1;
        std::fs::write(&disk, &on_disk).unwrap();
        let e = read_back(&plan, image.len() as u64, &digest).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Verify {
                    what: "boot partition",
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            e.to_string().contains("did not keep what was written"),
            "{e}"
        );
    }

    #[test]
    fn hash_state_round_trips() {
        let mut h = sha2::Sha256::new();
        h.update(b"hello ");
        let saved = save_hash(&h);
        let mut restored = load_hash(&saved).unwrap();
        h.update(b"world");
        restored.update(b"world");
        assert_eq!(h.finalize(), restored.finalize());
    }
}
