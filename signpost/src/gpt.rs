//! The GPT edge: reading both table copies with our own validation, and writing them in a
//! crash-safe order.
//!
//! # Reading: "primary if valid, else backup"
//!
//! A copy (header sector + partition entry array) is *valid* when its header has the
//! `EFI PART` signature, revision 1.0, a 92-byte header, a correct header CRC32, records its own
//! location (`my_lba`), uses 128-byte entries whose array lies inside the disk, and the entry
//! array matches the header's entry-array CRC32. [`read`] uses the primary (sector 1) if it is
//! valid, else the backup (last sector). This is the rule GRUB's `gpt` module and `gptman` apply,
//! and it is the only rule the boot selector ([`crate::boot_select`]) uses.
//!
//! # Writing: why an interruption at any byte is safe
//!
//! Let `T0` be the table the reader sees before a change and `T1` the new table. A change
//! rewrites both copies with [`WritePlan`]:
//!
//! 1. First the copy the reader does **not** currently use, then `fsync`; then the copy it does
//!    use, then `fsync`. Normally the primary is valid, so this is *backup first*, then primary
//!    (GRUB's order too). If the primary was invalid (we read the backup), it is *primary first*.
//! 2. Within one copy the header sector is written before the entry array.
//!
//! Why this is enough. A CRC32 over the header and one over the entry array make a copy valid
//! only if its header and entries belong together, so a partially written copy is either
//! invalid or one of the complete tables.
//!
//! - While the first copy is being written, the reader keeps using the other copy, which is
//!   untouched and still `T0`. (If the first copy is the backup, the primary is valid `T0` and
//!   wins. If it is the primary, it was invalid and stays invalid — a torn header fails its CRC,
//!   a new header over old entries fails the entry CRC — until it is completely `T1`, and from
//!   then on `T1` is read.)
//! - After the first `fsync` the first copy is `T1` on stable storage. While the second copy is
//!   being written it is still `T0` (nothing written yet), torn (invalid, so the reader uses the
//!   first copy, `T1`), or complete `T1`.
//!
//! So at every byte of the sequence the reader sees exactly `T0` or `T1`, never a mixture, and
//! the boot selector picks a set bootable in `T0` or in `T1`: never none (the transitions refuse
//! to produce a table with nothing bootable), never a half-written set (the set being written
//! is not bootable in `T0`, and only becomes bootable in `T1` after its images were written and
//! verified). Both copies are on stable storage when a change returns. The same holds if the
//! device persists the writes between two flushes in any order, since validity is decided per
//! copy by the CRCs, not by the order of sectors.
//!
//! Which rule matters where: when both copies are valid, either copy could go first. When the
//! primary is invalid, writing the backup first would be fatal: a torn backup plus an invalid
//! primary leaves no table at all (the test `write_order` and the replay test catch exactly
//! this). Header-before-entries guards a subtler case: a damaged primary whose *header* is
//! intact but describes an older entry array; writing its entries first could make that old
//! header valid again for a moment, reviving a table older than `T0`. With the header first, a
//! copy that validates after a partial write can only be `T1`. (Our own interrupted writes never
//! leave such an older header: a primary torn by us has `T1`'s header over a partial array, and
//! the backup, written first, already holds `T1`; so even a device that reorders writes within an
//! epoch could only revive the table the backup holds, which is `T0` of the next change.)
//!
//! The argument relies on the reader looking for the backup at the last sector, so a table whose
//! header records the backup elsewhere (a grown disk) is refused for writing
//! ([`crate::Error::BackupNotAtEnd`]). The test `tests/durability.rs` replays every
//! transition's write sequence cut at every 512-byte boundary, also from a corrupt primary, and
//! runs the boot selector on each result.

use crate::error::{self, Result};
use gptman::{GPTHeader, GPTPartitionEntry};
use serde::Serialize;
use snafu::{ResultExt, ensure};
use std::fmt;
use std::io::{Cursor, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Size of a GPT partition entry this crate accepts.
pub const ENTRY_SIZE: u32 = 128;
/// Upper bound on the number of entries we accept (protects memory on garbage headers).
pub const MAX_ENTRIES: u32 = 16384;
const SIGNATURE: &[u8; 8] = b"EFI PART";

/// Which copy of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CopyKind {
    /// Header at sector 1.
    Primary,
    /// Header at the last sector.
    Backup,
}

impl fmt::Display for CopyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CopyKind::Primary => "primary",
            CopyKind::Backup => "backup",
        })
    }
}

