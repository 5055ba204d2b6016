//! The hash tree: level math, build, verify and the superblock.
//!
//! The leaf level, which is nearly all of the work, is hashed on the rayon pool while the next
//! chunk of input is read, so two cores are kept busy.

use crate::error::{self, Result};
use aws_lc_rs::digest;
use rayon::prelude::*;
use snafu::{ResultExt, ensure};
use std::io::{Read, Seek, SeekFrom, Write};

/// Data and hash block size, in bytes (Bottlerocket: 4096/4096).
pub const BLOCK_SIZE: u32 = 4096;
/// Size of one SHA-256 digest.
pub const DIGEST_SIZE: usize = 32;
/// Digests per hash block.
pub const HASHES_PER_BLOCK: u64 = BLOCK_SIZE as u64 / DIGEST_SIZE as u64;
/// Size of the verity superblock at the start of the hash device.
pub const SUPERBLOCK_SIZE: usize = 512;
/// Hash start block in the dm-verity table: block 0 holds the superblock.
pub const HASH_START_BLOCK: u64 = 1;
/// Largest salt the superblock can carry.
pub const MAX_SALT_SIZE: usize = 256;
/// The only hash algorithm we write.
pub const HASH_ALGORITHM: &str = "sha256";
/// Verity format (hash type) 1: salt first, digests padded to a power of two.
pub const FORMAT: u32 = 1;

const BLOCK: usize = BLOCK_SIZE as usize;
const SIGNATURE: &[u8; 8] = b"verity\0\0";
/// Input is read in chunks of this many bytes (2048 blocks).
const CHUNK_BYTES: usize = 8 << 20;

/// The parameters that identify a hash tree: what a dm-verity table needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerityParams {
    /// Digest of the top hash block.
    pub root_hash: [u8; 32],
    /// Salt prepended to every hashed block.
    pub salt: Vec<u8>,
    /// Number of data blocks covered.
    pub data_blocks: u64,
    /// Data block size in bytes.
    pub data_block_size: u32,
    /// Hash block size in bytes.
    pub hash_block_size: u32,
    /// UUID stored in the superblock.
    pub uuid: [u8; 16],
}

impl VerityParams {
    /// Root hash as lowercase hex.
    pub fn root_hash_hex(&self) -> String {
        hex::encode(self.root_hash)
    }

    /// Salt as lowercase hex (`-` for an empty salt, as dm-verity spells it).
    pub fn salt_hex(&self) -> String {
        if self.salt.is_empty() {
            "-".to_string()
        } else {
            hex::encode(&self.salt)
        }
    }

    /// Bytes of data covered by the tree.
    pub fn data_bytes(&self) -> u64 {
        self.data_blocks * u64::from(self.data_block_size)
    }

    /// Size of the whole hash device content: superblock block plus tree blocks.
    pub fn hash_device_bytes(&self) -> u64 {
        hash_device_bytes(self.data_blocks)
    }

    /// UUID in its canonical 8-4-4-4-12 text form.
    pub fn uuid_string(&self) -> String {
        format_uuid(&self.uuid)
    }

    /// The dm-verity target line (without the `name,uuid,minor,flags,` prefix):
    /// `0 <sectors> verity 1 <data dev> <hash dev> 4096 4096 <blocks> 1 sha256 <root> <salt>`
    /// followed by the optional arguments.
    pub fn dm_target(&self, data_dev: &str, hash_dev: &str, options: &[&str]) -> String {
        let mut line = format!(
            "0 {sectors} verity {FORMAT} {data_dev} {hash_dev} {dbs} {hbs} {blocks} {HASH_START_BLOCK} \
             {HASH_ALGORITHM} {root} {salt}",
            sectors = self.data_bytes() / 512,
            dbs = self.data_block_size,
            hbs = self.hash_block_size,
            blocks = self.data_blocks,
            root = self.root_hash_hex(),
            salt = self.salt_hex(),
        );
        if !options.is_empty() {
            line.push_str(&format!(" {} {}", options.len(), options.join(" ")));
        }
        line
    }
}

