//! [`Disk`]: a disk-image file or block device with its GPT, its A/B sets and its flags.

use crate::attrs;
use crate::device::{Access, DEFAULT_LOCK_WAIT, Device, DiskKind};
use crate::error::{self, Result};
use crate::gpt::{self, CopyKind, CopyProblem, Table, WritePlan};
use crate::guids::{self, Role};
use crate::state::DiskState;
use crate::{Flags, Partition, PartitionSet, SetName};
use gptman::GPTPartitionEntry;
use serde::Serialize;
use snafu::{OptionExt, ResultExt, ensure};
use std::fmt;
use std::path::{Path, PathBuf};

/// Something wrong with the table that was tolerated (and is repaired by the next write).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableWarning {
    /// The damaged copy.
    pub copy: CopyKind,
    /// What is wrong with it.
    pub problem: CopyProblem,
    /// Which copy was used instead.
    pub used: CopyKind,
}

impl fmt::Display for TableWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.copy == self.used {
            write!(f, "{} GPT copy: {}", self.copy, self.problem)
        } else {
            write!(
                f,
                "{} GPT copy is invalid ({}); recovered the table from the {} copy; the next change rewrites both",
                self.copy, self.problem, self.used
            )
        }
    }
}

/// The A/B layout found in a table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub(crate) sets: Vec<PartitionSet>,
    pub(crate) private: Option<Partition>,
}

/// A loaded disk: a disk-image file or a block device, with its GPT.
#[derive(Debug)]
pub struct Disk {
    device: Device,
    sector_size: u64,
    table: Table,
    layout: Layout,
}

/// A partition's byte range, with checked arithmetic: the reader has already refused entries
/// outside the disk, but an offset must never wrap even if a caller skipped that check.
fn partition(number: u32, e: &GPTPartitionEntry, ss: u64, path: &Path) -> Result<Partition> {
    let overflow = || {
        error::PartitionOffsetOverflowSnafu {
            path,
            number,
            first_lba: e.starting_lba,
            last_lba: e.ending_lba,
        }
        .build()
    };
    let first_byte = e.starting_lba.checked_mul(ss).ok_or_else(overflow)?;
    let len_bytes = e
        .ending_lba
        .checked_sub(e.starting_lba)
        .and_then(|n| n.checked_add(1))
        .and_then(|n| n.checked_mul(ss))
        .ok_or_else(overflow)?;
    first_byte.checked_add(len_bytes).ok_or_else(overflow)?;
    Ok(Partition {
        number,
        first_byte,
        len_bytes,
        unique_guid: guids::to_string(&e.unique_partition_guid),
        label: e.partition_name.as_str().to_string(),
    })
}

/// Finds the sets by type GUID in table order and checks ROOT/HASH follow BOOT directly.
pub(crate) fn layout(entries: &[GPTPartitionEntry], ss: u64, path: &Path) -> Result<Layout> {
    let used = || {
        entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.is_used())
            .map(|(i, e)| (i as u32 + 1, e))
    };
    let of_role = |role: Role| -> Vec<(u32, &GPTPartitionEntry)> {
        used()
            .filter(|(_, e)| guids::role(&e.partition_type_guid) == Some(role))
            .collect()
    };
    let boots = of_role(Role::Boot);
    ensure!(!boots.is_empty(), error::NoBootPartitionSnafu { path });
    ensure!(
        boots.len() <= 2,
        error::TooManyBootPartitionsSnafu {
            path,
            count: boots.len(),
            numbers: boots.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        }
    );
    let describe = |number: u32| -> String {
        match entries.get(number as usize - 1) {
            Some(e) if e.is_used() => {
                let role = match guids::role(&e.partition_type_guid) {
                    Some(Role::Boot) => "BOOT".to_string(),
                    Some(Role::Root) => "ROOT".to_string(),
                    Some(Role::Hash) => "HASH".to_string(),
                    Some(Role::Private) => "PRIVATE".to_string(),
                    None => format!("type {}", guids::to_string(&e.partition_type_guid)),
                };
                format!(
                    "partition {number} is {role} ({:?})",
                    e.partition_name.as_str()
                )
            }
            _ => format!("partition {number} is unused"),
        }
    };
    let roots = of_role(Role::Root);
    let hashes = of_role(Role::Hash);
    let mut sets = Vec::new();
    for (i, (boot_no, boot)) in boots.iter().enumerate() {
        let name = if i == 0 { SetName::A } else { SetName::B };
        let member = |list: &[(u32, &GPTPartitionEntry)], role: &'static str, offset: u32| {
            let expected = boot_no + offset;
            match list.get(i) {
                Some((n, e)) if *n == expected => partition(*n, e, ss, path),
                _ => error::BadSetLayoutSnafu {
                    path,
                    set: name,
                    role,
                    boot_number: *boot_no,
                    expected,
                    offset,
                    found: describe(expected),
                }
                .fail(),
            }
        };
        let root = member(&roots, "ROOT", 1)?;
        let hash = member(&hashes, "HASH", 2)?;
        sets.push(PartitionSet {
            name,
            boot: partition(*boot_no, boot, ss, path)?,
            root,
            hash,
        });
    }
    let private = of_role(Role::Private)
        .first()
        .map(|(n, e)| partition(*n, e, ss, path))
        .transpose()?;
    Ok(Layout { sets, private })
}

