//! The crate's error type: one variant per failed operation, carrying its path or tool.

use snafu::Snafu;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, verifying or booting an image.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    // ----- verity -----
    /// The data to hash is empty or not a whole number of 4096-byte blocks.
    #[snafu(display("verity data size {len} is not a non-zero multiple of 4096 bytes"))]
    VerityDataSize {
        /// Size given.
        len: u64,
    },
    /// The salt is longer than the superblock allows.
    #[snafu(display("verity salt of {len} bytes is longer than 256 bytes"))]
    VeritySaltTooLong {
        /// Salt length.
        len: usize,
    },
    /// Reading the data device failed.
    #[snafu(display("failed to read verity data at offset {offset}"))]
    VerityReadData {
        /// Byte offset of the failed read.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },
    /// The data ended before the announced size.
    #[snafu(display("verity data ended at {got} bytes, expected {expected}"))]
    VerityDataTooShort {
        /// Expected bytes.
        expected: u64,
        /// Bytes available.
        got: u64,
    },
    /// Writing the hash tree failed.
    #[snafu(display("failed to write the verity hash tree"))]
    VerityWriteHash {
        /// Cause.
        source: std::io::Error,
    },
    /// Reading the hash device failed.
    #[snafu(display("failed to read the verity hash device at offset {offset}"))]
    VerityReadHash {
        /// Byte offset of the failed read.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },
    /// The hash device is shorter than the tree.
    #[snafu(display("verity hash device has {got} bytes, the tree needs {expected}"))]
    VerityHashTooShort {
        /// Needed bytes.
        expected: u64,
        /// Available bytes.
        got: u64,
    },
    /// The hash device does not start with a valid verity superblock.
    #[snafu(display("invalid verity superblock: {reason}"))]
    VeritySuperblockInvalid {
        /// What is wrong.
        reason: &'static str,
    },
    /// The superblock disagrees with the expected parameters.
    #[snafu(display("verity superblock {field} is {found}, expected {expected}"))]
    VeritySuperblockMismatch {
        /// Field name.
        field: &'static str,
        /// Expected value.
        expected: String,
        /// Value found.
        found: String,
    },
    /// Parameters we do not support.
    #[snafu(display("unsupported verity parameters: {what}"))]
    VerityUnsupported {
        /// What is unsupported.
        what: String,
    },
    /// The top hash block does not hash to the expected root hash.
    #[snafu(display("verity root hash mismatch: expected {expected}, hash tree gives {actual}"))]
    VerityRootHashMismatch {
        /// Expected root hash (hex).
        expected: String,
        /// Computed root hash (hex).
        actual: String,
    },
    /// A hash block does not match its parent's digest.
    #[snafu(display("verity hash block {block} of level {level} is corrupt (level 0 = leaves)"))]
    VerityHashBlockCorrupt {
        /// Tree level, 0 = leaves.
        level: u32,
        /// Block index within the level.
        block: u64,
    },
    /// A data block does not match its leaf digest.
    #[snafu(display("data block {block} is corrupt (byte offset {})", block * 4096))]
    VerityDataBlockCorrupt {
        /// Index of the first bad data block.
        block: u64,
    },

    // ----- layout -----
    /// The OS image size is out of range.
    #[snafu(display("OS image size {gib} GiB is out of range (1 to 1024)"))]
    LayoutSize {
        /// Size asked for.
        gib: u32,
    },
}