/// Why a table copy is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum CopyProblem {
    /// No "EFI PART" signature.
    NoSignature,
    /// Revision is not 1.0.
    BadRevision,
    /// Header size is not 92.
    BadHeaderSize,
    /// Header CRC32 mismatch.
    HeaderCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
    /// The header records another location for itself.
    WrongLocation {
        /// `my_lba` in the header.
        recorded: u64,
        /// Where it was read.
        actual: u64,
    },
    /// Entry size is not 128 or the count is out of range.
    BadEntryArray {
        /// Entry size.
        entry_size: u32,
        /// Entry count.
        entries: u32,
    },
    /// Entry array lies outside the disk or over the header.
    EntriesOutOfRange {
        /// First sector of the array.
        lba: u64,
    },
    /// Entry array CRC32 mismatch.
    EntriesCrc {
        /// CRC in the header.
        stored: u32,
        /// CRC computed.
        computed: u32,
    },
    /// Valid on its own but holds a different table than the primary (stale backup).
    DiffersFromPrimary,
    /// The disk is too small to hold this copy.
    TooSmall,
}

impl fmt::Display for CopyProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CopyProblem::NoSignature => write!(f, "no \"EFI PART\" signature"),
            CopyProblem::BadRevision => write!(f, "unsupported revision"),
            CopyProblem::BadHeaderSize => write!(f, "header size is not 92"),
            CopyProblem::HeaderCrc { stored, computed } => {
                write!(
                    f,
                    "header CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x})"
                )
            }
            CopyProblem::WrongLocation { recorded, actual } => {
                write!(
                    f,
                    "header records itself at sector {recorded} but was read at {actual}"
                )
            }
            CopyProblem::BadEntryArray {
                entry_size,
                entries,
            } => {
                write!(
                    f,
                    "unsupported entry array ({entries} entries of {entry_size} bytes)"
                )
            }
            CopyProblem::EntriesOutOfRange { lba } => {
                write!(f, "entry array at sector {lba} lies outside the disk")
            }
            CopyProblem::EntriesCrc { stored, computed } => write!(
                f,
                "partition entry array CRC32 mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ),
            CopyProblem::DiffersFromPrimary => {
                write!(f, "holds a different table than the primary")
            }
            CopyProblem::TooSmall => write!(f, "disk too small"),
        }
    }
}

/// A used partition entry, as named in a [`TableProblem`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct EntryRef {
    /// Partition number (1-based index in the entry array).
    pub number: u32,
    /// Its label (GPT name).
    pub label: String,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
}

impl EntryRef {
    fn new(index: usize, e: &GPTPartitionEntry) -> EntryRef {
        EntryRef {
            number: u32::try_from(index).unwrap_or(u32::MAX).saturating_add(1),
            label: e.partition_name.as_str().to_string(),
            first_lba: e.starting_lba,
            last_lba: e.ending_lba,
        }
    }
}

impl fmt::Display for EntryRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "partition {} ({:?}, sectors {}..={})",
            self.number, self.label, self.first_lba, self.last_lba
        )
    }
}

/// Why a table whose CRCs are valid is still refused: its header or its entries describe
/// partitions that cannot be right for this disk. The reader checks these on the copy it uses,
/// so nothing downstream (flags, offsets, image writes) ever sees such a table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum TableProblem {
    /// The header records the backup table beyond the end of the disk: the disk (or image file)
    /// is shorter than the one the table was made for.
    Truncated {
        /// Where the header records the backup header.
        backup_lba: u64,
        /// The disk's last sector.
        disk_last: u64,
    },
    /// The header's usable range is inverted, covers the GPT structures, or lies beyond the
    /// disk.
    UsableRange {
        /// First usable sector in the header.
        first_usable: u64,
        /// Last usable sector in the header.
        last_usable: u64,
        /// The disk's last sector.
        disk_last: u64,
    },
    /// A used entry ends before it starts.
    Reversed {
        /// The entry.
        entry: EntryRef,
    },
    /// A used entry lies (partly) outside the usable range or the disk.
    OutOfRange {
        /// The entry.
        entry: EntryRef,
        /// First usable sector.
        first_usable: u64,
        /// Last usable sector.
        last_usable: u64,
        /// The disk's last sector.
        disk_last: u64,
    },
    /// Two used entries share sectors.
    Overlap {
        /// The entry with the lower number.
        first: EntryRef,
        /// The other entry.
        second: EntryRef,
    },
}