/// Formats 16 bytes as a canonical UUID string.
pub fn format_uuid(bytes: &[u8; 16]) -> String {
    let h = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Blocks per tree level for `data_blocks` data blocks, leaf level first.
///
/// The number of levels is the smallest `L` with `128^L >= data_blocks`, so the top level is one
/// block; a single data block needs no level at all (its digest is the root hash).
pub fn level_sizes(data_blocks: u64) -> Vec<u64> {
    let mut sizes = Vec::new();
    let mut blocks = data_blocks;
    while blocks > 1 {
        blocks = blocks.div_ceil(HASHES_PER_BLOCK);
        sizes.push(blocks);
    }
    sizes
}

/// Size of the hash device content for `data_blocks` blocks (superblock block included).
pub fn hash_device_bytes(data_blocks: u64) -> u64 {
    (1 + level_sizes(data_blocks).iter().sum::<u64>()) * u64::from(BLOCK_SIZE)
}

/// Offsets (in blocks from the start of the hash device) of each level, leaf level first.
/// The top level comes right after the superblock block, the leaves last.
fn level_offsets(sizes: &[u64]) -> Vec<u64> {
    let mut offsets = vec![0; sizes.len()];
    let mut position = HASH_START_BLOCK;
    for (i, size) in sizes.iter().enumerate().rev() {
        offsets[i] = position;
        position += size;
    }
    offsets
}

fn hash_block(salt: &[u8], block: &[u8]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(salt);
    ctx.update(block);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// Hashes `data` (whole blocks) into consecutive 32-byte slots of `out`, in parallel.
fn hash_blocks_into(salt: &[u8], data: &[u8], out: &mut [u8]) {
    out.par_chunks_mut(DIGEST_SIZE)
        .zip(data.par_chunks(BLOCK))
        .with_min_len(64)
        .for_each(|(slot, block)| slot.copy_from_slice(&hash_block(salt, block)));
}

/// Reads as many bytes as are available up to `buf.len()`; returns the count.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Hashes `data_blocks` blocks read from `data` into `leaves` (32 bytes per block).
///
/// The leaf digests of chunk `k` are computed on the rayon pool while this thread reads chunk
/// `k + 1`. Fails if the reader ends early.
fn hash_data_leaves(
    data: &mut impl Read,
    data_blocks: u64,
    salt: &[u8],
    leaves: &mut [u8],
) -> Result<()> {
    let total = data_blocks * u64::from(BLOCK_SIZE);
    let chunk_len = |index: u64| -> usize {
        let start = index * CHUNK_BYTES as u64;
        (total - start).min(CHUNK_BYTES as u64) as usize
    };
    let chunks = total.div_ceil(CHUNK_BYTES as u64);
    let mut current = vec![0u8; chunk_len(0)];
    read_chunk(data, &mut current, 0)?;
    let mut next = Vec::with_capacity(current.len());
    let mut outs = leaves.chunks_mut(CHUNK_BYTES / BLOCK * DIGEST_SIZE);
    for index in 0..chunks {
        let out = outs.next().expect("leaf buffer sized for every chunk");
        let have_next = index + 1 < chunks;
        if have_next {
            next.resize(chunk_len(index + 1), 0);
        }
        let read_result = std::thread::scope(|scope| {
            let current = &current;
            let worker = scope.spawn(move || hash_blocks_into(salt, current, out));
            let result = if have_next {
                read_chunk(data, &mut next, (index + 1) * CHUNK_BYTES as u64)
            } else {
                Ok(())
            };
            worker.join().expect("hashing thread panicked");
            result
        });
        read_result?;
        std::mem::swap(&mut current, &mut next);
    }
    Ok(())
}

fn read_chunk(data: &mut impl Read, buf: &mut [u8], offset: u64) -> Result<()> {
    let got = read_full(data, buf).context(error::ReadDataSnafu { offset })?;
    ensure!(
        got == buf.len(),
        error::DataTooShortSnafu {
            expected: offset + buf.len() as u64,
            got: offset + got as u64
        }
    );
    Ok(())
}

/// Builds the tree levels above the leaves; returns all levels (leaf first) and the root hash.
fn build_upper_levels(salt: &[u8], leaves: Vec<u8>, sizes: &[u64]) -> (Vec<Vec<u8>>, [u8; 32]) {
    let mut levels = vec![leaves];
    for size in sizes.iter().skip(1) {
        let below = levels.last().expect("leaf level present");
        let mut level = vec![0u8; *size as usize * BLOCK];
        let count = below.len() / BLOCK;
        hash_blocks_into(salt, below, &mut level[..count * DIGEST_SIZE]);
        levels.push(level);
    }
    let top = levels.last().expect("at least one level");
    let root = hash_block(salt, top);
    (levels, root)
}

/// The 512-byte superblock for these parameters.
pub fn superblock(params: &VerityParams) -> [u8; SUPERBLOCK_SIZE] {
    let mut sb = [0u8; SUPERBLOCK_SIZE];
    sb[0..8].copy_from_slice(SIGNATURE);
    sb[8..12].copy_from_slice(&1u32.to_le_bytes()); // superblock version
    sb[12..16].copy_from_slice(&FORMAT.to_le_bytes()); // hash type
    sb[16..32].copy_from_slice(&params.uuid);
    sb[32..32 + HASH_ALGORITHM.len()].copy_from_slice(HASH_ALGORITHM.as_bytes());
    sb[64..68].copy_from_slice(&params.data_block_size.to_le_bytes());
    sb[68..72].copy_from_slice(&params.hash_block_size.to_le_bytes());
    sb[72..80].copy_from_slice(&params.data_blocks.to_le_bytes());
    sb[80..82].copy_from_slice(&(params.salt.len() as u16).to_le_bytes());
    sb[88..88 + params.salt.len()].copy_from_slice(&params.salt);
    sb
}

/// What a superblock says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Superblock {
    /// Hash type (format); 1 for what we write.
    pub hash_type: u32,
    /// UUID of the hash device.
    pub uuid: [u8; 16],
    /// Algorithm name, e.g. `sha256`.
    pub algorithm: String,
    /// Data block size.
    pub data_block_size: u32,
    /// Hash block size.
    pub hash_block_size: u32,
    /// Data blocks covered.
    pub data_blocks: u64,
    /// Salt.
    pub salt: Vec<u8>,
}

/// Parses a superblock; errors say which field is wrong.
pub fn parse_superblock(bytes: &[u8]) -> Result<Superblock> {
    ensure!(
        bytes.len() >= SUPERBLOCK_SIZE,
        error::SuperblockInvalidSnafu {
            reason: "shorter than 512 bytes"
        }
    );
    ensure!(
        &bytes[0..8] == SIGNATURE,
        error::SuperblockInvalidSnafu {
            reason: "no `verity` signature"
        }
    );
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().expect("4 bytes"));
    ensure!(
        u32_at(8) == 1,
        error::SuperblockInvalidSnafu {
            reason: "unknown superblock version"
        }
    );
    let algorithm = bytes[32..64].split(|b| *b == 0).next().unwrap_or_default();
    let salt_size = usize::from(u16::from_le_bytes([bytes[80], bytes[81]]));
    ensure!(
        salt_size <= MAX_SALT_SIZE,
        error::SuperblockInvalidSnafu {
            reason: "salt size over 256"
        }
    );
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&bytes[16..32]);
    Ok(Superblock {
        hash_type: u32_at(12),
        uuid,
        algorithm: String::from_utf8_lossy(algorithm).into_owned(),
        data_block_size: u32_at(64),
        hash_block_size: u32_at(68),
        data_blocks: u64::from_le_bytes(bytes[72..80].try_into().expect("8 bytes")),
        salt: bytes[88..88 + salt_size].to_vec(),
    })
}