/// The A/B sets of a table read by [`gpt::read`], as [`Disk::open`] finds them (for tools and
/// fuzzers that read a table from memory).
pub fn find_sets(table: &Table, path: &Path) -> Result<Vec<PartitionSet>> {
    Ok(layout(table.entries(), table.sector_size, path)?.sets)
}

impl Disk {
    /// Opens read-write, taking an exclusive lock (waiting up to 10 s for it).
    pub fn open(path: &Path) -> Result<Disk> {
        Self::open_with(
            path,
            Access::ReadWrite {
                lock_wait: DEFAULT_LOCK_WAIT,
            },
        )
    }

    /// Opens read-only, without a lock.
    pub fn open_read_only(path: &Path) -> Result<Disk> {
        Self::open_with(path, Access::ReadOnly)
    }

    /// Opens with explicit access and lock wait.
    pub fn open_with(path: &Path, access: Access) -> Result<Disk> {
        let mut device = Device::open(path, access)?;
        let len = device.len;
        let sector_size = match device.kernel_sector_size()? {
            Some(ss) => ss,
            None => gpt::probe_sector_size(&mut device.file, len)
                .context(error::ReadTableSnafu { path })?
                .context(error::NotGptSnafu { path })?,
        };
        let table = gpt::read(&mut device.file, path, sector_size, len)?;
        tracing::debug!(
            disk = %path.display(),
            sector_size,
            source = %table.source,
            primary_problem = ?table.primary_problem,
            backup_problem = ?table.backup_problem,
            "read partition table"
        );
        let layout = layout(table.entries(), sector_size, path)?;
        Ok(Disk {
            device,
            sector_size,
            table,
            layout,
        })
    }

    /// The path the disk was opened at.
    pub fn path(&self) -> &Path {
        &self.device.path
    }

    /// Image file or block device.
    pub fn kind(&self) -> DiskKind {
        self.device.kind
    }

    /// Logical sector size (512 or 4096).
    pub fn sector_size(&self) -> u64 {
        self.sector_size
    }

