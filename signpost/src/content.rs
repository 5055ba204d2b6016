//! Does a set hold something bootable? A cheap look at the start of its partitions, used to
//! refuse transitions that would make a never-written (or wiped) set bootable.
//!
//! A set "holds something bootable" when:
//! - its BOOT partition starts with a filesystem superblock (ext2/3/4 magic `0xEF53` at byte
//!   1080, or erofs magic `0xE0F5E1E2` at byte 1024; Bottlerocket's BOOT is ext4), and
//! - its HASH partition starts with a dm-verity superblock (parsed by the `dm-verity` crate)
//!   that matches its ROOT: a known format, power-of-two block sizes, at least one data block,
//!   the data it covers fits in ROOT, and for 4 KiB blocks the whole tree fits in HASH.
//!
//! This does not verify the images (that is updog's job before `mark-inactive-valid`, and the
//! kernel's at boot); it catches the operator mistake of a wrong `--active` and a set that was
//! never written, which a blank (all-zero) partition gives away.

use crate::PartitionSet;
use crate::error::{self, Result};
use serde::Serialize;
use snafu::ResultExt;
use std::fmt;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// What is missing from a set that should be bootable.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "problem")]
pub enum ContentProblem {
    /// BOOT does not start with a filesystem superblock.
    NoBootFilesystem {
        /// BOOT partition number.
        number: u32,
        /// Whether its first 4 KiB are all zero (never written or wiped).
        blank: bool,
    },
    /// HASH does not start with a valid dm-verity superblock.
    NoVeritySuperblock {
        /// HASH partition number.
        number: u32,
        /// Why the superblock was refused.
        reason: String,
    },
    /// HASH's superblock does not match ROOT or does not fit HASH.
    VerityMismatch {
        /// HASH partition number.
        number: u32,
        /// What does not match.
        reason: String,
    },
}

impl fmt::Display for ContentProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ContentProblem::NoBootFilesystem { number, blank } => write!(
                f,
                "BOOT partition {number} has no filesystem{}",
                if *blank {
                    " (its start is all zeros)"
                } else {
                    ""
                }
            ),
            ContentProblem::NoVeritySuperblock { number, reason } => {
                write!(
                    f,
                    "HASH partition {number} has no dm-verity superblock ({reason})"
                )
            }
            ContentProblem::VerityMismatch { number, reason } => {
                write!(
                    f,
                    "HASH partition {number} does not match its ROOT: {reason}"
                )
            }
        }
    }
}

const PROBE: usize = 4096;

fn read_start(file: &File, path: &Path, number: u32, first_byte: u64, len: u64) -> Result<Vec<u8>> {
    let n = usize::try_from(len.min(PROBE as u64)).unwrap_or(PROBE);
    let mut buf = vec![0u8; n];
    file.read_exact_at(&mut buf, first_byte)
        .context(error::ReadPartitionSnafu {
            path,
            number,
            offset: first_byte,
        })?;
    Ok(buf)
}

/// Whether `start` (the first bytes of a partition) begins with a filesystem we boot from.
pub fn has_filesystem(start: &[u8]) -> bool {
    let ext = start.get(1080..1082) == Some(&[0x53, 0xef][..]);
    let erofs = start.get(1024..1028) == Some(&[0xe2, 0xe1, 0xf5, 0xe0][..]);
    ext || erofs
}