/// A UUID for the superblock derived from the salt (so `build` is deterministic).
pub fn uuid_from_salt(salt: &[u8]) -> [u8; 16] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"os-image verity uuid\0");
    ctx.update(salt);
    let d = ctx.finish();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&d.as_ref()[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x40; // version 4 layout
    uuid[8] = (uuid[8] & 0x3f) | 0x80; // RFC 4122 variant
    uuid
}

/// Builds the format-1 hash tree (superblock at offset 0) for `data` into `hash_out`.
///
/// `data_len` must be a non-zero multiple of 4096 and `data` must supply that many bytes. The
/// superblock UUID is derived from the salt; use [`build_with_uuid`] to choose it.
pub fn build(
    data: &mut impl Read,
    data_len: u64,
    salt: &[u8],
    hash_out: &mut impl Write,
) -> Result<VerityParams> {
    build_with_uuid(data, data_len, salt, uuid_from_salt(salt), hash_out)
}

/// [`build`] with an explicit superblock UUID (as `veritysetup format --uuid`).
pub fn build_with_uuid(
    data: &mut impl Read,
    data_len: u64,
    salt: &[u8],
    uuid: [u8; 16],
    hash_out: &mut impl Write,
) -> Result<VerityParams> {
    ensure!(
        data_len > 0 && data_len.is_multiple_of(u64::from(BLOCK_SIZE)),
        error::DataSizeSnafu { len: data_len }
    );
    ensure!(
        salt.len() <= MAX_SALT_SIZE,
        error::SaltTooLongSnafu { len: salt.len() }
    );
    let data_blocks = data_len / u64::from(BLOCK_SIZE);
    let sizes = level_sizes(data_blocks);

    let (levels, root_hash) = if sizes.is_empty() {
        let mut block = vec![0u8; BLOCK];
        read_chunk(data, &mut block, 0)?;
        (Vec::new(), hash_block(salt, &block))
    } else {
        let mut leaves = vec![0u8; sizes[0] as usize * BLOCK];
        hash_data_leaves(
            data,
            data_blocks,
            salt,
            &mut leaves[..data_blocks as usize * DIGEST_SIZE],
        )?;
        build_upper_levels(salt, leaves, &sizes)
    };

    let params = VerityParams {
        root_hash,
        salt: salt.to_vec(),
        data_blocks,
        data_block_size: BLOCK_SIZE,
        hash_block_size: BLOCK_SIZE,
        uuid,
    };
    let mut first = vec![0u8; BLOCK];
    first[..SUPERBLOCK_SIZE].copy_from_slice(&superblock(&params));
    hash_out.write_all(&first).context(error::WriteHashSnafu)?;
    for level in levels.iter().rev() {
        hash_out.write_all(level).context(error::WriteHashSnafu)?;
    }
    hash_out.flush().context(error::WriteHashSnafu)?;
    Ok(params)
}

/// Checks every data block against the hash device and the root hash; reports the first bad
/// block.
///
/// The superblock must agree with `params`; then the tree is checked from the root down (a
/// corrupt hash block is reported with its level), then the data blocks against the leaves (the
/// lowest corrupt data block is reported). `data` must supply `params.data_blocks` blocks.
/// This is [`StreamVerifier`] fed from `data` in chunks.
pub fn verify(
    data: &mut impl Read,
    hash: &mut (impl Read + Seek),
    params: &VerityParams,
) -> Result<()> {
    let mut verifier = StreamVerifier::new(hash, params)?;
    let total = params.data_bytes();
    let mut buf = vec![0u8; (VERIFY_CHUNK_BLOCKS as usize * BLOCK).min(total as usize)];
    let mut offset = 0u64;
    while offset < total {
        let chunk =
            &mut buf[..(total - offset).min(VERIFY_CHUNK_BLOCKS * u64::from(BLOCK_SIZE)) as usize];
        read_chunk(data, chunk, offset)?;
        verifier.update(chunk)?;
        offset += chunk.len() as u64;
    }
    verifier.finish()
}

