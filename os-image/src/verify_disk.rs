//! Verifying a built disk image: the partition table is clean and is our plan, and every set
//! that holds an OS boots (emulated): its root verifies against its hash tree with the root hash
//! recorded in its BOOT partition, and its os-release is readable.

use crate::boot::{self, BootedSystem};
use crate::error::{self, Result};
use crate::layout::{Layout, LayoutSize};
use serde::Serialize;
use signpost::{Disk, Flags, SetName, guids};
use snafu::{ResultExt, ensure};
use std::path::{Path, PathBuf};

/// What `verify` found.
#[derive(Debug, Clone, Serialize)]
pub struct DiskReport {
    /// The disk.
    pub path: PathBuf,
    /// Its size in bytes.
    pub disk_bytes: u64,
    /// The plan it matches.
    pub layout: LayoutSize,
    /// Number of partitions checked against the plan.
    pub partitions: usize,
    /// Each set.
    pub sets: Vec<SetReport>,
}

/// One set of a verified disk.
#[derive(Debug, Clone, Serialize)]
pub struct SetReport {
    /// Which set.
    pub set: SetName,
    /// Its boot flags.
    pub flags: Flags,
    /// What it holds.
    pub content: SetContent,
}

/// What a set holds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum SetContent {
    /// Nothing (BOOT holds no filesystem).
    Empty,
    /// An OS that verified.
    Verified {
        /// VERSION_ID.
        version: String,
        /// VARIANT_ID.
        variant: String,
        /// BUILD_ID.
        build_id: String,
        /// Root hash.
        root_hash: String,
        /// Data blocks.
        data_blocks: u64,
        /// Root filesystem type.
        root_fs: String,
    },
}

impl SetContent {
    fn from_booted(b: &BootedSystem) -> SetContent {
        let get = |k: &str| b.os_release.get(k).cloned().unwrap_or_default();
        SetContent::Verified {
            version: get("VERSION_ID"),
            variant: get("VARIANT_ID"),
            build_id: get("BUILD_ID"),
            root_hash: b.boot.verity.root_hash.clone(),
            data_blocks: b.boot.verity.data_blocks,
            root_fs: b.boot.verity.root_fs.to_string(),
        }
    }
}

/// Checks the table against the plan for the disk's size.
fn check_layout(path: &Path, disk: &Disk) -> Result<Layout> {
    let mismatch = |reason: String| error::LayoutMismatchSnafu { path, reason }.fail();
    let warnings = disk.warnings();
    if !warnings.is_empty() {
        let text: Vec<String> = warnings.iter().map(ToString::to_string).collect();
        return mismatch(format!("partition table damaged: {}", text.join("; ")));
    }
    let Some(layout) = Layout::for_disk_size(disk.len_bytes()) else {
        return mismatch(format!(
            "{} bytes is the size of no layout",
            disk.len_bytes()
        ));
    };
    ensure!(
        disk.sector_size() == crate::layout::SECTOR_SIZE,
        error::LayoutMismatchSnafu {
            path,
            reason: format!("sector size {}", disk.sector_size())
        }
    );
    let entries = disk.table().entries();
    for (i, e) in entries.iter().enumerate() {
        let Some(p) = layout.partitions.get(i) else {
            if e.is_used() {
                return mismatch(format!("unexpected partition {}", i + 1));
            }
            continue;
        };
        let label = e.partition_name.as_str();
        let type_guid = guids::to_string(&e.partition_type_guid);
        if type_guid != p.role.type_guid() || label != p.label {
            return mismatch(format!(
                "partition {} is '{label}' of type {type_guid}, expected '{}' of type {}",
                p.number,
                p.label,
                p.role.type_guid()
            ));
        }
        if e.starting_lba != p.first_lba() || e.ending_lba != p.last_lba() {
            return mismatch(format!(
                "partition {} ({}) spans sectors {}-{}, expected {}-{}",
                p.number,
                p.label,
                e.starting_lba,
                e.ending_lba,
                p.first_lba(),
                p.last_lba()
            ));
        }
    }
    ensure!(
        entries.len() >= layout.partitions.len(),
        error::LayoutMismatchSnafu {
            path,
            reason: format!("only {} partition entries", entries.len())
        }
    );
    Ok(layout)
}

/// Verifies a disk image (or device): layout, filesystems present, and every populated set's
/// root against its hash tree and the root hash in its boot partition. A block device is read
/// from the device, not from pages cached earlier ([`abos_fsio::read_from_device`]).
pub fn verify_disk(path: &Path) -> Result<DiskReport> {
    abos_fsio::read_from_device(path).context(error::ReadFromDeviceSnafu { path })?;
    let disk = Disk::open_read_only(path).context(error::OpenDiskSnafu { path })?;
    let layout = check_layout(path, &disk)?;
    let mut sets = Vec::new();
    for set in disk.sets() {
        let flags = disk
            .flags(set.name)
            .context(error::OpenDiskSnafu { path })?;
        let content = if boot::filesystem_at(path, &set.boot)?.is_none() {
            SetContent::Empty
        } else {
            SetContent::from_booted(&boot::emulated_boot(path, set)?)
        };
        sets.push(SetReport {
            set: set.name,
            flags,
            content,
        });
    }
    ensure!(
        sets.iter()
            .any(|s| matches!(s.content, SetContent::Verified { .. })),
        error::NoPopulatedSetSnafu { path }
    );
    Ok(DiskReport {
        path: path.to_path_buf(),
        disk_bytes: disk.len_bytes(),
        layout: layout.size,
        partitions: layout.partitions.len(),
        sets,
    })
}