    /// Disk size in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.device.len
    }

    /// The table as read.
    pub fn table(&self) -> &Table {
        &self.table
    }

    /// Problems found with the table copies (empty if both are valid and identical).
    pub fn warnings(&self) -> Vec<TableWarning> {
        let used = self.table.source;
        [
            (CopyKind::Primary, &self.table.primary_problem),
            (CopyKind::Backup, &self.table.backup_problem),
        ]
        .into_iter()
        .filter_map(|(copy, p)| {
            p.clone().map(|problem| TableWarning {
                copy,
                problem,
                used,
            })
        })
        .collect()
    }

    /// Whether the disk has two sets.
    pub fn is_dual(&self) -> bool {
        self.layout.sets.len() == 2
    }

    /// All sets in table order.
    pub fn sets(&self) -> &[PartitionSet] {
        &self.layout.sets
    }

    /// One set; an error on single-set disks for B.
    pub fn set(&self, name: SetName) -> Result<PartitionSet> {
        self.layout
            .sets
            .get(name.index())
            .cloned()
            .context(error::NoSuchSetSnafu { set: name })
    }

    /// The BOTTLEROCKET-PRIVATE partition, if any.
    pub fn private(&self) -> Option<&Partition> {
        self.layout.private.as_ref()
    }

    fn entry(&self, p: &Partition) -> &GPTPartitionEntry {
        &self.table.entries()[p.number as usize - 1]
    }

    /// The boot flags of a set.
    pub fn flags(&self, name: SetName) -> Result<Flags> {
        let set = self.set(name)?;
        Ok(attrs::decode(self.entry(&set.boot).attribute_bits))
    }

    /// Whether a set holds something bootable (see [`crate::content`]): `Ok(Err(problem))` if
    /// not, `Err` if its partitions cannot be read.
    pub fn check_content(
        &self,
        name: SetName,
    ) -> Result<std::result::Result<(), crate::content::ContentProblem>> {
        let set = self.set(name)?;
        crate::content::check_set(&self.device.file, self.path(), &set)
    }

    /// The raw attribute word of a partition.
    pub fn attributes(&self, p: &Partition) -> u64 {
        self.entry(p).attribute_bits
    }

    /// All boot-relevant flags as one value.
    pub fn state(&self) -> DiskState {
        let flags = |i: usize| {
            self.layout
                .sets
                .get(i)
                .map(|s| attrs::decode(self.entry(&s.boot).attribute_bits))
        };
        DiskState {
            a: flags(0).unwrap_or_default(),
            b: flags(1),
            ever_booted: self
                .private()
                .is_some_and(|p| attrs::ever_booted(self.entry(p).attribute_bits)),
        }
    }

    /// The device node of a partition for block devices (`/dev/sda` → `/dev/sda3`,
    /// `/dev/nvme0n1` → `/dev/nvme0n1p3`); `None` for image files.
    pub fn partition_path(&self, p: &Partition) -> Option<PathBuf> {
        (self.device.kind == DiskKind::BlockDevice).then(|| partition_node(self.path(), p.number))
    }

    /// The writes that would change the flags on disk to `new` (nothing else changes).
    pub fn plan_state(&self, new: &DiskState) -> Result<WritePlan> {
        let path = self.path();
        let mut changes = Vec::new();
        for (name, flags) in new.sets() {
            let set = self.set(name)?;
            let i = set.boot.number as usize - 1;
            changes.push((
                i,
                attrs::encode(self.table.entries()[i].attribute_bits, flags),
            ));
        }
        ensure!(
            new.b.is_some() == self.is_dual(),
            error::NoSuchSetSnafu { set: SetName::B }
        );
        match self.private() {
            Some(p) => {
                let i = p.number as usize - 1;
                changes.push((
                    i,
                    attrs::with_ever_booted(
                        self.table.entries()[i].attribute_bits,
                        new.ever_booted,
                    ),
                ));
            }
            None => ensure!(!new.ever_booted, error::NoPrivatePartitionSnafu { path }),
        }
        self.table
            .with_attributes(&changes)
            .write_plan(&self.table, path)
    }

    /// Applies a plan made by [`Disk::plan_state`] on this disk, then re-reads and checks the
    /// table: both copies valid and identical, and the flags equal to `expected`.
    pub fn apply_plan(&mut self, plan: &WritePlan, expected: &DiskState) -> Result<()> {
        tracing::info!(
            disk = %self.device.path.display(),
            bytes = plan.len_bytes(),
            first_copy = %match self.table.source {
                CopyKind::Primary => CopyKind::Backup,
                CopyKind::Backup => CopyKind::Primary,
            },
            "writing both GPT copies"
        );
        self.device.apply(plan)?;
        let path = self.device.path.clone();
        let table = gpt::read(
            &mut self.device.file,
            &path,
            self.sector_size,
            self.device.len,
        )?;
        let layout = layout(table.entries(), self.sector_size, &path)?;
        self.table = table;
        self.layout = layout;
        ensure!(
            self.table.is_clean() && self.state() == *expected,
            error::VerifyWriteSnafu { path }
        );
        Ok(())
    }

    /// Writes `new` flags durably (both copies, fsync'd), then re-reads to verify.
    pub fn write_state(&mut self, new: &DiskState) -> Result<()> {
        let plan = self.plan_state(new)?;
        self.apply_plan(&plan, new)
    }
}

/// `/dev/sda` + 3 → `/dev/sda3`; `/dev/nvme0n1` + 3 → `/dev/nvme0n1p3`.
pub(crate) fn partition_node(disk: &Path, number: u32) -> PathBuf {
    let name = disk.as_os_str().to_string_lossy();
    if name.ends_with(|c: char| c.is_ascii_digit()) {
        PathBuf::from(format!("{name}p{number}"))
    } else {
        PathBuf::from(format!("{name}{number}"))
    }
}