/// Checks data against a hash tree as it arrives: in order, in pieces of any size.
///
/// [`StreamVerifier::new`] reads the superblock and the levels above the leaves (1/16384 of the
/// data: 64 KiB for 1 GiB) and checks them against `params` and the root hash, so a bad tree is
/// refused before any data is looked at. [`StreamVerifier::update`] then takes the data bytes
/// from the first one on; each whole block is hashed and compared with its leaf digest, the leaf
/// hash blocks being read from the hash device as the data reaches them (each checked against its
/// parent first). Bytes past the blocks the tree covers are ignored. [`StreamVerifier::finish`]
/// says whether every covered block was seen. Memory is bounded whatever the image size.
///
/// ```
/// use std::io::Cursor;
/// let data: Vec<u8> = (0..300 * 4096u32).map(|i| (i % 251) as u8).collect();
/// let mut hash = Vec::new();
/// let params = dm_verity::build(&mut &data[..], data.len() as u64, b"salt", &mut hash)?;
/// let mut v = dm_verity::StreamVerifier::new(Cursor::new(&hash), &params)?;
/// for piece in data.chunks(10_000) {
///     v.update(piece)?;
/// }
/// v.finish()?;
/// # Ok::<(), dm_verity::Error>(())
/// ```
#[derive(Debug)]
pub struct StreamVerifier<H> {
    hash: H,
    params: VerityParams,
    /// The levels above the leaves, already checked: `upper[k]` is level k + 1.
    upper: Vec<Vec<u8>>,
    /// Byte offset of the leaf level in the hash device (`None`: one data block, no tree).
    leaf_start: Option<u64>,
    /// Bytes the tree covers.
    covered: u64,
    /// Data bytes taken so far (at most `covered`).
    seen: u64,
    /// The start of a block not yet complete.
    partial: Vec<u8>,
    /// Checked leaf hash blocks `leaves_first..` (a window reused while the data stays in it).
    leaves: Vec<u8>,
    leaves_first: u64,
    digests: Vec<u8>,
    /// Hash the blocks of one update on the rayon pool (the default) or on the caller's thread.
    parallel: bool,
}

impl<H: Read + Seek> StreamVerifier<H> {
    /// Reads and checks the superblock and the upper tree levels of `hash` against `params`.
    pub fn new(mut hash: H, params: &VerityParams) -> Result<Self> {
        ensure!(
            params.data_block_size == BLOCK_SIZE && params.hash_block_size == BLOCK_SIZE,
            error::UnsupportedSnafu {
                what: format!(
                    "block sizes {}/{}",
                    params.data_block_size, params.hash_block_size
                )
            }
        );
        ensure!(params.data_blocks > 0, error::DataSizeSnafu { len: 0u64 });
        let expected_hash_len = hash_device_bytes(params.data_blocks);
        let mut first = vec![0u8; BLOCK];
        read_hash_at(&mut hash, &mut first, 0, expected_hash_len)?;
        let sb = parse_superblock(&first)?;
        check_superblock(&sb, params)?;

        let sizes = level_sizes(params.data_blocks);
        let offsets = level_offsets(&sizes);
        let mut upper: Vec<Vec<u8>> = Vec::with_capacity(sizes.len().saturating_sub(1));
        for level in 1..sizes.len() {
            let mut buf = vec![0u8; sizes[level] as usize * BLOCK];
            read_hash_at(
                &mut hash,
                &mut buf,
                offsets[level] * u64::from(BLOCK_SIZE),
                expected_hash_len,
            )?;
            upper.push(buf);
        }
        if let Some(top) = upper.last() {
            let actual = hash_block(&params.salt, top);
            ensure!(
                actual == params.root_hash,
                error::RootHashMismatchSnafu {
                    expected: params.root_hash_hex(),
                    actual: hex::encode(actual)
                }
            );
        }
        for k in (0..upper.len().saturating_sub(1)).rev() {
            let below = &upper[k];
            let mut digests = vec![0u8; below.len() / BLOCK * DIGEST_SIZE];
            hash_blocks_into(&params.salt, below, &mut digests);
            if let Some(bad) = first_mismatch(&digests, &upper[k + 1]) {
                return error::HashBlockCorruptSnafu {
                    level: k as u32 + 1,
                    block: bad,
                }
                .fail();
            }
        }
        Ok(StreamVerifier {
            hash,
            params: params.clone(),
            upper,
            leaf_start: offsets.first().map(|o| o * u64::from(BLOCK_SIZE)),
            covered: params.data_bytes(),
            seen: 0,
            partial: Vec::with_capacity(BLOCK),
            leaves: Vec::new(),
            leaves_first: 0,
            digests: Vec::new(),
            parallel: true,
        })
    }

    /// Hashes on the calling thread only, for a caller that already keeps every core busy with
    /// other stages (a pool would only add wake-ups and spinning next to them).
    pub fn sequential(mut self) -> Self {
        self.parallel = false;
        self
    }

    /// Data bytes checked or held so far (at most the bytes the tree covers).
    pub fn position(&self) -> u64 {
        self.seen
    }