impl fmt::Display for TableProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TableProblem::Truncated {
                backup_lba,
                disk_last,
            } => write!(
                f,
                "the table records its backup header at sector {backup_lba}, but the disk ends at \
                 sector {disk_last}: the disk or image is truncated"
            ),
            TableProblem::UsableRange {
                first_usable,
                last_usable,
                disk_last,
            } => write!(
                f,
                "the header's usable sectors {first_usable}..={last_usable} do not fit between \
                 the GPT structures of a disk whose last sector is {disk_last}"
            ),
            TableProblem::Reversed { entry } => write!(f, "{entry} ends before it starts"),
            TableProblem::OutOfRange {
                entry,
                first_usable,
                last_usable,
                disk_last,
            } => {
                if entry.last_lba > *disk_last {
                    write!(
                        f,
                        "{entry} extends beyond the end of the disk (last sector {disk_last}): \
                         the disk or image is truncated or the entry is corrupt"
                    )
                } else {
                    write!(
                        f,
                        "{entry} lies outside the usable sectors {first_usable}..={last_usable}"
                    )
                }
            }
            TableProblem::Overlap { first, second } => {
                write!(f, "{second} overlaps {first}")
            }
        }
    }
}

/// Checks a table copy that passed its CRCs: the usable range fits the disk and this copy's own
/// structures, the backup is not recorded beyond the disk, and every used entry lies inside the
/// usable range with `start <= end`, and no two used entries overlap.
///
/// `header` is the copy's header as read at sector `my_lba`; `disk_len` is the actual size of
/// the file or device.
pub fn check_table(
    header: &GPTHeader,
    entries: &[GPTPartitionEntry],
    sector_size: u64,
    disk_len: u64,
) -> std::result::Result<(), TableProblem> {
    let disk_last = (disk_len / sector_size.max(1)).saturating_sub(1);
    // The other copy's location, as recorded by this one (in the backup copy it is sector 1).
    let alternate = header.backup_lba;
    if alternate > disk_last {
        return Err(TableProblem::Truncated {
            backup_lba: alternate,
            disk_last,
        });
    }
    let (first_usable, last_usable) = (header.first_usable_lba, header.last_usable_lba);
    let array_sectors = (u64::from(header.number_of_partition_entries)
        * u64::from(header.size_of_partition_entry))
    .div_ceil(sector_size.max(1));
    let array_first = header.partition_entry_lba;
    let array_last = array_first.saturating_add(array_sectors).saturating_sub(1);
    // The usable range must avoid sector 0 (protective MBR), sector 1 (primary header), the
    // last sector (backup header), and this copy's own header and entry array.
    let touches = |a: u64, b: u64| a <= last_usable && first_usable <= b;
    if !(first_usable >= 2
        && first_usable <= last_usable
        && last_usable < disk_last
        && !touches(header.primary_lba, header.primary_lba)
        && !touches(array_first, array_last))
    {
        return Err(TableProblem::UsableRange {
            first_usable,
            last_usable,
            disk_last,
        });
    }
    let mut used: Vec<(usize, &GPTPartitionEntry)> = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if !e.is_used() {
            continue;
        }
        if e.starting_lba > e.ending_lba {
            return Err(TableProblem::Reversed {
                entry: EntryRef::new(i, e),
            });
        }
        if e.starting_lba < first_usable || e.ending_lba > last_usable {
            return Err(TableProblem::OutOfRange {
                entry: EntryRef::new(i, e),
                first_usable,
                last_usable,
                disk_last,
            });
        }
        used.push((i, e));
    }
    used.sort_by_key(|(i, e)| (e.starting_lba, *i));
    // Sorted by start: an entry overlaps an earlier one iff it starts at or before the furthest
    // end seen so far.
    let mut furthest: Option<(usize, &GPTPartitionEntry)> = None;
    for &(i, e) in &used {
        if let Some((j, f)) = furthest
            && e.starting_lba <= f.ending_lba
        {
            let (a, b) = if j < i {
                ((j, f), (i, e))
            } else {
                ((i, e), (j, f))
            };
            return Err(TableProblem::Overlap {
                first: EntryRef::new(a.0, a.1),
                second: EntryRef::new(b.0, b.1),
            });
        }
        if furthest.is_none_or(|(_, f)| e.ending_lba > f.ending_lba) {
            furthest = Some((i, e));
        }
    }
    Ok(())
}

/// A table read from a disk: the header (in primary form) and the entry array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// Logical sector size in bytes (512 or 4096).
    pub sector_size: u64,
    /// Disk length in bytes.
    pub disk_len: u64,
    /// Which copy was used.
    pub source: CopyKind,
    /// Problem with the primary, if any.
    pub primary_problem: Option<CopyProblem>,
    /// Problem with the backup, if any.
    pub backup_problem: Option<CopyProblem>,
    header: GPTHeader,
    entries: Vec<GPTPartitionEntry>,
}

