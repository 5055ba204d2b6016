//! Finding the OS disk and the running set on a running host.
//!
//! 1. `stat("/")` gives the root filesystem's device number; `libc::major`/`libc::minor` split it
//!    (the kernel's full encoding, not the legacy `>> 8` one, which breaks for minors ≥ 256).
//! 2. `<sysfs>/dev/block/MAJ:MIN` is the root device (for Bottlerocket the dm-verity device
//!    `dm-0`). Its `slaves/` entries are the lower devices (the active set's ROOT and HASH
//!    partitions), followed recursively through stacked device-mapper devices. A root device that
//!    is itself a partition (no dm-verity) is its own lower device.
//! 3. Each lower device's sysfs directory holds a `partition` file with its number; its parent
//!    directory is the whole disk, whose node is `<dev>/<disk name>`.
//! 4. The active set is the set containing those partition numbers.
//!
//! Both roots are parameters, so tests (and operators inspecting another root) can point them at
//! a prepared tree.

use crate::device::Access;
use crate::disk::Disk;
use crate::error::{self, Result};
use crate::{SetName, Signpost};
use snafu::{ResultExt, ensure};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// A block device number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DevNum {
    /// Major number.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

impl DevNum {
    /// Splits a `st_dev`/`st_rdev` value with the kernel's encoding.
    pub fn from_dev_t(dev: u64) -> DevNum {
        DevNum {
            major: libc::major(dev as libc::dev_t),
            minor: libc::minor(dev as libc::dev_t),
        }
    }

    /// The device number of the filesystem holding `path`.
    pub fn of_path(path: &Path) -> Result<DevNum> {
        let meta = std::fs::metadata(path).context(error::StatRootSnafu { path })?;
        Ok(DevNum::from_dev_t(meta.dev()))
    }
}

impl std::fmt::Display for DevNum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.major, self.minor)
    }
}

/// Where the OS disk is and which of its partitions carry the root filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootDevice {
    /// Whole-disk device node, e.g. `/dev/nvme0n1`.
    pub disk: PathBuf,
    /// Partition numbers under the root device (the active ROOT and HASH).
    pub partitions: Vec<u32>,
}

fn read_trimmed(path: &Path) -> Result<String> {
    Ok(std::fs::read_to_string(path)
        .context(error::ReadSysfsSnafu { path })?
        .trim()
        .to_string())
}

fn canonical(path: &Path) -> Result<PathBuf> {
    path.canonicalize().context(error::ReadSysfsSnafu { path })
}

/// Lower partitions of a block device's sysfs directory, recursively.
fn lower_partitions(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let slaves = dir.join("slaves");
    let mut names = Vec::new();
    if slaves.is_dir() {
        for entry in std::fs::read_dir(&slaves).context(error::ReadSysfsSnafu { path: &slaves })? {
            names.push(
                entry
                    .context(error::ReadSysfsSnafu { path: &slaves })?
                    .path(),
            );
        }
    }
    names.sort();
    if names.is_empty() {
        if dir.join("partition").is_file() {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        let device = dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        return error::NoLowerDevicesSnafu { device, path: dir }.fail();
    }
    for slave in names {
        lower_partitions(&canonical(&slave)?, out)?;
    }
    Ok(())
}

/// Resolves a root device number to the OS disk and the partitions under it.
pub fn find_root_device(
    root_dev: DevNum,
    sysfs_root: &Path,
    dev_root: &Path,
) -> Result<RootDevice> {
    let link = sysfs_root.join("dev/block").join(root_dev.to_string());
    let dir = canonical(&link)?;
    let mut lowers = Vec::new();
    lower_partitions(&dir, &mut lowers)?;
    let mut disks = Vec::new();
    let mut partitions = Vec::new();
    for part_dir in &lowers {
        let file = part_dir.join("partition");
        let text = read_trimmed(&file)?;
        let number: u32 = text.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
            error::ParseSysfsSnafu {
                path: &file,
                content: text.clone(),
            }
            .build()
        })?;
        let disk_dir = part_dir.parent().unwrap_or(part_dir);
        let disk_name = disk_dir
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !disks.contains(&disk_name) {
            disks.push(disk_name);
        }
        if !partitions.contains(&number) {
            partitions.push(number);
        }
    }
    partitions.sort_unstable();
    ensure!(
        disks.len() == 1,
        error::SeveralDisksSnafu {
            disks: disks.clone()
        }
    );
    Ok(RootDevice {
        disk: dev_root.join(&disks[0]),
        partitions,
    })
}

/// Which set holds all of `partitions`.
pub fn active_set(disk: &Disk, partitions: &[u32]) -> Result<SetName> {
    let found = disk.sets().iter().find(|s| {
        partitions
            .iter()
            .all(|n| [s.boot.number, s.root.number, s.hash.number].contains(n))
    });
    match found {
        Some(s) => Ok(s.name),
        None => error::ActiveNotInSetsSnafu {
            disk: disk.path(),
            numbers: partitions.to_vec(),
        }
        .fail(),
    }
}

/// Discovery from an explicit root device number and access mode.
pub fn discover_with(
    root_dev: DevNum,
    sysfs_root: &Path,
    dev_root: &Path,
    access: Access,
) -> Result<Signpost> {
    let root = find_root_device(root_dev, sysfs_root, dev_root)?;
    let disk = Disk::open_with(&root.disk, access)?;
    let active = active_set(&disk, &root.partitions)?;
    Signpost::new(disk, active)
}

/// Discovery on the running host: root device of `/`, disk opened read-write (locked).
pub fn discover(sysfs_root: &Path, dev_root: &Path) -> Result<Signpost> {
    let dev = DevNum::of_path(Path::new("/"))?;
    discover_with(
        dev,
        sysfs_root,
        dev_root,
        Access::ReadWrite {
            lock_wait: crate::device::DEFAULT_LOCK_WAIT,
        },
    )
}

/// Opens the OS disk as seen from the running set: `disk` with the `active` set when both are
/// given; `disk` alone only if it is the disk the running system booted from (its active set
/// is discovered); neither: the running system's disk, discovered under `sysfs_root` and
/// `dev_root`.
pub fn open_os_disk(
    disk: Option<&Path>,
    active: Option<SetName>,
    sysfs_root: &Path,
    dev_root: &Path,
    access: Access,
) -> Result<Signpost> {
    match (disk, active) {
        (Some(disk), Some(active)) => Signpost::new(Disk::open_with(disk, access)?, active),
        (Some(disk), None) => {
            // Without --active, the disk must be the host's OS disk, whose active set we discover.
            let found = discover_with(
                DevNum::of_path(Path::new("/"))?,
                sysfs_root,
                dev_root,
                access,
            );
            match found {
                Ok(sp) if same_file(sp.disk().path(), disk) => Ok(sp),
                _ => error::ActiveRequiredSnafu { disk }.fail(),
            }
        }
        (None, _) => discover_with(
            DevNum::of_path(Path::new("/"))?,
            sysfs_root,
            dev_root,
            access,
        ),
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn dev_t_split_uses_full_encoding() {
        // makedev(259, 300): the legacy >>8 / &0xff split gets this wrong.
        let dev = (259u64 << 8) | (300 & 0xff) | ((300u64 & !0xff) << 12);
        assert_eq!(
            DevNum::from_dev_t(dev),
            DevNum {
                major: 259,
                minor: 300
            }
        );
        assert_eq!(
            DevNum::from_dev_t((8 << 8) | 3),
            DevNum { major: 8, minor: 3 }
        );
    }
}