    /// Bytes the tree covers (`data_blocks` × block size).
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// Takes the next data bytes; fails on the first block that does not match the tree.
    pub fn update(&mut self, data: &[u8]) -> Result<()> {
        let take = (self.covered - self.seen).min(data.len() as u64) as usize;
        let mut data = &data[..take];
        if !self.partial.is_empty() {
            let n = (BLOCK - self.partial.len()).min(data.len());
            self.partial.extend_from_slice(&data[..n]);
            data = &data[n..];
            self.seen += n as u64;
            if self.partial.len() < BLOCK {
                return Ok(());
            }
            let block = std::mem::take(&mut self.partial);
            let first = (self.seen - BLOCK as u64) / u64::from(BLOCK_SIZE);
            let checked = self.check_blocks(first, &block);
            self.partial = block;
            self.partial.clear();
            checked?;
        }
        let whole = data.len() - data.len() % BLOCK;
        for chunk in data[..whole].chunks(VERIFY_CHUNK_BLOCKS as usize * BLOCK) {
            let first = self.seen / u64::from(BLOCK_SIZE);
            self.check_blocks(first, chunk)?;
            self.seen += chunk.len() as u64;
        }
        self.partial.extend_from_slice(&data[whole..]);
        self.seen += (data.len() - whole) as u64;
        Ok(())
    }

    /// Succeeds when every block the tree covers was taken and matched.
    pub fn finish(self) -> Result<()> {
        ensure!(
            self.seen == self.covered,
            error::DataTooShortSnafu {
                expected: self.covered,
                got: self.seen
            }
        );
        Ok(())
    }

    /// Checks whole blocks `blocks`, the first being data block `first`.
    fn check_blocks(&mut self, first: u64, blocks: &[u8]) -> Result<()> {
        let n = (blocks.len() / BLOCK) as u64;
        let Some(leaf_start) = self.leaf_start else {
            // One data block: its digest is the root hash.
            ensure!(
                hash_block(&self.params.salt, blocks) == self.params.root_hash,
                error::DataBlockCorruptSnafu { block: first }
            );
            return Ok(());
        };
        let lo = first / HASHES_PER_BLOCK;
        let hi = (first + n - 1) / HASHES_PER_BLOCK;
        let have = (self.leaves.len() / BLOCK) as u64;
        if have == 0 || lo < self.leaves_first || hi >= self.leaves_first + have {
            self.load_leaves(leaf_start, lo, hi - lo + 1)?;
        }
        self.digests.resize(n as usize * DIGEST_SIZE, 0);
        if self.parallel {
            hash_blocks_into(&self.params.salt, blocks, &mut self.digests);
        } else {
            for (slot, block) in self
                .digests
                .chunks_mut(DIGEST_SIZE)
                .zip(blocks.chunks(BLOCK))
            {
                slot.copy_from_slice(&hash_block(&self.params.salt, block));
            }
        }
        let skip = ((first - self.leaves_first * HASHES_PER_BLOCK) as usize) * DIGEST_SIZE;
        if let Some(bad) = first_mismatch(&self.digests, &self.leaves[skip..]) {
            return error::DataBlockCorruptSnafu { block: first + bad }.fail();
        }
        Ok(())
    }

    /// Reads leaf hash blocks `first..first + count` and checks each against its parent.
    fn load_leaves(&mut self, leaf_start: u64, first: u64, count: u64) -> Result<()> {
        self.leaves.resize(count as usize * BLOCK, 0);
        read_hash_at(
            &mut self.hash,
            &mut self.leaves,
            leaf_start + first * u64::from(BLOCK_SIZE),
            hash_device_bytes(self.params.data_blocks),
        )?;
        self.leaves_first = first;
        for (k, leaf_block) in self.leaves.chunks(BLOCK).enumerate() {
            let leaf = first + k as u64;
            // The digest a leaf hash block must have: from level 1, or the root hash when the
            // leaf level is a single block.
            let parent = match self.upper.first() {
                Some(level1) => &level1[leaf as usize * DIGEST_SIZE..][..DIGEST_SIZE],
                None => &self.params.root_hash[..],
            };
            if hash_block(&self.params.salt, leaf_block)[..] != *parent {
                self.leaves.clear();
                return error::HashBlockCorruptSnafu {
                    level: 0u32,
                    block: leaf,
                }
                .fail();
            }
        }
        Ok(())
    }
}

/// Reads `buf.len()` bytes of the hash device at `start`; a short device is `HashTooShort`.
fn read_hash_at(
    hash: &mut (impl Read + Seek),
    buf: &mut [u8],
    start: u64,
    expected_len: u64,
) -> Result<()> {
    hash.seek(SeekFrom::Start(start))
        .context(error::ReadHashSnafu { offset: start })?;
    let got = read_full(hash, buf).context(error::ReadHashSnafu { offset: start })?;
    ensure!(
        got == buf.len(),
        error::HashTooShortSnafu {
            expected: expected_len,
            got: start + got as u64
        }
    );
    Ok(())
}

/// Data blocks [`verify`] checks per step (2 MiB of data, 4 leaf hash blocks): its memory.
const VERIFY_CHUNK_BLOCKS: u64 = 512;