/// One step of a [`WritePlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteStep {
    /// Write `bytes` at byte `offset` of the whole disk.
    Write {
        /// Byte offset.
        offset: u64,
        /// Data.
        bytes: Vec<u8>,
    },
    /// Flush everything written so far to stable storage (fsync).
    Sync,
}

/// The ordered writes that replace a disk's table (see the module docs for the order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WritePlan {
    /// Steps in order.
    pub steps: Vec<WriteStep>,
}

impl WritePlan {
    /// Total bytes written.
    pub fn len_bytes(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match s {
                WriteStep::Write { bytes, .. } => bytes.len() as u64,
                WriteStep::Sync => 0,
            })
            .sum()
    }

    /// Applies the plan to an in-memory image, stopping after `limit` bytes of writes (for
    /// crash simulation). Returns the number of bytes written.
    pub fn apply_prefix(&self, image: &mut [u8], limit: u64) -> u64 {
        let mut written = 0u64;
        for step in &self.steps {
            if let WriteStep::Write { offset, bytes } = step {
                let room = limit.saturating_sub(written).min(bytes.len() as u64) as usize;
                let start = usize::try_from(*offset).expect("plan offset fits in memory");
                image[start..start.saturating_add(room)].copy_from_slice(&bytes[..room]);
                written += room as u64;
                if room < bytes.len() {
                    break;
                }
            }
        }
        written
    }
}

/// A `Write + Seek` sink that records what gptman writes, so we control where and in which
/// order the bytes go to disk.
#[derive(Default)]
struct Recorder {
    pos: u64,
    /// Disk length, for `SeekFrom::End`.
    len: u64,
    segments: Vec<(u64, Vec<u8>)>,
}

impl Write for Recorder {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.segments.last_mut() {
            Some((off, bytes)) if *off + bytes.len() as u64 == self.pos => {
                bytes.extend_from_slice(buf)
            }
            _ => self.segments.push((self.pos, buf.to_vec())),
        }
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Recorder {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        self.pos = match pos {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self
                .len
                .checked_add_signed(d)
                .ok_or_else(|| std::io::Error::other("seek before start"))?,
            SeekFrom::Current(d) => self
                .pos
                .checked_add_signed(d)
                .ok_or_else(|| std::io::Error::other("seek before start"))?,
        };
        Ok(self.pos)
    }
}

fn read_exact_at<R: Read + Seek + ?Sized>(
    r: &mut R,
    offset: u64,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    r.seek(SeekFrom::Start(offset))?;
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Whether the sector at `lba` starts with the GPT signature.
fn has_signature<R: Read + Seek + ?Sized>(r: &mut R, offset: u64) -> std::io::Result<bool> {
    Ok(read_exact_at(r, offset, 8)? == SIGNATURE)
}

/// Reads and validates one copy (header at sector `lba`) on its own: signature, header CRC,
/// location, entry array placement and CRC. I/O errors are returned as `Err`, validation
/// problems as `Ok(Err(problem))`. [`read`] picks a copy with this and then checks the chosen
/// one with [`check_table`]; tests use it to look at each copy separately.
pub fn read_copy<R: Read + Seek + ?Sized>(
    r: &mut R,
    sector_size: u64,
    lba: u64,
    disk_len: u64,
) -> std::io::Result<std::result::Result<(GPTHeader, Vec<GPTPartitionEntry>), CopyProblem>> {
    let sectors = disk_len / sector_size;
    if lba >= sectors || sectors < 3 {
        return Ok(Err(CopyProblem::TooSmall));
    }
    let header_start = lba
        .checked_mul(sector_size)
        .ok_or_else(|| std::io::Error::other("sector offset overflows"))?;
    let sector = read_exact_at(r, header_start, sector_size as usize)?;
    let header = match GPTHeader::read_from(&mut Cursor::new(&sector)) {
        Ok(h) => h,
        Err(gptman::Error::InvalidSignature) => return Ok(Err(CopyProblem::NoSignature)),
        Err(gptman::Error::InvalidRevision) => return Ok(Err(CopyProblem::BadRevision)),
        Err(gptman::Error::InvalidHeaderSize) => return Ok(Err(CopyProblem::BadHeaderSize)),
        Err(gptman::Error::InvalidChecksum(stored, computed)) => {
            return Ok(Err(CopyProblem::HeaderCrc { stored, computed }));
        }
        Err(e) => return Err(std::io::Error::other(e)),
    };
    if header.primary_lba != lba {
        return Ok(Err(CopyProblem::WrongLocation {
            recorded: header.primary_lba,
            actual: lba,
        }));
    }
    if header.size_of_partition_entry != ENTRY_SIZE
        || header.number_of_partition_entries == 0
        || header.number_of_partition_entries > MAX_ENTRIES
    {
        return Ok(Err(CopyProblem::BadEntryArray {
            entry_size: header.size_of_partition_entry,
            entries: header.number_of_partition_entries,
        }));
    }
    let array_len = u64::from(header.number_of_partition_entries) * u64::from(ENTRY_SIZE);
    // Saturating: an offset that does not fit in 64 bits is past the end of any disk.
    let array_start = header.partition_entry_lba.saturating_mul(sector_size);
    let array_end = array_start.saturating_add(array_len);
    let overlaps_header =
        array_start < header_start.saturating_add(sector_size) && header_start < array_end;
    if header.partition_entry_lba < 2 || array_end > disk_len || overlaps_header {
        return Ok(Err(CopyProblem::EntriesOutOfRange {
            lba: header.partition_entry_lba,
        }));
    }
    let array = read_exact_at(r, array_start, array_len as usize)?;
    let entries = match header.read_partitions(
        &mut ArrayAt {
            base: array_start,
            data: &array,
            pos: array_start,
        },
        sector_size,
    ) {
        Ok(e) => e,
        Err(gptman::Error::InvalidPartitionEntryArrayChecksum(stored, computed)) => {
            return Ok(Err(CopyProblem::EntriesCrc { stored, computed }));
        }
        Err(e) => return Err(std::io::Error::other(e)),
    };
    Ok(Ok((header, entries)))
}

/// A byte buffer that lives at an absolute disk offset (for gptman's seeking reads).
struct ArrayAt<'a> {
    base: u64,
    data: &'a [u8],
    pos: u64,
}

