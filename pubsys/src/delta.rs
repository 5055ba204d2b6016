//! `pubsys repo --delta`: the root image's abos-chunked form (issue 16), published as two
//! extra targets next to the full artifact: `<root target>.chunks` and `<root target>.index`
//! (naming convention; the manifest is unchanged, so Bottlerocket and older hosts are
//! unaffected). The format is owned by the `abos-delta` crate (`delta/README.md`).

use crate::error::{self, Result};
use snafu::ResultExt;
use std::io::{BufReader, BufWriter, Read};
use std::path::{Path, PathBuf};

/// The chunk file and index written for a root image, in a temporary directory that lives as
/// long as this value.
#[derive(Debug)]
pub struct DeltaFiles {
    /// `<root target>.chunks`.
    pub chunks: PathBuf,
    /// `<root target>.index`.
    pub index: PathBuf,
    _dir: tempfile::TempDir,
}

/// Chunks the root image at `root` (an LZ4 frame file when its name ends in `.lz4`, as
/// os-image writes it; else the raw image) into `<file name>.chunks` and `<file name>.index`.
pub fn chunk_root(root: &Path) -> Result<DeltaFiles> {
    let name = crate::release::file_target_name(root)?;
    let dir = tempfile::tempdir().context(error::DeltaIoSnafu { path: root })?;
    let file = std::fs::File::open(root).context(error::DeltaIoSnafu { path: root })?;
    let reader: Box<dyn Read> = if name.ends_with(".lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(
            BufReader::with_capacity(1 << 20, file),
        ))
    } else {
        Box::new(BufReader::with_capacity(1 << 20, file))
    };
    let chunks = dir.path().join(abos_delta::publish::chunks_name(&name));
    let index = dir.path().join(abos_delta::publish::index_name(&name));
    let out = std::fs::File::create(&chunks).context(error::DeltaIoSnafu { path: &chunks })?;
    let mut writer = BufWriter::with_capacity(1 << 20, out);
    let built =
        abos_delta::publish::chunk_image(reader, &mut writer, abos_delta::Params::default())
            .context(error::DeltaSnafu { path: root })?;
    drop(writer);
    std::fs::write(&index, built.to_bytes()).context(error::DeltaIoSnafu { path: &index })?;
    Ok(DeltaFiles {
        chunks,
        index,
        _dir: dir,
    })
}
