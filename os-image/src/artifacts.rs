//! Update artifacts: LZ4 frame files (`lz4 -9`, readable by `lz4 -d` and updog) with their
//! sizes and SHA-256 digests.

use crate::error::{self, Result};
use crate::tools;
use snafu::ResultExt;
use std::io::Read;
use std::path::Path;
use update_metadata::Artifact;

/// Size and lowercase-hex SHA-256 of a file, read in 1 MiB chunks.
pub fn file_digest(path: &Path) -> Result<(u64, String)> {
    let mut file = std::fs::File::open(path).context(error::OpenFileSnafu { path })?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).context(error::ReadFileSnafu { path })?;
        if n == 0 {
            break;
        }
        ctx.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hex::encode(ctx.finish().as_ref())))
}

/// Compresses `input` to `out_dir/file_name` and describes the result.
pub fn compress(input: &Path, out_dir: &Path, file_name: &str) -> Result<Artifact> {
    let output = out_dir.join(file_name);
    tools::lz4_compress(input, &output)?;
    let (uncompressed_size, uncompressed_sha256) = file_digest(input)?;
    let (size, sha256) = file_digest(&output)?;
    Ok(Artifact {
        file_name: file_name.to_string(),
        size,
        sha256,
        uncompressed_size,
        uncompressed_sha256,
    })
}

/// Describes an uncompressed file (the disk image).
pub fn describe_plain(path: &Path, file_name: &str) -> Result<Artifact> {
    let (size, sha256) = file_digest(path)?;
    Ok(Artifact {
        file_name: file_name.to_string(),
        size,
        sha256: sha256.clone(),
        uncompressed_size: size,
        uncompressed_sha256: sha256,
    })
}