fn check_superblock(sb: &Superblock, params: &VerityParams) -> Result<()> {
    let mismatch = |field: &'static str, expected: String, found: String| {
        error::SuperblockMismatchSnafu {
            field,
            expected,
            found,
        }
        .fail()
    };
    if sb.hash_type != FORMAT {
        return mismatch("hash type", FORMAT.to_string(), sb.hash_type.to_string());
    }
    if sb.algorithm != HASH_ALGORITHM {
        return mismatch(
            "hash algorithm",
            HASH_ALGORITHM.to_string(),
            sb.algorithm.clone(),
        );
    }
    if sb.data_block_size != params.data_block_size || sb.hash_block_size != params.hash_block_size
    {
        return mismatch(
            "block sizes",
            format!("{}/{}", params.data_block_size, params.hash_block_size),
            format!("{}/{}", sb.data_block_size, sb.hash_block_size),
        );
    }
    if sb.data_blocks != params.data_blocks {
        return mismatch(
            "data blocks",
            params.data_blocks.to_string(),
            sb.data_blocks.to_string(),
        );
    }
    if sb.salt != params.salt {
        return mismatch("salt", params.salt_hex(), hex::encode(&sb.salt));
    }
    Ok(())
}

/// Index of the first 32-byte digest in `computed` that differs from the stored one.
fn first_mismatch(computed: &[u8], stored: &[u8]) -> Option<u64> {
    computed
        .chunks(DIGEST_SIZE)
        .zip(stored.chunks(DIGEST_SIZE))
        .position(|(a, b)| a != b)
        .map(|i| i as u64)
}

/// Reads only the superblock of a hash device (from its start) and returns what it records. It
/// carries no root hash: that comes from a trusted source (the kernel command line).
pub fn read_superblock(hash: &mut (impl Read + Seek)) -> Result<Superblock> {
    hash.seek(SeekFrom::Start(0))
        .context(error::ReadHashSnafu { offset: 0u64 })?;
    let mut first = vec![0u8; SUPERBLOCK_SIZE];
    let got = read_full(hash, &mut first).context(error::ReadHashSnafu { offset: 0u64 })?;
    ensure!(
        got == SUPERBLOCK_SIZE,
        error::HashTooShortSnafu {
            expected: SUPERBLOCK_SIZE as u64,
            got: got as u64
        }
    );
    parse_superblock(&first)
}

#[cfg(test)]
mod test {
    use super::*;
    use std::io::Cursor;

    fn pattern(blocks: u64) -> Vec<u8> {
        (0..blocks * 4096)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect()
    }

    /// Streaming verify names the level and block of a damaged hash block at every level of a
    /// three-level tree, and a damaged data block after a chunk boundary.
    #[test]
    fn verify_locates_damage_at_every_level() {
        let blocks = 17_000u64; // leaves: 133 blocks, level 1: 2 blocks, level 2: 1 block
        assert_eq!(level_sizes(blocks), vec![133, 2, 1]);
        let data = pattern(blocks);
        let salt = [7u8; 32];
        let mut tree = Vec::new();
        let params = build(&mut Cursor::new(&data), data.len() as u64, &salt, &mut tree).unwrap();
        verify(&mut Cursor::new(&data), &mut Cursor::new(&tree), &params).unwrap();
        let offsets = level_offsets(&level_sizes(blocks));
        let check = |data: &[u8], tree: &[u8]| {
            verify(&mut Cursor::new(data), &mut Cursor::new(tree), &params).unwrap_err()
        };
        // A leaf-level hash block (level 0, block 100).
        let mut bad = tree.clone();
        bad[(offsets[0] as usize + 100) * BLOCK + 5] ^= 1;
        assert!(matches!(
            check(&data, &bad),
            crate::Error::HashBlockCorrupt {
                level: 0,
                block: 100
            }
        ));
        // Level 1, block 1.
        let mut bad = tree.clone();
        bad[(offsets[1] as usize + 1) * BLOCK + 9] ^= 1;
        assert!(matches!(
            check(&data, &bad),
            crate::Error::HashBlockCorrupt { level: 1, block: 1 }
        ));
        // The top block: the root hash no longer matches.
        let mut bad = tree.clone();
        bad[offsets[2] as usize * BLOCK] ^= 1;
        assert!(matches!(
            check(&data, &bad),
            crate::Error::RootHashMismatch { .. }
        ));
        // A data block in the third verify chunk.
        let mut bad = data.clone();
        bad[1_500 * BLOCK + 17] ^= 1;
        assert!(matches!(
            check(&bad, &tree),
            crate::Error::DataBlockCorrupt { block: 1_500 }
        ));
    }