impl Read for ArrayAt<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // gptman reads `size_of::<GPTPartitionEntry>()` bytes per entry (more than the 128 it
        // decodes), so reads past the array's end yield zeros instead of EOF.
        let pos = self.pos.saturating_sub(self.base) as usize;
        let n = buf.len().min(self.data.len().saturating_sub(pos));
        buf[..n].copy_from_slice(&self.data[pos..pos + n]);
        buf[n..].fill(0);
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
}

impl Seek for ArrayAt<'_> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        match pos {
            SeekFrom::Start(p) if p >= self.base => {
                self.pos = p;
                Ok(p)
            }
            _ => Err(std::io::Error::other("seek outside the entry array")),
        }
    }
}

/// Finds the sector size by looking for a GPT signature at 512 then 4096 bytes (primary) or in
/// the last 512/4096-byte sector (backup). `None` if there is no GPT.
pub fn probe_sector_size<R: Read + Seek + ?Sized>(
    r: &mut R,
    disk_len: u64,
) -> std::io::Result<Option<u64>> {
    for ss in [512u64, 4096] {
        if disk_len < 3 * ss {
            continue;
        }
        if has_signature(r, ss)? || has_signature(r, (disk_len / ss - 1) * ss)? {
            return Ok(Some(ss));
        }
    }
    Ok(None)
}

/// The table-level fields that must agree between the two copies (everything but locations).
fn same_table(
    a: &GPTHeader,
    ea: &[GPTPartitionEntry],
    b: &GPTHeader,
    eb: &[GPTPartitionEntry],
) -> bool {
    a.first_usable_lba == b.first_usable_lba
        && a.last_usable_lba == b.last_usable_lba
        && a.disk_guid == b.disk_guid
        && a.number_of_partition_entries == b.number_of_partition_entries
        && a.partition_entry_array_crc32 == b.partition_entry_array_crc32
        && ea == eb
}

