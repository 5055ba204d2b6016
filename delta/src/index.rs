//! The abos-chunked v1 index: a magic line, a JSON header, then one 48-byte entry per chunk.
//!
//! ```text
//! "abos-chunked v1\n"                      16 bytes
//! header length                            u32 little-endian
//! header                                   JSON (see `Header`)
//! chunk_count × entry                      48 bytes each:
//!     sha256 of the chunk's content        32 bytes
//!     length in the image                  u32 LE (offsets are the running sum)
//!     stored length in the chunk file      u32 LE (== length: stored raw; else an LZ4 block)
//!     offset in the chunk file             u64 LE (chunks with equal content share one copy)
//! ```

use crate::chunker::Params;
use crate::error::{self, Result};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;

/// The first 16 bytes of every index.
pub const MAGIC: &[u8; 16] = b"abos-chunked v1\n";
/// The format name in the header.
pub const FORMAT: &str = "abos-chunked";
/// The format version this crate reads and writes.
pub const VERSION: u32 = 1;
/// The only compression of v1: an LZ4 block per chunk (no frame), or raw when not smaller.
pub const COMPRESSION: &str = "lz4-block";
const ENTRY_LEN: usize = 48;

/// The JSON header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: u32,
    /// Always [`COMPRESSION`].
    pub compression: String,
    /// How the image was cut.
    pub chunking: Params,
    /// Bytes in the image.
    pub image_length: u64,
    /// SHA-256 of the whole image, lowercase hex.
    pub image_sha256: String,
    /// Number of entries.
    pub chunk_count: u64,
    /// Bytes in the chunk file.
    pub chunks_length: u64,
}

/// One chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// SHA-256 of the chunk's (uncompressed) content.
    pub sha256: [u8; 32],
    /// Offset in the image.
    pub offset: u64,
    /// Length in the image.
    pub len: u32,
    /// Offset of its stored form in the chunk file.
    pub stored_offset: u64,
    /// Length of its stored form.
    pub stored_len: u32,
}

impl Entry {
    /// Whether the stored form is the raw content (else an LZ4 block).
    pub fn is_raw(&self) -> bool {
        self.stored_len == self.len
    }

    /// End of the stored form in the chunk file.
    pub fn stored_end(&self) -> u64 {
        self.stored_offset + u64::from(self.stored_len)
    }
}

/// A parsed, checked index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    /// The header.
    pub header: Header,
    /// The chunks, in image order.
    pub entries: Vec<Entry>,
}

fn bad(offset: usize, reason: impl Into<String>) -> error::Error {
    error::Error::BadIndex {
        offset: offset as u64,
        reason: reason.into(),
    }
}

