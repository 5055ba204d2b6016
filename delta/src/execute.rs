//! The executor: writes the new image to a target, copying reused chunks (re-hashed as they are
//! copied: a local chunk that no longer matches its hash is fetched instead, never copied),
//! fetching the rest in the plan's coalesced requests (each chunk checked against its hash), and
//! checking the whole image's SHA-256 at the end. Progress is recorded so that a rerun after a
//! kill re-verifies the chunks already written (reading them back) instead of fetching them.

use crate::error::{self, Error, Result};
use crate::fetch::Fetch;
use crate::index::{Entry, Index};
use crate::plan::{Plan, Step};
use crate::publish::sha256;
use aws_lc_rs::digest;
use snafu::ResultExt;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the new image goes: a partition, a file, or memory.
pub trait Target: Read + Write + Seek {
    /// Makes what was written durable (fsync for files and devices).
    fn sync(&mut self) -> std::io::Result<()>;
}

impl Target for std::fs::File {
    fn sync(&mut self) -> std::io::Result<()> {
        self.sync_data()
    }
}

impl Target for std::io::Cursor<Vec<u8>> {
    fn sync(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the executor did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    /// Image bytes copied from local sources (after re-hashing).
    pub copied_bytes: u64,
    /// Bytes fetched from the chunk file.
    pub fetched_bytes: u64,
    /// Fetch requests made.
    pub requests: u64,
    /// Chunks planned as copies whose local content no longer matched: fetched instead.
    pub refetched_chunks: u64,
    /// Chunks found already written and verified by a previous run.
    pub resumed_chunks: u64,
}

/// Where and how often to record progress.
#[derive(Debug, Clone)]
pub struct Progress {
    /// The progress record (replaced atomically and durably through `abos-fsio`).
    pub path: std::path::PathBuf,
    /// Sync the target and record progress after this many bytes (64 MiB by default).
    pub every_bytes: u64,
}

impl Progress {
    /// A record at `path`, every 64 MiB.
    pub fn at(path: &Path) -> Progress {
        Progress {
            path: path.to_path_buf(),
            every_bytes: 64 << 20,
        }
    }
}

fn index_id(index: &Index) -> String {
    hex::encode(sha256(&index.to_bytes()))
}

fn read_progress(path: &Path, id: &str) -> usize {
    let Ok(text) = std::fs::read_to_string(path) else {
        return 0;
    };
    let mut words = text.split_whitespace();
    match (words.next(), words.next(), words.next()) {
        (Some("abos-chunked-v1-progress"), Some(i), Some(n)) if i == id => n.parse().unwrap_or(0),
        _ => 0,
    }
}

fn write_progress(path: &Path, id: &str, done: usize) -> Result<()> {
    let record = format!("abos-chunked-v1-progress {id} {done}\n");
    abos_fsio::write_atomic(path, record.as_bytes(), abos_fsio::PUBLIC)
        .map_err(std::io::Error::from)
        .context(error::WriteSnafu {
            what: path.display().to_string(),
        })
}

fn decode(i: usize, e: &Entry, stored: &[u8]) -> Result<Vec<u8>> {
    let data = if e.is_raw() {
        stored.to_vec()
    } else {
        lz4_flex::block::decompress(stored, e.len as usize).map_err(|err| Error::Decompress {
            chunk: i,
            start: e.stored_offset,
            end: e.stored_end(),
            reason: err.to_string(),
        })?
    };
    let actual = sha256(&data);
    if data.len() != e.len as usize || actual != e.sha256 {
        return Err(Error::ChunkHash {
            chunk: i,
            offset: e.offset,
            len: u64::from(e.len),
            expected: hex::encode(e.sha256),
            actual: hex::encode(actual),
        });
    }
    Ok(data)
}

/// Writes the image `index` describes to `target` (from offset 0), following `plan`.
///
/// `sources` are the local sources in the order they were added to the
/// [`crate::LocalIndex`]. `progress`, if given, is a file recording how many chunks are written
/// and durable; a rerun with the same index re-reads and re-hashes those chunks from `target`
/// and continues after them.
pub async fn execute<T: Target, F: Fetch>(
    index: &Index,
    plan: &Plan,
    sources: &[std::fs::File],
    fetcher: &mut F,
    target: &mut T,
    progress: Option<&Progress>,
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let id = index_id(index);
    let mut whole = digest::Context::new(&digest::SHA256);
    let entries = &index.entries;
    let what_target = || "the target".to_string();

    // Resume: verify what a previous run recorded as written.
    let recorded = progress
        .map_or(0, |p| read_progress(&p.path, &id))
        .min(entries.len());
    let mut start = 0usize;
    let mut buf = Vec::new();
    for e in &entries[..recorded] {
        buf.resize(e.len as usize, 0);
        target
            .seek(SeekFrom::Start(e.offset))
            .and_then(|_| target.read_exact(&mut buf))
            .context(error::ReadSnafu {
                what: what_target(),
            })?;
        if sha256(&buf) != e.sha256 {
            break;
        }
        whole.update(&buf);
        start += 1;
    }
    outcome.resumed_chunks = start as u64;

    // Fetched content used more than once is kept after its first use.
    let mut uses: HashMap<u64, u32> = HashMap::new();
    for (e, s) in entries.iter().zip(&plan.steps).skip(start) {
        if *s == Step::Fetch {
            *uses.entry(e.stored_offset).or_default() += 1;
        }
    }
    let mut kept: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut current: Option<(usize, Vec<u8>)> = None;
    let mut since_checkpoint = 0u64;

    #[allow(clippy::needless_range_loop)] // i names the chunk in errors and progress
    for i in start..entries.len() {
        let e = &entries[i];
        let step = plan.steps.get(i).copied().unwrap_or(Step::Fetch);
        let mut data = None;
        if let Step::Copy(loc) = step {
            let mut local = vec![0u8; e.len as usize];
            let ok = sources
                .get(loc.source)
                .map(|f| f.read_exact_at(&mut local, loc.offset).is_ok())
                .unwrap_or(false);
            if ok && sha256(&local) == e.sha256 {
                outcome.copied_bytes += u64::from(e.len);
                data = Some(local);
            } else {
                outcome.refetched_chunks += 1;
            }
        }
        let data = match data {
            Some(d) => d,
            None if step == Step::Fetch => {
                if let Some(d) = kept.get(&e.stored_offset) {
                    d.clone()
                } else {
                    let r = plan
                        .requests
                        .partition_point(|r| r.start <= e.stored_offset)
                        .checked_sub(1)
                        .filter(|&r| plan.requests[r].end >= e.stored_end());
                    let stored = match r {
                        Some(r) => {
                            if current.as_ref().is_none_or(|(c, _)| *c != r) {
                                let req = plan.requests[r];
                                let bytes = fetcher.fetch(req.start, req.end).await?;
                                outcome.fetched_bytes += bytes.len() as u64;
                                outcome.requests += 1;
                                current = Some((r, bytes));
                            }
                            let (_, bytes) = current.as_ref().expect("just set");
                            let base = plan.requests[r].start;
                            bytes[(e.stored_offset - base) as usize
                                ..(e.stored_end() - base) as usize]
                                .to_vec()
                        }
                        None => {
                            let bytes = fetcher.fetch(e.stored_offset, e.stored_end()).await?;
                            outcome.fetched_bytes += bytes.len() as u64;
                            outcome.requests += 1;
                            bytes
                        }
                    };
                    let d = decode(i, e, &stored)?;
                    if uses.get(&e.stored_offset).copied().unwrap_or(0) > 1 {
                        kept.insert(e.stored_offset, d.clone());
                    }
                    d
                }
            }
            None => {
                // A local copy that failed its hash: fetch just this chunk.
                let bytes = fetcher.fetch(e.stored_offset, e.stored_end()).await?;
                outcome.fetched_bytes += bytes.len() as u64;
                outcome.requests += 1;
                decode(i, e, &bytes)?
            }
        };
        target
            .seek(SeekFrom::Start(e.offset))
            .and_then(|_| target.write_all(&data))
            .context(error::WriteSnafu {
                what: what_target(),
            })?;
        whole.update(&data);
        since_checkpoint += u64::from(e.len);
        if let Some(p) = progress
            && since_checkpoint >= p.every_bytes
        {
            target
                .flush()
                .and_then(|_| target.sync())
                .context(error::WriteSnafu {
                    what: what_target(),
                })?;
            write_progress(&p.path, &id, i + 1)?;
            since_checkpoint = 0;
        }
    }
    target
        .flush()
        .and_then(|_| target.sync())
        .context(error::WriteSnafu {
            what: what_target(),
        })?;
    let actual = hex::encode(whole.finish().as_ref());
    if actual != index.header.image_sha256 {
        if let Some(p) = progress {
            let _ = std::fs::remove_file(&p.path);
        }
        return error::ImageHashSnafu {
            expected: index.header.image_sha256.clone(),
            actual,
        }
        .fail();
    }
    if let Some(p) = progress {
        write_progress(&p.path, &id, entries.len())?;
    }
    Ok(outcome)
}
