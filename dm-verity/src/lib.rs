//! dm-verity hash trees, computed by our own code: build, verify, superblock.
//!
//! The on-disk format is the one `veritysetup format` writes for format (hash type) 1 with a
//! superblock: the hash device starts with a 512-byte superblock padded to one hash block, then
//! the tree levels from the top (one block) down to the leaves. Every digest is
//! `sha256(salt || block)`, stored in a 32-byte slot; a hash block holds 128 slots and is
//! zero-padded. The root hash is the digest of the single top-level block (or of the only data
//! block when the data is one block long). With the same salt and UUID our output is
//! byte-identical to `veritysetup format --salt … --uuid …` (`tests/veritysetup.rs` checks this).
//!
//! Both sides of an A/B update use this crate: `os-image` builds the tree when it assembles an
//! image and verifies a set in its emulated boot; `updog` verifies a written set before it may
//! be marked valid. The crate is pure apart from the `Read`/`Write`/`Seek` it is given; a
//! [`Window`] turns a partition of a disk file into such a stream.
//!
//! ```
//! use std::io::Cursor;
//! let data = vec![0x5au8; 3 * 4096];
//! let mut hash = Vec::new();
//! let params = dm_verity::build(&mut &data[..], data.len() as u64, b"salt", &mut hash)?;
//! assert_eq!(hash.len() as u64, params.hash_device_bytes());
//! dm_verity::verify(&mut &data[..], &mut Cursor::new(&hash), &params)?;
//!
//! let mut bad = data.clone();
//! bad[2 * 4096 + 9] ^= 1;
//! let err = dm_verity::verify(&mut &bad[..], &mut Cursor::new(&hash), &params).unwrap_err();
//! assert_eq!(err.to_string(), "data block 2 is corrupt (byte offset 8192)");
//! # Ok::<(), dm_verity::Error>(())
//! ```
#![deny(missing_docs)]

mod error;
mod table;
mod tree;
mod window;

pub use error::{Error, ErrorClass, Result};
pub use table::VerityTable;
pub use tree::{
    BLOCK_SIZE, DIGEST_SIZE, FORMAT, HASH_ALGORITHM, HASH_START_BLOCK, HASHES_PER_BLOCK,
    MAX_SALT_SIZE, SUPERBLOCK_SIZE, StreamVerifier, Superblock, VerityParams, build,
    build_with_uuid, format_uuid, hash_device_bytes, level_sizes, parse_superblock,
    read_superblock, superblock, uuid_from_salt, verify,
};
pub use window::Window;
