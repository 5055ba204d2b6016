//! Assembling the disk image: a sparse file, a fresh GPT written through signpost, and the
//! filesystem images written at their partitions' offsets.

use crate::error::{self, Result};
use crate::layout::{Layout, PlannedPartition, Role, SECTOR_SIZE, derived_guid};
use signpost::SetName;
use snafu::{ResultExt, ensure};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

/// The three images of one set.
#[derive(Debug, Clone, Copy)]
pub struct SetImages<'a> {
    /// BOOT filesystem image.
    pub boot: &'a Path,
    /// ROOT filesystem image.
    pub root: &'a Path,
    /// Hash tree (superblock first).
    pub hash: &'a Path,
}

/// Creates the disk image at `path`: a sparse file of the layout's size, the partition table
/// (GUIDs derived from `seed`), and `images` written into each set of `populate`. Synced before
/// returning.
pub fn assemble(
    path: &Path,
    layout: &Layout,
    seed: &[u8],
    populate: &[SetName],
    images: SetImages<'_>,
) -> Result<()> {
    let file = File::create(path).context(error::CreateFileSnafu { path })?;
    file.set_len(layout.disk_bytes())
        .context(error::WriteFileSnafu { path })?;
    drop(file);
    signpost::write_new_table(
        path,
        SECTOR_SIZE,
        derived_guid(seed, "disk"),
        &layout.new_partitions(seed),
    )
    .context(error::WriteTableSnafu { path })?;
    let mut disk = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .context(error::OpenFileSnafu { path })?;
    for set in populate {
        write_partition(
            &mut disk,
            path,
            layout.get(Role::Boot(*set)),
            images.boot,
            "boot filesystem",
        )?;
        write_partition(
            &mut disk,
            path,
            layout.get(Role::Root(*set)),
            images.root,
            "root filesystem",
        )?;
        write_partition(
            &mut disk,
            path,
            layout.get(Role::Hash(*set)),
            images.hash,
            "hash tree",
        )?;
    }
    disk.sync_all().context(error::WriteFileSnafu { path })
}

/// Copies `image` to the start of `partition`, leaving all-zero 64 KiB runs as holes (the file
/// is fresh, so they already read as zeros).
fn write_partition(
    disk: &mut File,
    disk_path: &Path,
    partition: &PlannedPartition,
    image: &Path,
    what: &'static str,
) -> Result<()> {
    let mut input = File::open(image).context(error::OpenFileSnafu { path: image })?;
    let len = input
        .metadata()
        .context(error::ReadFileSnafu { path: image })?
        .len();
    ensure!(
        len <= partition.len_bytes(),
        error::ContentTooBigSnafu {
            what,
            source_dir: image,
            max_bytes: partition.len_bytes()
        }
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut offset = 0u64;
    while offset < len {
        let want = buf.len().min((len - offset) as usize);
        input
            .read_exact(&mut buf[..want])
            .context(error::ReadFileSnafu { path: image })?;
        for (i, piece) in buf[..want].chunks(64 << 10).enumerate() {
            if piece.iter().all(|b| *b == 0) {
                continue;
            }
            let at = partition.first_byte() + offset + (i as u64) * (64 << 10);
            disk.seek(SeekFrom::Start(at))
                .context(error::WriteFileSnafu { path: disk_path })?;
            disk.write_all(piece)
                .context(error::WriteFileSnafu { path: disk_path })?;
        }
        offset += want as u64;
    }
    Ok(())
}
