//! Content-defined chunking on 4 KiB boundaries.
//!
//! ext4 and erofs place file data on 4 KiB blocks, so a file inserted early in the tree moves
//! later files by whole blocks. A cut is therefore only ever made *between* blocks, and whether
//! to cut after a block depends on that block's content alone (a 64-bit hash of it against a
//! mask), within minimum and maximum chunk sizes. The same run of blocks gets the same cuts
//! wherever it lies in the image, so shifted content keeps its chunks: only the chunks around an
//! edit are new.

use serde::{Deserialize, Serialize};
use std::io::Read;

/// The chunking parameters, recorded in the index's header (a host chunks its local sources with
/// the parameters of the index it plans against).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    /// Granularity of cuts, bytes (4096).
    pub block_size: u32,
    /// Smallest chunk, in blocks (the last chunk of an image may be shorter).
    pub min_blocks: u32,
    /// Largest chunk, in blocks.
    pub max_blocks: u32,
    /// Cut after a block when `block_hash & cut_mask == 0` (7: one block in 8).
    pub cut_mask: u64,
    /// Also cut after a block that looks like the end of a file: its last `file_end_zeros`
    /// bytes are zero and its first 8 are not (0: off). In ext4/erofs a file's last block is
    /// zero-padded, so small files get chunks of their own instead of sharing one with their
    /// neighbours (a package update then fetches the changed files, not their neighbours).
    pub file_end_zeros: u32,
}

impl Default for Params {
    /// 4 KiB blocks; chunks of 8 KiB to 128 KiB, cut at file ends (16 zero bytes) or one
    /// block in 8.
    fn default() -> Params {
        Params {
            block_size: 4096,
            min_blocks: 2,
            max_blocks: 32,
            cut_mask: 7,
            file_end_zeros: 16,
        }
    }
}

impl Params {
    /// Largest chunk in bytes.
    pub fn max_chunk(&self) -> u64 {
        u64::from(self.block_size) * u64::from(self.max_blocks)
    }

    /// Whether the parameters are usable (checked when an index is parsed).
    pub fn check(&self) -> Result<(), String> {
        if !(512..=1 << 20).contains(&self.block_size) || !self.block_size.is_power_of_two() {
            return Err(format!(
                "block_size {} is not a power of two in 512..=1 MiB",
                self.block_size
            ));
        }
        if self.min_blocks == 0 || self.min_blocks > self.max_blocks || self.max_chunk() > 16 << 20
        {
            return Err(format!(
                "chunk sizes {}..{} blocks are not 1 <= min <= max <= 16 MiB",
                self.min_blocks, self.max_blocks
            ));
        }
        Ok(())
    }
}

/// A 64-bit hash of one block (multiply-xor over 8-byte words, then a finalizer). Not
/// cryptographic: it only places cuts; chunk identity is SHA-256.
pub fn block_hash(block: &[u8]) -> u64 {
    let mut h: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut words = block.chunks_exact(8);
    for w in &mut words {
        let v = u64::from_le_bytes(w.try_into().unwrap_or([0; 8]));
        h = (h ^ v).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(23);
    }
    for &b in words.remainder() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h
}

/// Whether a block looks like a file's zero-padded last block.
fn file_end(block: &[u8], zeros: u32) -> bool {
    let zeros = zeros as usize;
    zeros > 0
        && block.len() >= zeros + 8
        && block[block.len() - zeros..].iter().all(|&b| b == 0)
        && block[..8].iter().any(|&b| b != 0)
}

/// Cuts a stream into chunks.
#[derive(Debug)]
pub struct Chunker<R> {
    reader: R,
    params: Params,
    block: Vec<u8>,
    eof: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader`.
    pub fn new(reader: R, params: Params) -> Chunker<R> {
        Chunker {
            reader,
            block: vec![0; params.block_size as usize],
            params,
            eof: false,
        }
    }

    fn read_block(&mut self) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < self.block.len() {
            match self.reader.read(&mut self.block[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(filled)
    }

    /// Replaces `chunk` with the next chunk; `false` at the end of the stream.
    pub fn next_chunk(&mut self, chunk: &mut Vec<u8>) -> std::io::Result<bool> {
        chunk.clear();
        let mut blocks = 0u32;
        while !self.eof {
            let n = self.read_block()?;
            if n == 0 {
                self.eof = true;
                break;
            }
            chunk.extend_from_slice(&self.block[..n]);
            blocks += 1;
            if n < self.block.len() {
                self.eof = true;
                break;
            }
            if blocks >= self.params.max_blocks
                || (blocks >= self.params.min_blocks
                    && (file_end(&self.block, self.params.file_end_zeros)
                        || block_hash(&self.block) & self.params.cut_mask == 0))
            {
                break;
            }
        }
        Ok(!chunk.is_empty())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn cuts(data: &[u8], params: Params) -> Vec<usize> {
        let mut c = Chunker::new(data, params);
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while c.next_chunk(&mut buf).unwrap() {
            out.push(buf.len());
        }
        out
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn sizes_within_bounds_and_cover_input() {
        let p = Params::default();
        let data = pseudo_random(5 << 20, 7);
        let sizes = cuts(&data, p);
        assert_eq!(sizes.iter().sum::<usize>(), data.len());
        for s in &sizes[..sizes.len() - 1] {
            assert!(*s >= 2 * 4096 && *s <= 32 * 4096 && s % 4096 == 0, "{s}");
        }
        let avg = data.len() / sizes.len();
        assert!((20_000..80_000).contains(&avg), "average chunk {avg}");
    }

    #[test]
    fn block_insert_resynchronises() {
        let p = Params::default();
        let data = pseudo_random(4 << 20, 11);
        let mut shifted = pseudo_random(3 * 4096, 99);
        shifted.extend_from_slice(&data);
        let set = |d: &[u8]| {
            let mut c = Chunker::new(d, p);
            let mut buf = Vec::new();
            let mut v = std::collections::HashSet::new();
            while c.next_chunk(&mut buf).unwrap() {
                v.insert(buf.clone());
            }
            v
        };
        let a = set(&data);
        let b = set(&shifted);
        let new = b.difference(&a).count();
        assert!(new <= 3, "{new} new chunks of {}", b.len());
    }

    #[test]
    fn cuts_after_file_ends_not_in_zero_runs() {
        let p = Params::default();
        let mut data = Vec::new();
        for i in 0..6u64 {
            let mut file = pseudo_random(2 * 4096, i + 1);
            file[4096 + 100..].fill(0); // a 6 KiB file, zero-padded
            data.extend_from_slice(&file);
        }
        assert_eq!(cuts(&data, p), vec![8192; 6]);
        let zeros = vec![0u8; 64 * 4096];
        assert_eq!(cuts(&zeros, p), vec![32 * 4096; 2]);
    }

    #[test]
    fn odd_tail() {
        let data = pseudo_random(4096 * 5 + 100, 3);
        assert_eq!(
            cuts(&data, Params::default()).iter().sum::<usize>(),
            data.len()
        );
        assert!(cuts(&[], Params::default()).is_empty());
    }
}
