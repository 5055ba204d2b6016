//! The crate's error type: one variant per failed operation or detected mismatch.

use snafu::Snafu;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building or verifying a hash tree.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// The data to hash is empty or not a whole number of 4096-byte blocks.
    #[snafu(display("verity data size {len} is not a non-zero multiple of 4096 bytes"))]
    DataSize {
        /// Size given.
        len: u64,
    },
    /// The salt is longer than the superblock allows.
    #[snafu(display("verity salt of {len} bytes is longer than 256 bytes"))]
    SaltTooLong {
        /// Salt length.
        len: usize,
    },
    /// Reading the data device failed.
    #[snafu(display("failed to read verity data at offset {offset}"))]
    ReadData {
        /// Byte offset of the failed read.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },
    /// The data ended before the announced size.
    #[snafu(display("verity data ended at {got} bytes, expected {expected}"))]
    DataTooShort {
        /// Expected bytes.
        expected: u64,
        /// Bytes available.
        got: u64,
    },
    /// Writing the hash tree failed.
    #[snafu(display("failed to write the verity hash tree"))]
    WriteHash {
        /// Cause.
        source: std::io::Error,
    },
    /// Reading the hash device failed.
    #[snafu(display("failed to read the verity hash device at offset {offset}"))]
    ReadHash {
        /// Byte offset of the failed read.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },
    /// The hash device is shorter than the tree.
    #[snafu(display("verity hash device has {got} bytes, the tree needs {expected}"))]
    HashTooShort {
        /// Needed bytes.
        expected: u64,
        /// Available bytes.
        got: u64,
    },
    /// The hash device does not start with a valid verity superblock.
    #[snafu(display("invalid verity superblock: {reason}"))]
    SuperblockInvalid {
        /// What is wrong.
        reason: &'static str,
    },
    /// The superblock disagrees with the expected parameters.
    #[snafu(display("verity superblock {field} is {found}, expected {expected}"))]
    SuperblockMismatch {
        /// Field name.
        field: &'static str,
        /// Expected value.
        expected: String,
        /// Value found.
        found: String,
    },
    /// Parameters we do not support.
    #[snafu(display("unsupported verity parameters: {what}"))]
    Unsupported {
        /// What is unsupported.
        what: String,
    },
    /// The top hash block does not hash to the expected root hash.
    #[snafu(display("verity root hash mismatch: expected {expected}, hash tree gives {actual}"))]
    RootHashMismatch {
        /// Expected root hash (hex).
        expected: String,
        /// Computed root hash (hex).
        actual: String,
    },
    /// A hash block does not match its parent's digest.
    #[snafu(display("verity hash block {block} of level {level} is corrupt (level 0 = leaves)"))]
    HashBlockCorrupt {
        /// Tree level, 0 = leaves.
        level: u32,
        /// Block index within the level.
        block: u64,
    },
    /// A data block does not match its leaf digest.
    #[snafu(display("data block {block} is corrupt (byte offset {})", block * 4096))]
    DataBlockCorrupt {
        /// Index of the first bad data block.
        block: u64,
    },
    /// A dm-verity target line that is not one this crate writes ([`crate::VerityTable`]).
    #[snafu(display("bad dm-verity table: {reason}"))]
    BadTable {
        /// What is wrong, naming the field.
        reason: String,
    },
}

/// What kind of failure an [`Error`] is, for callers that map errors to exit statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorClass {
    /// The data, the hash device or the root hash disagree: verification failed (a corrupt or
    /// inconsistent set, a superblock that is not what the parameters say, a short device).
    Mismatch,
    /// The caller asked for something this crate does not do (size, salt, block sizes).
    InvalidInput,
    /// Reading or writing failed.
    Io,
}

impl Error {
    /// The class of this error.
    pub fn class(&self) -> ErrorClass {
        use Error::*;
        match self {
            RootHashMismatch { .. }
            | HashBlockCorrupt { .. }
            | DataBlockCorrupt { .. }
            | SuperblockMismatch { .. }
            | SuperblockInvalid { .. }
            | HashTooShort { .. }
            | DataTooShort { .. } => ErrorClass::Mismatch,
            DataSize { .. } | SaltTooLong { .. } | Unsupported { .. } | BadTable { .. } => {
                ErrorClass::InvalidInput
            }
            ReadData { .. } | WriteHash { .. } | ReadHash { .. } => ErrorClass::Io,
        }
    }
}