/// Reads the table of a disk of `disk_len` bytes with `sector_size`-byte sectors: the primary if
/// valid, else the backup. `path` is only used in errors.
pub fn read<R: Read + Seek + ?Sized>(
    r: &mut R,
    path: &Path,
    sector_size: u64,
    disk_len: u64,
) -> Result<Table> {
    ensure!(disk_len >= 3 * sector_size, error::NotGptSnafu { path });
    let last = disk_len / sector_size - 1;
    let primary = read_copy(r, sector_size, 1, disk_len).context(error::ReadTableSnafu { path })?;
    let backup =
        read_copy(r, sector_size, last, disk_len).context(error::ReadTableSnafu { path })?;
    // The copy the reader uses must also describe a sane table for this disk.
    let checked = |copy: CopyKind, h: &GPTHeader, e: &[GPTPartitionEntry]| {
        check_table(h, e, sector_size, disk_len).map_err(|problem| {
            error::BadPartitionTableSnafu {
                path,
                copy,
                problem,
            }
            .build()
        })
    };
    match (&primary, &backup) {
        (Ok((h, e)), _) => checked(CopyKind::Primary, h, e)?,
        (Err(_), Ok((bh, be))) => checked(CopyKind::Backup, bh, be)?,
        _ => {}
    }
    let (source, header, entries, primary_problem, backup_problem) = match (primary, backup) {
        (Ok((h, e)), Ok((bh, be))) => {
            let stale = (!same_table(&h, &e, &bh, &be)).then_some(CopyProblem::DiffersFromPrimary);
            (CopyKind::Primary, h, e, None, stale)
        }
        (Ok((h, e)), Err(bp)) => (CopyKind::Primary, h, e, None, Some(bp)),
        (Err(pp), Ok((bh, be))) => {
            // Put the backup header in primary form.
            let mut h = bh.clone();
            h.primary_lba = 1;
            h.backup_lba = last;
            h.partition_entry_lba = 2;
            (CopyKind::Backup, h, be, Some(pp), None)
        }
        (Err(CopyProblem::NoSignature), Err(CopyProblem::NoSignature)) => {
            return error::NotGptSnafu { path }.fail();
        }
        (Err(primary), Err(backup)) => {
            return error::BothCopiesInvalidSnafu {
                path,
                primary,
                backup,
            }
            .fail();
        }
    };
    Ok(Table {
        sector_size,
        disk_len,
        source,
        primary_problem,
        backup_problem,
        header,
        entries,
    })
}

impl Table {
    /// The partition entries (index 0 = partition 1).
    pub fn entries(&self) -> &[GPTPartitionEntry] {
        &self.entries
    }

    /// The header in primary form.
    pub fn header(&self) -> &GPTHeader {
        &self.header
    }

    /// Last sector of the disk.
    pub fn last_lba(&self) -> u64 {
        self.disk_len / self.sector_size - 1
    }

    /// Disk GUID in text form.
    pub fn disk_guid(&self) -> String {
        crate::guids::to_string(&self.header.disk_guid)
    }

    /// Whether both copies are valid and identical.
    pub fn is_clean(&self) -> bool {
        self.primary_problem.is_none() && self.backup_problem.is_none()
    }

    /// A copy of this table with each entry's attribute word replaced (index, new word).
    pub fn with_attributes(&self, changes: &[(usize, u64)]) -> Table {
        let mut t = self.clone();
        for &(i, attrs) in changes {
            t.entries[i].attribute_bits = attrs;
        }
        t
    }

    /// The ordered writes that put this table on a disk whose table was read as `current`
    /// (see the module docs). Both copies get fresh CRCs; after a successful write both are
    /// valid and identical.
    pub fn write_plan(&self, current: &Table, path: &Path) -> Result<WritePlan> {
        let ss = self.sector_size;
        let last = self.last_lba();
        ensure!(
            self.header.backup_lba == last,
            error::BackupNotAtEndSnafu {
                path,
                alternate_lba: self.header.backup_lba,
                last_lba: last
            }
        );
        let array_sectors = (u64::from(self.header.number_of_partition_entries)
            * u64::from(ENTRY_SIZE))
        .div_ceil(ss);
        let mut primary = self.header.clone();
        primary.primary_lba = 1;
        primary.backup_lba = last;
        let mut backup = self.header.clone();
        backup.primary_lba = last;
        backup.backup_lba = 1;
        backup.partition_entry_lba = last.checked_sub(array_sectors).ok_or_else(|| {
            invalid(
                path,
                "the disk is too small for the entry arrays".to_string(),
            )
        })?;
        ensure!(
            backup.partition_entry_lba > self.header.last_usable_lba
                && primary
                    .partition_entry_lba
                    .checked_add(array_sectors)
                    .is_some_and(|end| end <= self.header.first_usable_lba),
            error::InvalidLayoutSnafu {
                path,
                reason: "the entry arrays overlap the usable area".to_string()
            }
        );
        let primary_steps = copy_steps(&mut primary, ss, &self.entries, path)?;
        let backup_steps = copy_steps(&mut backup, ss, &self.entries, path)?;
        let (first, second) = match current.source {
            CopyKind::Primary => (backup_steps, primary_steps),
            CopyKind::Backup => (primary_steps, backup_steps),
        };
        let mut steps = first;
        steps.push(WriteStep::Sync);
        steps.extend(second);
        steps.push(WriteStep::Sync);
        Ok(WritePlan { steps })
    }
}