impl Index {
    /// Serializes the index.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut out = Vec::with_capacity(20 + header.len() + self.entries.len() * ENTRY_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        for e in &self.entries {
            out.extend_from_slice(&e.sha256);
            out.extend_from_slice(&e.len.to_le_bytes());
            out.extend_from_slice(&e.stored_len.to_le_bytes());
            out.extend_from_slice(&e.stored_offset.to_le_bytes());
        }
        out
    }

    /// Parses and checks an index: magic, version, chunking parameters, every chunk's size,
    /// that the chunks tile the image exactly and that every stored range lies in the chunk
    /// file. Errors give the byte offset of the problem.
    pub fn from_slice(bytes: &[u8]) -> Result<Index> {
        if bytes.len() < 20 || &bytes[..16] != MAGIC {
            return Err(bad(0, "not an abos-chunked v1 index (bad magic)"));
        }
        let hlen = u32::from_le_bytes(bytes[16..20].try_into().unwrap_or_default()) as usize;
        let body = 20usize
            .checked_add(hlen)
            .filter(|&b| b <= bytes.len())
            .ok_or_else(|| bad(16, format!("header length {hlen} exceeds the index")))?;
        let header: Header =
            serde_json::from_slice(&bytes[20..body]).context(error::IndexHeaderSnafu)?;
        if header.format != FORMAT || header.version != VERSION {
            return Err(bad(
                20,
                format!(
                    "format {} version {} (expected {FORMAT} {VERSION})",
                    header.format, header.version
                ),
            ));
        }
        if header.compression != COMPRESSION {
            return Err(bad(
                20,
                format!("unknown compression {:?}", header.compression),
            ));
        }
        header.chunking.check().map_err(|r| bad(20, r))?;
        let rest = &bytes[body..];
        if !rest.len().is_multiple_of(ENTRY_LEN)
            || (rest.len() / ENTRY_LEN) as u64 != header.chunk_count
        {
            return Err(bad(
                body,
                format!(
                    "{} entry bytes for {} chunks",
                    rest.len(),
                    header.chunk_count
                ),
            ));
        }
        let max = header.chunking.max_chunk();
        let mut entries = Vec::with_capacity(rest.len() / ENTRY_LEN);
        let mut offset = 0u64;
        for (i, raw) in rest.chunks_exact(ENTRY_LEN).enumerate() {
            let at = body + i * ENTRY_LEN;
            let len = u32::from_le_bytes(raw[32..36].try_into().unwrap_or_default());
            let stored_len = u32::from_le_bytes(raw[36..40].try_into().unwrap_or_default());
            let stored_offset = u64::from_le_bytes(raw[40..48].try_into().unwrap_or_default());
            if len == 0 || u64::from(len) > max {
                return Err(bad(at, format!("chunk {i} has length {len} (1..={max})")));
            }
            if stored_len == 0 || stored_len > len {
                return Err(bad(
                    at,
                    format!("chunk {i} stored length {stored_len} for length {len}"),
                ));
            }
            if stored_offset
                .checked_add(u64::from(stored_len))
                .is_none_or(|end| end > header.chunks_length)
            {
                return Err(bad(
                    at,
                    format!(
                        "chunk {i} lies beyond the chunk file ({} bytes)",
                        header.chunks_length
                    ),
                ));
            }
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(&raw[..32]);
            entries.push(Entry {
                sha256,
                offset,
                len,
                stored_offset,
                stored_len,
            });
            offset += u64::from(len);
        }
        if offset != header.image_length {
            return Err(bad(
                body,
                format!(
                    "chunks cover {offset} bytes, the image has {}",
                    header.image_length
                ),
            ));
        }
        if hex::decode(&header.image_sha256).map(|h| h.len()) != Ok(32) {
            return Err(bad(20, "image_sha256 is not 64 hex digits"));
        }
        Ok(Index { header, entries })
    }

    /// Sum of the stored lengths of distinct stored ranges (what fetching every chunk costs).
    pub fn stored_bytes(&self) -> u64 {
        self.header.chunks_length
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn sample() -> Index {
        let e = |i: u8, off: u64, len: u32, so: u64, sl: u32| Entry {
            sha256: [i; 32],
            offset: off,
            len,
            stored_offset: so,
            stored_len: sl,
        };
        Index {
            header: Header {
                format: FORMAT.into(),
                version: VERSION,
                compression: COMPRESSION.into(),
                chunking: Params::default(),
                image_length: 8192 + 100,
                image_sha256: "00".repeat(32),
                chunk_count: 2,
                chunks_length: 150,
            },
            entries: vec![e(1, 0, 8192, 0, 50), e(2, 8192, 100, 50, 100)],
        }
    }

    #[test]
    fn round_trip() {
        let i = sample();
        assert_eq!(Index::from_slice(&i.to_bytes()).unwrap(), i);
    }

    #[test]
    fn rejects_bad_indexes() {
        let good = sample().to_bytes();
        let mut magic = good.clone();
        magic[0] = b'x';
        assert!(matches!(
            Index::from_slice(&magic),
            Err(error::Error::BadIndex { offset: 0, .. })
        ));
        let truncated = &good[..good.len() - 1];
        assert!(
            Index::from_slice(truncated)
                .unwrap_err()
                .to_string()
                .contains("entry bytes")
        );
        let mut i = sample();
        i.header.image_length += 1;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("cover")
        );
        let mut i = sample();
        i.entries[1].stored_offset = 100;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("beyond")
        );
        let mut i = sample();
        i.header.version = 2;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("version 2")
        );
    }
}