    /// The streaming verifier takes the data in pieces of any size (across block, leaf and chunk
    /// boundaries), names the first bad block, refuses a bad tree before any data, says when data
    /// is missing and ignores bytes past what the tree covers.
    #[test]
    fn stream_verifier_takes_any_piece_size() {
        let blocks = 17_000u64;
        let data = pattern(blocks);
        let salt = [3u8; 32];
        let mut tree = Vec::new();
        let params = build(&mut Cursor::new(&data), data.len() as u64, &salt, &mut tree).unwrap();
        let feed = |data: &[u8], piece: usize| -> Result<()> {
            let mut v = StreamVerifier::new(Cursor::new(&tree), &params)?;
            if piece % 2 == 1 {
                v = v.sequential();
            }
            for p in data.chunks(piece) {
                v.update(p)?;
            }
            assert!(v.position() <= v.covered());
            v.finish()
        };
        for piece in [1, 4095, 4096, 4097, 100_000, 512 << 10, 3 << 20, data.len()] {
            // 1-byte pieces over the whole image would take long: a prefix shows the carry.
            if piece == 1 {
                let mut v = StreamVerifier::new(Cursor::new(&tree), &params).unwrap();
                for b in &data[..3 * 4096 + 7] {
                    v.update(std::slice::from_ref(b)).unwrap();
                }
                assert_eq!(v.position(), 3 * 4096 + 7);
                continue;
            }
            feed(&data, piece).unwrap();
            let mut bad = data.clone();
            bad[9_999 * BLOCK + 4095] ^= 0x80;
            assert!(
                matches!(
                    feed(&bad, piece),
                    Err(crate::Error::DataBlockCorrupt { block: 9_999 })
                ),
                "piece {piece}"
            );
        }
        // Missing data: the last block never arrives.
        assert!(matches!(
            feed(&data[..data.len() - 1], 65_536),
            Err(crate::Error::DataTooShort { .. })
        ));
        // Bytes past the covered blocks (the rest of a larger partition) are not the image's.
        let mut longer = data.clone();
        longer.extend_from_slice(&[0xee; 10_000]);
        feed(&longer, 777_777).unwrap();
        // A damaged upper level is refused before any data is taken.
        let offsets = level_offsets(&level_sizes(blocks));
        let mut bad_tree = tree.clone();
        bad_tree[offsets[1] as usize * BLOCK + 40] ^= 1;
        assert!(matches!(
            StreamVerifier::new(Cursor::new(&bad_tree), &params),
            Err(crate::Error::HashBlockCorrupt { level: 1, block: 0 })
        ));
        // A damaged leaf hash block is found when the data reaches it.
        let mut bad_tree = tree.clone();
        bad_tree[(offsets[0] as usize + 50) * BLOCK + 1] ^= 1;
        let mut v = StreamVerifier::new(Cursor::new(&bad_tree), &params).unwrap();
        v.update(&data[..50 * 128 * BLOCK]).unwrap();
        assert!(matches!(
            v.update(&data[50 * 128 * BLOCK..]),
            Err(crate::Error::HashBlockCorrupt {
                level: 0,
                block: 50
            })
        ));
        // One data block: no tree, the block's digest is the root hash.
        let one = pattern(1);
        let mut t1 = Vec::new();
        let p1 = build(&mut Cursor::new(&one), 4096, b"s", &mut t1).unwrap();
        let mut v = StreamVerifier::new(Cursor::new(&t1), &p1).unwrap();
        v.update(&one[..100]).unwrap();
        v.update(&one[100..]).unwrap();
        v.finish().unwrap();
    }

    #[test]
    fn level_sizes_match_the_format() {
        assert!(level_sizes(1).is_empty());
        assert_eq!(level_sizes(2), vec![1]);
        assert_eq!(level_sizes(128), vec![1]);
        assert_eq!(level_sizes(129), vec![2, 1]);
        assert_eq!(level_sizes(128 * 128), vec![128, 1]);
        assert_eq!(level_sizes(128 * 128 + 1), vec![129, 2, 1]);
        assert_eq!(hash_device_bytes(1), 4096);
        assert_eq!(hash_device_bytes(129), 4 * 4096);
        // A 920 MiB root (the 2 GiB layout) needs about 7.2 MiB: it fits the 10 MiB HASH partition.
        assert!(hash_device_bytes(920 * 256) < 10 << 20);
    }

    #[test]
    fn single_block_root_is_the_block_digest() {
        let data = pattern(1);
        let mut out = Vec::new();
        let p = build(&mut Cursor::new(&data), 4096, b"salt", &mut out).unwrap();
        assert_eq!(out.len(), 4096);
        assert_eq!(p.root_hash, hash_block(b"salt", &data));
        verify(&mut Cursor::new(&data), &mut Cursor::new(&out), &p).unwrap();
    }

    #[test]
    fn two_level_tree_by_hand() {
        let data = pattern(129);
        let salt = [7u8; 32];
        let mut out = Vec::new();
        let p = build(&mut Cursor::new(&data), data.len() as u64, &salt, &mut out).unwrap();
        // superblock, top level (1 block), leaf level (2 blocks)
        assert_eq!(out.len(), 4 * 4096);
        let leaf0: Vec<u8> = (0..128)
            .flat_map(|i| hash_block(&salt, &data[i * 4096..(i + 1) * 4096]))
            .collect();
        assert_eq!(&out[2 * 4096..3 * 4096], &leaf0[..]);
        let mut leaf1 = hash_block(&salt, &data[128 * 4096..]).to_vec();
        leaf1.resize(4096, 0);
        assert_eq!(&out[3 * 4096..], &leaf1[..]);
        let mut top = hash_block(&salt, &leaf0).to_vec();
        top.extend_from_slice(&hash_block(&salt, &leaf1));
        top.resize(4096, 0);
        assert_eq!(&out[4096..2 * 4096], &top[..]);
        assert_eq!(p.root_hash, hash_block(&salt, &top));
        let sb = parse_superblock(&out).unwrap();
        assert_eq!(sb.data_blocks, 129);
        assert_eq!(sb.salt, salt);
        assert_eq!(sb.algorithm, "sha256");
    }