/// Header sector (header + zero padding) then entry array of one copy.
fn copy_steps(
    header: &mut GPTHeader,
    ss: u64,
    entries: &[GPTPartitionEntry],
    path: &Path,
) -> Result<Vec<WriteStep>> {
    let mut rec = Recorder::default();
    header
        .write_into(&mut rec, ss, entries)
        .context(error::EncodeTableSnafu { path })?;
    let header_offset = header
        .primary_lba
        .checked_mul(ss)
        .ok_or_else(|| invalid(path, "the header offset overflows".to_string()))?;
    let mut steps = Vec::new();
    let mut array = None;
    for (offset, mut bytes) in rec.segments {
        if offset == header_offset {
            bytes.resize(ss as usize, 0);
            steps.insert(0, WriteStep::Write { offset, bytes });
        } else {
            array = Some(WriteStep::Write { offset, bytes });
        }
    }
    steps.extend(array);
    Ok(steps)
}

/// A partition for [`write_new_table`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartition {
    /// Partition type GUID, on-disk bytes (see [`crate::guids::to_bytes`]).
    pub type_guid: [u8; 16],
    /// Label (GPT name, at most 36 UTF-16 units).
    pub label: String,
    /// First sector.
    pub first_lba: u64,
    /// Last sector (inclusive).
    pub last_lba: u64,
    /// Attribute word.
    pub attributes: u64,
    /// Unique partition GUID, on-disk bytes.
    pub unique_guid: [u8; 16],
}

/// Creates a fresh GPT (protective MBR, primary and backup tables with 128 entries) on the
/// existing file or device at `path`, whose size defines the disk. Partitions get numbers
/// 1, 2, … in the order given. Everything is flushed to stable storage before returning.
pub fn write_new_table(
    path: &Path,
    sector_size: u64,
    disk_guid: [u8; 16],
    parts: &[NewPartition],
) -> Result<()> {
    ensure!(
        sector_size == 512 || sector_size == 4096,
        error::InvalidLayoutSnafu {
            path,
            reason: format!("sector size {sector_size} is not 512 or 4096")
        }
    );
    ensure!(
        parts.len() <= 128,
        error::InvalidLayoutSnafu {
            path,
            reason: format!("{} partitions (at most 128)", parts.len())
        }
    );
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .context(error::OpenDiskSnafu { path })?;
    let mut gpt = gptman::GPT::new_from(&mut file, sector_size, disk_guid)
        .map_err(|e| invalid(path, format!("cannot make a table for this disk: {e}")))?;
    for (i, p) in parts.iter().enumerate() {
        ensure!(
            p.label.encode_utf16().count() <= 36,
            error::InvalidLayoutSnafu {
                path,
                reason: format!("label {:?} is longer than 36 UTF-16 units", p.label)
            }
        );
        ensure!(
            p.type_guid != [0; 16],
            error::InvalidLayoutSnafu {
                path,
                reason: format!("partition {} has a zero type GUID", i + 1)
            }
        );
        ensure!(
            p.first_lba >= gpt.header.first_usable_lba
                && p.last_lba <= gpt.header.last_usable_lba
                && p.first_lba <= p.last_lba,
            error::InvalidLayoutSnafu {
                path,
                reason: format!(
                    "partition {} ({}) spans sectors {}..={}, outside the usable {}..={}",
                    i + 1,
                    p.label,
                    p.first_lba,
                    p.last_lba,
                    gpt.header.first_usable_lba,
                    gpt.header.last_usable_lba
                )
            }
        );
        gpt[i as u32 + 1] = GPTPartitionEntry {
            partition_type_guid: p.type_guid,
            unique_partition_guid: p.unique_guid,
            starting_lba: p.first_lba,
            ending_lba: p.last_lba,
            attribute_bits: p.attributes,
            partition_name: p.label.as_str().into(),
        };
    }
    let len = file
        .seek(SeekFrom::End(0))
        .context(error::ReadTableSnafu { path })?;
    let mut rec = Recorder {
        len,
        ..Recorder::default()
    };
    gpt.write_into(&mut rec)
        .map_err(|e| invalid(path, e.to_string()))?;
    gptman::GPT::write_protective_mbr_into(&mut rec, sector_size)
        .map_err(|e| invalid(path, e.to_string()))?;
    for (offset, bytes) in &rec.segments {
        file.seek(SeekFrom::Start(*offset))
            .context(error::WriteTableSnafu {
                path,
                offset: *offset,
            })?;
        file.write_all(bytes).context(error::WriteTableSnafu {
            path,
            offset: *offset,
        })?;
    }
    file.sync_all().context(error::SyncDiskSnafu { path })?;
    Ok(())
}

fn invalid(path: &Path, reason: String) -> error::Error {
    error::InvalidLayoutSnafu { path, reason }.build()
}

#[cfg(test)]
mod test {
    use super::*;

