//! The publish side: cut an image into chunks, compress each one, write the chunk file and
//! build the index.

use crate::chunker::{Chunker, Params};
use crate::error::{self, Result};
use crate::index::{COMPRESSION, Entry, FORMAT, Header, Index, VERSION};
use aws_lc_rs::digest;
use snafu::ResultExt;
use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, data).as_ref());
    out
}

/// Cuts `image` with `params`, appends each distinct chunk's stored form (LZ4 block, or raw
/// when that is not smaller) to `chunks`, and returns the index.
pub fn chunk_image<R: Read, W: Write>(image: R, chunks: &mut W, params: Params) -> Result<Index> {
    let mut chunker = Chunker::new(image, params);
    let mut whole = digest::Context::new(&digest::SHA256);
    let mut seen: HashMap<[u8; 32], (u64, u32)> = HashMap::new();
    let mut entries = Vec::new();
    let mut buf = Vec::new();
    let (mut offset, mut stored_total) = (0u64, 0u64);
    while chunker
        .next_chunk(&mut buf)
        .context(error::ReadSnafu { what: "the image" })?
    {
        whole.update(&buf);
        let hash = sha256(&buf);
        let (stored_offset, stored_len) = match seen.get(&hash) {
            Some(&s) => s,
            None => {
                let compressed = lz4_flex::block::compress(&buf);
                let stored: &[u8] = if compressed.len() < buf.len() {
                    &compressed
                } else {
                    &buf
                };
                chunks.write_all(stored).context(error::WriteSnafu {
                    what: "the chunk file",
                })?;
                let s = (stored_total, stored.len() as u32);
                stored_total += stored.len() as u64;
                seen.insert(hash, s);
                s
            }
        };
        entries.push(Entry {
            sha256: hash,
            offset,
            len: buf.len() as u32,
            stored_offset,
            stored_len,
        });
        offset += buf.len() as u64;
    }
    chunks.flush().context(error::WriteSnafu {
        what: "the chunk file",
    })?;
    Ok(Index {
        header: Header {
            format: FORMAT.into(),
            version: VERSION,
            compression: COMPRESSION.into(),
            chunking: params,
            image_length: offset,
            image_sha256: hex::encode(whole.finish().as_ref()),
            chunk_count: entries.len() as u64,
            chunks_length: stored_total,
        },
        entries,
    })
}

/// The files [`publish_file`] wrote.
#[derive(Debug, Clone)]
pub struct Published {
    /// `<name>.chunks`.
    pub chunks_path: PathBuf,
    /// `<name>.index`.
    pub index_path: PathBuf,
    /// The index.
    pub index: Index,
}

/// The chunk file's target name for a root image target (`<root>.chunks`).
pub fn chunks_name(root_target: &str) -> String {
    format!("{root_target}.chunks")
}

/// The index's target name for a root image target (`<root>.index`).
pub fn index_name(root_target: &str) -> String {
    format!("{root_target}.index")
}

/// Chunks the uncompressed image at `image` into `out_dir/<name>.chunks` and
/// `out_dir/<name>.index`, with the default parameters.
pub fn publish_file(image: &Path, out_dir: &Path, name: &str) -> Result<Published> {
    let input = std::fs::File::open(image).context(error::OpenSnafu { path: image })?;
    let chunks_path = out_dir.join(chunks_name(name));
    let index_path = out_dir.join(index_name(name));
    let out =
        std::fs::File::create(&chunks_path).context(error::OpenSnafu { path: &chunks_path })?;
    let mut writer = BufWriter::with_capacity(1 << 20, out);
    let index = chunk_image(
        std::io::BufReader::with_capacity(1 << 20, input),
        &mut writer,
        Params::default(),
    )?;
    let file = writer
        .into_inner()
        .map_err(|e| e.into_error())
        .context(error::WriteSnafu {
            what: chunks_path.display().to_string(),
        })?;
    file.sync_all().context(error::WriteSnafu {
        what: chunks_path.display().to_string(),
    })?;
    std::fs::write(&index_path, index.to_bytes()).context(error::WriteSnafu {
        what: index_path.display().to_string(),
    })?;
    Ok(Published {
        chunks_path,
        index_path,
        index,
    })
}