    #[test]
    fn same_result_from_slice_bufreader_and_file() {
        let data = pattern(3000);
        let mut a = Vec::new();
        let pa = build(&mut &data[..], data.len() as u64, b"x", &mut a).unwrap();
        let mut b = Vec::new();
        let pb = build(
            &mut std::io::BufReader::with_capacity(1000, Cursor::new(&data)),
            data.len() as u64,
            b"x",
            &mut b,
        )
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        std::fs::write(&path, &data).unwrap();
        let mut c = Vec::new();
        let pc = build(
            &mut std::fs::File::open(&path).unwrap(),
            data.len() as u64,
            b"x",
            &mut c,
        )
        .unwrap();
        assert_eq!(pa, pb);
        assert_eq!(pa, pc);
        assert_eq!(a, b);
        assert_eq!(a, c);
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        // More than one read chunk, and not a whole number of chunks.
        let blocks = (CHUNK_BYTES / BLOCK) as u64 * 2 + 5;
        let data = pattern(blocks);
        let mut out = Vec::new();
        let p = build(&mut &data[..], data.len() as u64, b"", &mut out).unwrap();
        let leaves: Vec<u8> = data.chunks(4096).flat_map(|b| hash_block(b"", b)).collect();
        let offsets = level_offsets(&level_sizes(blocks));
        let leaf_start = offsets[0] as usize * 4096;
        assert_eq!(&out[leaf_start..leaf_start + leaves.len()], &leaves[..]);
        verify(&mut &data[..], &mut Cursor::new(&out), &p).unwrap();
    }

    #[test]
    fn verify_reports_first_bad_data_block() {
        let mut data = pattern(300);
        let mut out = Vec::new();
        let p = build(&mut &data[..], data.len() as u64, b"s", &mut out).unwrap();
        data[4096 * 211 + 17] ^= 1;
        data[4096 * 250] ^= 1;
        let err = verify(&mut &data[..], &mut Cursor::new(&out), &p).unwrap_err();
        assert!(
            matches!(err, crate::Error::DataBlockCorrupt { block: 211 }),
            "{err:?}"
        );
    }

    #[test]
    fn verify_reports_bad_hash_block_and_root() {
        let data = pattern(300);
        let mut out = Vec::new();
        let p = build(&mut &data[..], data.len() as u64, b"s", &mut out).unwrap();
        // 300 blocks: levels [3, 1]; device: sb, top (block 1), leaves (blocks 2..5)
        let mut bad = out.clone();
        bad[3 * 4096 + 5] ^= 1;
        let err = verify(&mut &data[..], &mut Cursor::new(&bad), &p).unwrap_err();
        assert!(
            matches!(err, crate::Error::HashBlockCorrupt { level: 0, block: 1 }),
            "{err:?}"
        );
        let mut bad = out.clone();
        bad[4096 + 1] ^= 1;
        let err = verify(&mut &data[..], &mut Cursor::new(&bad), &p).unwrap_err();
        assert!(
            matches!(err, crate::Error::RootHashMismatch { .. }),
            "{err:?}"
        );
        let mut other = p.clone();
        other.salt = b"t".to_vec();
        let err = verify(&mut &data[..], &mut Cursor::new(&out), &other).unwrap_err();
        assert!(
            matches!(err, crate::Error::SuperblockMismatch { field: "salt", .. }),
            "{err:?}"
        );
    }

    #[test]
    fn bad_inputs() {
        let err = build(&mut &[0u8; 100][..], 100, b"", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, crate::Error::DataSize { len: 100 }));
        let err = build(&mut &[0u8; 4096][..], 8192, b"", &mut Vec::new()).unwrap_err();
        assert!(
            matches!(
                err,
                crate::Error::DataTooShort {
                    expected: 8192,
                    got: 4096
                }
            ),
            "{err:?}"
        );
        let err = build(&mut &[0u8; 4096][..], 4096, &[0u8; 257], &mut Vec::new()).unwrap_err();
        assert!(matches!(err, crate::Error::SaltTooLong { len: 257 }));
    }

    #[test]
    fn dm_target_line() {
        let p = VerityParams {
            root_hash: [0xab; 32],
            salt: vec![1, 2],
            data_blocks: 10,
            data_block_size: 4096,
            hash_block_size: 4096,
            uuid: [0; 16],
        };
        assert_eq!(
            p.dm_target("D", "H", &["restart_on_corruption", "ignore_zero_blocks"]),
            format!(
                "0 80 verity 1 D H 4096 4096 10 1 sha256 {} 0102 2 restart_on_corruption ignore_zero_blocks",
                "ab".repeat(32)
            )
        );
    }
}

#[cfg(test)]
mod property {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Any size and salt: what we build verifies, and one flipped data byte is reported at
        /// its block.
        #[test]
        fn build_then_verify_and_locate_damage(
            blocks in 1u64..700,
            salt in proptest::collection::vec(any::<u8>(), 0..64),
            seed in any::<u8>(),
            flip in any::<proptest::sample::Index>(),
        ) {
            let mut data: Vec<u8> = (0..blocks * 4096).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
            let mut hash = Vec::new();
            let params = build(&mut &data[..], data.len() as u64, &salt, &mut hash).unwrap();
            prop_assert_eq!(hash.len() as u64, params.hash_device_bytes());
            verify(&mut &data[..], &mut Cursor::new(&hash), &params).unwrap();
            let at = flip.index(data.len());
            data[at] ^= 0x01;
            let err = verify(&mut &data[..], &mut Cursor::new(&hash), &params).unwrap_err();
            let matched = matches!(err, crate::Error::DataBlockCorrupt { block } if block == at as u64 / 4096);
            prop_assert!(matched, "{:?}", err);
        }
    }
}