    fn header(first: u64, last: u64, disk_last: u64) -> GPTHeader {
        GPTHeader {
            signature: *SIGNATURE,
            revision: [0, 0, 1, 0],
            header_size: 92,
            crc32_checksum: 0,
            reserved: [0; 4],
            primary_lba: 1,
            backup_lba: disk_last,
            first_usable_lba: first,
            last_usable_lba: last,
            disk_guid: [1; 16],
            partition_entry_lba: 2,
            number_of_partition_entries: 128,
            size_of_partition_entry: 128,
            partition_entry_array_crc32: 0,
        }
    }

    fn entry(label: &str, first: u64, last: u64) -> GPTPartitionEntry {
        GPTPartitionEntry {
            partition_type_guid: [7; 16],
            unique_partition_guid: [9; 16],
            starting_lba: first,
            ending_lba: last,
            attribute_bits: 0,
            partition_name: label.into(),
        }
    }

    /// 100 sectors of 512 bytes: usable 34..=66, backup at 99.
    fn check(entries: &[GPTPartitionEntry]) -> std::result::Result<(), TableProblem> {
        check_table(&header(34, 66, 99), entries, 512, 100 * 512)
    }

    #[test]
    fn adjacent_entries_and_unused_ones_are_fine() {
        let mut e = vec![entry("a", 34, 40), entry("b", 41, 66)];
        e.push(GPTPartitionEntry::empty());
        // An unused entry's range is ignored, whatever it says.
        let mut unused = entry("x", 0, u64::MAX);
        unused.partition_type_guid = [0; 16];
        e.push(unused);
        assert_eq!(check(&e), Ok(()));
        assert_eq!(check(&[]), Ok(()));
    }

    #[test]
    fn overlaps_name_both_partitions_lower_number_first() {
        for (a, b) in [
            ((34, 40), (40, 50)),
            ((34, 66), (40, 41)),
            ((50, 60), (34, 50)),
        ] {
            let e = [entry("one", a.0, a.1), entry("two", b.0, b.1)];
            match check(&e) {
                Err(TableProblem::Overlap { first, second }) => {
                    assert_eq!((first.number, second.number), (1, 2), "{a:?} {b:?}");
                    assert_eq!(first.label, "one");
                }
                other => panic!("{a:?} {b:?}: {other:?}"),
            }
        }
        // Far apart in the array, found through the sort.
        let mut e = vec![GPTPartitionEntry::empty(); 10];
        e[2] = entry("c", 50, 55);
        e[7] = entry("h", 40, 49);
        e[9] = entry("j", 55, 60);
        let err = check(&e).unwrap_err();
        assert_eq!(
            err.to_string(),
            "partition 10 (\"j\", sectors 55..=60) overlaps partition 3 (\"c\", sectors 50..=55)"
        );
    }

    #[test]
    fn out_of_range_reversed_and_huge() {
        assert!(matches!(
            check(&[entry("a", 33, 40)]),
            Err(TableProblem::OutOfRange { .. })
        ));
        assert!(matches!(
            check(&[entry("a", 40, 67)]),
            Err(TableProblem::OutOfRange { .. })
        ));
        assert!(matches!(
            check(&[entry("a", 41, 40)]),
            Err(TableProblem::Reversed { .. })
        ));
        let huge = check(&[entry("a", (1 << 55) + 34, (1 << 55) + 40)]).unwrap_err();
        assert!(
            huge.to_string()
                .contains("extends beyond the end of the disk"),
            "{huge}"
        );
        assert!(matches!(
            check(&[entry("a", u64::MAX, u64::MAX)]),
            Err(TableProblem::OutOfRange { .. })
        ));
    }

    #[test]
    fn header_ranges() {
        let bad = |h: GPTHeader| check_table(&h, &[], 512, 100 * 512).unwrap_err();
        // Backup recorded past the end: truncated.
        let mut h = header(34, 66, 99);
        h.backup_lba = 200;
        assert_eq!(
            bad(h),
            TableProblem::Truncated {
                backup_lba: 200,
                disk_last: 99
            }
        );
        // Usable range over the entry array, the backup header, inverted, or past the disk.
        for (first, last) in [(33, 66), (34, 99), (50, 40), (34, u64::MAX), (0, 66)] {
            assert!(
                matches!(
                    bad(header(first, last, 99)),
                    TableProblem::UsableRange { .. }
                ),
                "{first}..={last}"
            );
        }
        // The backup copy's own header and array (at the end) must not be usable either.
        let mut h = header(34, 90, 99);
        h.primary_lba = 99;
        h.backup_lba = 1;
        h.partition_entry_lba = 67;
        assert!(matches!(bad(h), TableProblem::UsableRange { .. }));
    }
}
