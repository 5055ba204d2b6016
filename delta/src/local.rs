//! What the host already has: its local sources (the active root, the inactive set's leftovers)
//! cut with the index's parameters and hashed, at hashing speed.

use crate::chunker::{Chunker, Params};
use crate::error::{self, Result};
use crate::publish::sha256;
use snafu::ResultExt;
use std::collections::HashMap;
use std::io::Read;

/// Where a chunk's content lies on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Source number (the order sources were added in).
    pub source: usize,
    /// Offset in the source.
    pub offset: u64,
    /// Length.
    pub len: u32,
}

/// Chunk hash → where the host has that content.
#[derive(Debug, Default)]
pub struct LocalIndex {
    map: HashMap<[u8; 32], Location>,
    sources: usize,
    scanned: u64,
}

impl LocalIndex {
    /// An empty local index.
    pub fn new() -> LocalIndex {
        LocalIndex::default()
    }

    /// Scans one source with `params` (the new index's); returns its source number. The first
    /// source that has a chunk keeps it.
    pub fn add_source<R: Read>(&mut self, reader: R, params: Params, what: &str) -> Result<usize> {
        self.add_source_at(reader, params, what, 0)
    }

    /// Like [`LocalIndex::add_source`] for a source that starts `base` bytes into its file (a
    /// partition of a whole disk): locations are recorded as file offsets (`base` + position),
    /// which is what the executor reads at.
    pub fn add_source_at<R: Read>(
        &mut self,
        reader: R,
        params: Params,
        what: &str,
        base: u64,
    ) -> Result<usize> {
        let source = self.sources;
        self.sources += 1;
        let mut chunker = Chunker::new(reader, params);
        let mut buf = Vec::new();
        let mut offset = 0u64;
        while chunker
            .next_chunk(&mut buf)
            .context(error::ReadSnafu { what })?
        {
            self.map.entry(sha256(&buf)).or_insert(Location {
                source,
                offset: base + offset,
                len: buf.len() as u32,
            });
            offset += buf.len() as u64;
        }
        self.scanned += offset;
        Ok(source)
    }

    /// Where the host has content with this hash.
    pub fn get(&self, sha256: &[u8; 32]) -> Option<Location> {
        self.map.get(sha256).copied()
    }

    /// Bytes scanned.
    pub fn scanned_bytes(&self) -> u64 {
        self.scanned
    }

    /// Distinct chunks known.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no chunk is known.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}