/// Checks a dm-verity superblock (the first bytes of HASH) against the sizes of ROOT and HASH.
pub fn check_verity(
    start: &[u8],
    hash_number: u32,
    root_len: u64,
    hash_len: u64,
) -> std::result::Result<(), ContentProblem> {
    let sb =
        dm_verity::parse_superblock(start).map_err(|e| ContentProblem::NoVeritySuperblock {
            number: hash_number,
            reason: e.to_string(),
        })?;
    let mismatch = |reason: String| ContentProblem::VerityMismatch {
        number: hash_number,
        reason,
    };
    if sb.hash_type > 1 {
        return Err(mismatch(format!("unknown hash type {}", sb.hash_type)));
    }
    let sizes_ok = |b: u32| b.is_power_of_two() && (512..=65536).contains(&b);
    if !sizes_ok(sb.data_block_size) || !sizes_ok(sb.hash_block_size) {
        return Err(mismatch(format!(
            "block sizes {}/{} are not powers of two between 512 and 65536",
            sb.data_block_size, sb.hash_block_size
        )));
    }
    if sb.data_blocks == 0 {
        return Err(mismatch("it covers no data blocks".to_string()));
    }
    let data_bytes = sb.data_blocks.checked_mul(u64::from(sb.data_block_size));
    if data_bytes.is_none_or(|d| d > root_len) {
        return Err(mismatch(format!(
            "it covers {} blocks of {} bytes, more than ROOT's {root_len} bytes",
            sb.data_blocks, sb.data_block_size
        )));
    }
    if sb.data_block_size == dm_verity::BLOCK_SIZE && sb.hash_block_size == dm_verity::BLOCK_SIZE {
        let tree = dm_verity::hash_device_bytes(sb.data_blocks);
        if tree > hash_len {
            return Err(mismatch(format!(
                "its tree needs {tree} bytes, more than HASH's {hash_len} bytes"
            )));
        }
    }
    Ok(())
}

/// Checks that `set` holds something bootable (see the module docs).
pub(crate) fn check_set(
    file: &File,
    path: &Path,
    set: &PartitionSet,
) -> Result<std::result::Result<(), ContentProblem>> {
    let boot = read_start(
        file,
        path,
        set.boot.number,
        set.boot.first_byte,
        set.boot.len_bytes,
    )?;
    if !has_filesystem(&boot) {
        return Ok(Err(ContentProblem::NoBootFilesystem {
            number: set.boot.number,
            blank: boot.iter().all(|b| *b == 0),
        }));
    }
    let hash = read_start(
        file,
        path,
        set.hash.number,
        set.hash.first_byte,
        set.hash.len_bytes,
    )?;
    Ok(check_verity(
        &hash,
        set.hash.number,
        set.root.len_bytes,
        set.hash.len_bytes,
    ))
}

#[cfg(test)]
mod test {
    use super::*;

    fn superblock(data_blocks: u64) -> Vec<u8> {
        dm_verity::superblock(&dm_verity::VerityParams {
            root_hash: [0; 32],
            salt: vec![1, 2, 3],
            data_blocks,
            data_block_size: 4096,
            hash_block_size: 4096,
            uuid: [5; 16],
        })
        .to_vec()
    }

    #[test]
    fn filesystems() {
        let mut b = vec![0u8; 4096];
        assert!(!has_filesystem(&b));
        b[1080] = 0x53;
        b[1081] = 0xef;
        assert!(has_filesystem(&b));
        let mut e = vec![0u8; 4096];
        e[1024..1028].copy_from_slice(&[0xe2, 0xe1, 0xf5, 0xe0]);
        assert!(has_filesystem(&e));
        assert!(!has_filesystem(&b[..1000]));
    }

    #[test]
    fn verity_superblock_must_match_root_and_fit_hash() {
        let mib = 1 << 20;
        assert_eq!(check_verity(&superblock(256), 3, mib, mib), Ok(()));
        // Blank: no superblock.
        assert!(matches!(
            check_verity(&[0u8; 4096], 3, mib, mib),
            Err(ContentProblem::NoVeritySuperblock { number: 3, .. })
        ));
        // Covers more than ROOT.
        let e = check_verity(&superblock(257), 3, mib, mib).unwrap_err();
        assert_eq!(
            e.to_string(),
            "HASH partition 3 does not match its ROOT: it covers 257 blocks of 4096 bytes, more than ROOT's 1048576 bytes"
        );
        // No data, a huge count (no overflow), and a tree larger than HASH.
        assert!(check_verity(&superblock(0), 3, mib, mib).is_err());
        assert!(check_verity(&superblock(u64::MAX), 3, u64::MAX, u64::MAX).is_err());
        let e = check_verity(&superblock(256), 3, mib, 8192).unwrap_err();
        assert!(e.to_string().contains("its tree needs 16384 bytes"), "{e}");
        // Odd block sizes.
        let mut sb = superblock(256);
        sb[64..68].copy_from_slice(&3000u32.to_le_bytes());
        assert!(check_verity(&sb, 3, mib, mib).is_err());
    }
}
