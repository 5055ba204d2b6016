//! The abos-chunked v2 index: a magic line, a JSON header, then one compact entry per chunk.
//!
//! ```text
//! "abos-chunked v2\n"                      16 bytes
//! header length                            u32 little-endian
//! header                                   JSON (see `Header`)
//! chunk_count × entry, in image order:
//!     sha256 of the chunk's content        32 bytes
//!     blocks                               LEB128: length in `block_size` blocks (offsets are
//!                                          the running sum; only the last chunk may end in a
//!                                          partial block: its length is what `image_length`
//!                                          leaves)
//!     stored                               LEB128: 0 = stored as the earlier chunk with the same
//!                                          SHA-256; else stored length + 1, at the end of the
//!                                          stored forms so far (the chunk file holds each
//!                                          distinct chunk once, in order of first use)
//! ```
//!
//! v1 spent 48 bytes per chunk (u32 length, u32 stored length, u64 stored offset); v2 derives the
//! offsets and writes the lengths as varints: 33 to 36 bytes per chunk. The SHA-256 stays whole:
//! it is what a fetched or reused chunk is checked against.

use crate::chunker::Params;
use crate::error::{self, Result};
use serde::{Deserialize, Serialize};
use snafu::ResultExt;
use std::collections::HashMap;

/// The first 16 bytes of every index.
pub const MAGIC: &[u8; 16] = b"abos-chunked v2\n";
/// The format name in the header.
pub const FORMAT: &str = "abos-chunked";
/// The format version this crate reads and writes (v1, with fixed 48-byte entries, is refused).
pub const VERSION: u32 = 2;
/// The only compression: an LZ4 block per chunk (no frame), or raw when not smaller.
pub const COMPRESSION: &str = "lz4-block";

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A LEB128 value at `*at` (moved past it); `None` when truncated or over 64 bits.
fn get_varint(bytes: &[u8], at: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *bytes.get(*at)?;
        *at += 1;
        let part = u64::from(b & 0x7f);
        if shift == 63 && part > 1 {
            return None;
        }
        v |= part << shift;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

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
    /// Serializes the index. The entries must be laid out as [`crate::publish`] makes them
    /// (every chunk stored once, in order of first use, equal content sharing its stored form),
    /// which is the only layout v2 can express; another layout panics.
    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&self.header).unwrap_or_default();
        let mut out = Vec::with_capacity(20 + header.len() + self.entries.len() * 36);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
        out.extend_from_slice(&header);
        let bs = u64::from(self.header.chunking.block_size).max(1);
        let mut stored: HashMap<[u8; 32], (u64, u32)> = HashMap::new();
        let mut stored_end = 0u64;
        for e in &self.entries {
            out.extend_from_slice(&e.sha256);
            put_varint(&mut out, u64::from(e.len).div_ceil(bs));
            match stored.get(&e.sha256) {
                Some(&s) if s == (e.stored_offset, e.stored_len) => put_varint(&mut out, 0),
                _ => {
                    assert_eq!(
                        e.stored_offset, stored_end,
                        "abos-chunked v2 stores each chunk once, in order of first use"
                    );
                    stored
                        .entry(e.sha256)
                        .or_insert((e.stored_offset, e.stored_len));
                    stored_end += u64::from(e.stored_len);
                    put_varint(&mut out, u64::from(e.stored_len) + 1);
                }
            }
        }
        out
    }

    /// Parses and checks an index: magic, version, chunking parameters, every chunk's size,
    /// that the chunks tile the image exactly and that the stored forms fill the chunk file
    /// exactly. Errors give the byte offset of the problem.
    pub fn from_slice(bytes: &[u8]) -> Result<Index> {
        if bytes.len() < 20 || &bytes[..16] != MAGIC {
            let what = if bytes.starts_with(b"abos-chunked v") {
                "an abos-chunked index of another version (this host reads v2)"
            } else {
                "not an abos-chunked v2 index (bad magic)"
            };
            return Err(bad(0, what));
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
        if hex::decode(&header.image_sha256).map(|h| h.len()) != Ok(32) {
            return Err(bad(20, "image_sha256 is not 64 hex digits"));
        }
        let max = header.chunking.max_chunk();
        let bs = u64::from(header.chunking.block_size);
        // Each entry takes at least 34 bytes: a count beyond that is refused before allocating.
        let count = usize::try_from(header.chunk_count)
            .ok()
            .filter(|&c| c <= (bytes.len() - body) / 34)
            .ok_or_else(|| {
                bad(
                    body,
                    format!(
                        "{} entry bytes cannot hold {} chunks",
                        bytes.len() - body,
                        header.chunk_count
                    ),
                )
            })?;
        let mut entries = Vec::with_capacity(count);
        let mut stored: HashMap<[u8; 32], (u64, u32)> = HashMap::new();
        let (mut offset, mut stored_end) = (0u64, 0u64);
        let mut at = body;
        for i in 0..count {
            let start = at;
            let truncated = || bad(start, format!("chunk {i}: the index ends inside its entry"));
            let mut sha256 = [0u8; 32];
            sha256.copy_from_slice(bytes.get(at..at + 32).ok_or_else(truncated)?);
            at += 32;
            let blocks = get_varint(bytes, &mut at).ok_or_else(truncated)?;
            let code = get_varint(bytes, &mut at).ok_or_else(truncated)?;
            let whole = blocks.saturating_mul(bs);
            let len = if i + 1 == count {
                // The last chunk may end in a partial block.
                let left = header.image_length.saturating_sub(offset);
                if left == 0 || left > whole || left + bs <= whole {
                    return Err(bad(
                        start,
                        format!(
                            "last chunk of {blocks} blocks cannot hold the {left} bytes left of the image"
                        ),
                    ));
                }
                left
            } else {
                whole
            };
            if len == 0 || len > max {
                return Err(bad(
                    start,
                    format!("chunk {i} has length {len} (1..={max})"),
                ));
            }
            let len = len as u32;
            let (stored_offset, stored_len) = if code == 0 {
                *stored.get(&sha256).ok_or_else(|| {
                    bad(
                        start,
                        format!(
                            "chunk {i} refers to an earlier chunk with its SHA-256; there is none"
                        ),
                    )
                })?
            } else {
                let sl = code - 1;
                if sl == 0 || sl > u64::from(len) {
                    return Err(bad(
                        start,
                        format!("chunk {i} stored length {sl} for length {len}"),
                    ));
                }
                let s = (stored_end, sl as u32);
                stored.entry(sha256).or_insert(s);
                stored_end += sl;
                s
            };
            if stored_len > len {
                return Err(bad(
                    start,
                    format!(
                        "chunk {i} shares a stored form of {stored_len} bytes with a chunk of another length"
                    ),
                ));
            }
            entries.push(Entry {
                sha256,
                offset,
                len,
                stored_offset,
                stored_len,
            });
            offset += u64::from(len);
        }
        if at != bytes.len() {
            return Err(bad(
                at,
                format!(
                    "{} bytes after the last of {count} chunks",
                    bytes.len() - at
                ),
            ));
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
        if stored_end != header.chunks_length {
            return Err(bad(
                body,
                format!(
                    "stored forms take {stored_end} bytes, the chunk file has {}",
                    header.chunks_length
                ),
            ));
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

    #[test]
    fn varints_round_trip_and_refuse_overlong() {
        for v in [0, 1, 127, 128, 300, 1 << 21, u64::MAX] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            let mut at = 0;
            assert_eq!(get_varint(&b, &mut at), Some(v));
            assert_eq!(at, b.len());
        }
        let mut at = 0;
        assert_eq!(get_varint(&[0x80; 11], &mut at), None);
        let mut at = 0;
        assert_eq!(get_varint(&[0x80], &mut at), None, "truncated");
    }

    /// Two whole chunks and a partial last one, each stored once.
    fn valid() -> Index {
        let e = |i: u8, offset: u64, len: u32, stored_offset: u64, stored_len: u32| Entry {
            sha256: [i; 32],
            offset,
            len,
            stored_offset,
            stored_len,
        };
        Index {
            header: Header {
                format: FORMAT.into(),
                version: VERSION,
                compression: COMPRESSION.into(),
                chunking: Params::default(),
                image_length: 8192 + 8192 + 100,
                image_sha256: "00".repeat(32),
                chunk_count: 3,
                chunks_length: 310,
            },
            // Chunk 2's stored length takes a 2-byte varint.
            entries: vec![
                e(1, 0, 8192, 0, 50),
                e(2, 8192, 8192, 50, 200),
                e(3, 16384, 100, 250, 60),
            ],
        }
    }

    #[test]
    fn round_trip() {
        let i = valid();
        let bytes = i.to_bytes();
        assert_eq!(Index::from_slice(&bytes).unwrap(), i);
        // 20 + header + 3 × (32 + 1 + 1..2)
        let body = bytes.len() - 20 - serde_json::to_vec(&i.header).unwrap().len();
        assert!(body <= 3 * 35, "{body}");
        // Shared stored forms.
        let mut d = valid();
        d.header.image_length = 8192 * 3;
        d.header.chunks_length = 250;
        d.entries[2] = Entry {
            sha256: [1; 32],
            offset: 16384,
            len: 8192,
            stored_offset: 0,
            stored_len: 50,
        };
        assert_eq!(Index::from_slice(&d.to_bytes()).unwrap(), d);
    }

    #[test]
    fn rejects_bad_indexes() {
        let good = valid().to_bytes();
        let mut magic = good.clone();
        magic[0] = b'x';
        assert!(matches!(
            Index::from_slice(&magic),
            Err(error::Error::BadIndex { offset: 0, .. })
        ));
        let mut v1 = good.clone();
        v1[..16].copy_from_slice(b"abos-chunked v1\n");
        assert!(
            Index::from_slice(&v1)
                .unwrap_err()
                .to_string()
                .contains("another version")
        );
        let truncated = &good[..good.len() - 1];
        assert!(
            Index::from_slice(truncated)
                .unwrap_err()
                .to_string()
                .contains("ends inside")
        );
        assert!(
            Index::from_slice(&good[..good.len() - 3])
                .unwrap_err()
                .to_string()
                .contains("cannot hold 3 chunks")
        );
        let mut longer = good.clone();
        longer.push(0);
        assert!(
            Index::from_slice(&longer)
                .unwrap_err()
                .to_string()
                .contains("after the last")
        );
        let mut i = valid();
        i.header.image_length += 8192;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("cannot hold")
        );
        let mut i = valid();
        i.header.chunks_length = 300;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("stored forms take")
        );
        let mut i = valid();
        i.header.version = 3;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("version 3")
        );
        let mut i = valid();
        i.header.chunk_count = 1000;
        assert!(
            Index::from_slice(&i.to_bytes())
                .unwrap_err()
                .to_string()
                .contains("cannot hold 1000")
        );
    }
}
