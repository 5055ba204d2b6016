//! The plan: for each chunk of the new index, copy it from a local source or fetch its stored
//! range; fetch ranges coalesced into few HTTP Range requests; and whether a delta is worth it.
//! A pure function of (index, local index, options): a rerun computes the same plan.

use crate::index::Index;
use crate::local::{LocalIndex, Location};
use serde::Serialize;

/// What to do for one chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Copy from a local source (re-hashed as it is copied; fetched instead on mismatch).
    Copy(Location),
    /// Fetch the stored range from the chunk file.
    Fetch,
}

/// One Range request: chunk file bytes `start..end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Request {
    /// First byte.
    pub start: u64,
    /// End (exclusive).
    pub end: u64,
}

impl Request {
    /// Bytes requested.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether empty.
    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// Planning options.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Merge two fetch ranges when the gap between them is at most this many bytes (a gap costs
    /// its bytes; another request costs a round trip and headers).
    pub max_gap: u64,
    /// Never make one request longer than this (bounds the executor's memory).
    pub max_request: u64,
}

impl Default for Options {
    /// 32 KiB gaps, 8 MiB requests.
    fn default() -> Options {
        Options {
            max_gap: 32 << 10,
            max_request: 8 << 20,
        }
    }
}

/// The plan and its figures.
#[derive(Debug, Clone)]
pub struct Plan {
    /// One step per index entry.
    pub steps: Vec<Step>,
    /// Coalesced requests, sorted by start.
    pub requests: Vec<Request>,
    /// Image bytes copied from local sources.
    pub reuse_bytes: u64,
    /// Image bytes fetched (uncompressed).
    pub fetch_image_bytes: u64,
    /// Bytes the requests transfer (stored chunk bytes plus merged gaps).
    pub fetch_bytes: u64,
}

/// Plan figures for `check-update --json` and the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Image bytes reused from the host.
    pub reuse_bytes: u64,
    /// Bytes to download: the index plus the Range requests.
    pub download_bytes: u64,
    /// Range requests.
    pub requests: usize,
    /// The full artifact's size.
    pub full_bytes: u64,
}

/// Delta or full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Decision {
    /// Apply the delta.
    Delta(Summary),
    /// Download the full artifact: the delta would not be smaller.
    Full(Summary),
}

impl Plan {
    /// Plans `index` against what `local` holds.
    pub fn new(index: &Index, local: &LocalIndex, options: Options) -> Plan {
        let mut steps = Vec::with_capacity(index.entries.len());
        let mut ranges = Vec::new();
        let (mut reuse, mut fetch_image) = (0u64, 0u64);
        for e in &index.entries {
            match local.get(&e.sha256).filter(|l| l.len == e.len) {
                Some(loc) => {
                    reuse += u64::from(e.len);
                    steps.push(Step::Copy(loc));
                }
                None => {
                    fetch_image += u64::from(e.len);
                    ranges.push((e.stored_offset, e.stored_end()));
                    steps.push(Step::Fetch);
                }
            }
        }
        let requests = coalesce(ranges, options);
        let fetch_bytes = requests.iter().map(Request::len).sum();
        Plan {
            steps,
            requests,
            reuse_bytes: reuse,
            fetch_image_bytes: fetch_image,
            fetch_bytes,
        }
    }

    /// Delta when the index plus the requests cost less than the full artifact.
    pub fn decide(&self, index_bytes: u64, full_bytes: u64) -> Decision {
        let summary = Summary {
            reuse_bytes: self.reuse_bytes,
            download_bytes: index_bytes + self.fetch_bytes,
            requests: self.requests.len(),
            full_bytes,
        };
        if summary.download_bytes < full_bytes {
            Decision::Delta(summary)
        } else {
            Decision::Full(summary)
        }
    }
}

/// Sorts, deduplicates and merges ranges whose gap is at most `max_gap`, keeping each request
/// at most `max_request` long (a single longer range stays whole).
pub fn coalesce(mut ranges: Vec<(u64, u64)>, options: Options) -> Vec<Request> {
    ranges.sort_unstable();
    ranges.dedup();
    let mut out: Vec<Request> = Vec::new();
    for (start, end) in ranges {
        if let Some(last) = out.last_mut() {
            if start < last.end {
                // Shared stored copy (same content twice): already covered, maybe extend.
                last.end = last.end.max(end);
                continue;
            }
            if start - last.end <= options.max_gap && end - last.start <= options.max_request {
                last.end = end;
                continue;
            }
        }
        out.push(Request { start, end });
    }
    out
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn coalesces_small_gaps_only() {
        let o = Options {
            max_gap: 10,
            max_request: 100,
        };
        let r = coalesce(
            vec![(50, 60), (0, 10), (15, 20), (40, 45), (0, 10), (95, 140)],
            o,
        );
        assert_eq!(
            r,
            vec![
                Request { start: 0, end: 20 },
                Request { start: 40, end: 60 },
                Request {
                    start: 95,
                    end: 140
                },
            ]
        );
        let cap = coalesce(vec![(0, 60), (61, 120)], o);
        assert_eq!(cap.len(), 2);
    }
}
