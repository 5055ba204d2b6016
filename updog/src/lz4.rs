//! A resumable LZ4 frame decoder, split in two halves so they can run on two threads.
//!
//! [`Framer`] cuts the compressed byte stream into frame headers and whole blocks (cheap: it only
//! reads 4-byte sizes and copies bytes). [`BlockDecoder`] decompresses blocks, checks block and
//! content checksums and hands out the decompressed bytes. Both halves have a small serialisable
//! state that is valid at every block boundary, so a download interrupted by a network drop, a
//! kill or a reboot can continue from the last durable block boundary with an HTTP Range request
//! instead of starting over. Frames with linked blocks (`lz4 -BD`) resume too: the 64 KiB window
//! they may reference is re-read from what was already written.
//!
//! Format: LZ4 frame format 1.6.x (magic `0x184D2204`), as written by the `lz4` tool, including
//! concatenated frames and skippable frames.

use serde::{Deserialize, Serialize};
use snafu::{Snafu, ensure};

const MAGIC: u32 = 0x184D_2204;
const SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// How far back linked blocks may reference earlier output.
pub const WINDOW: usize = 64 * 1024;

/// Problems with the compressed stream.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Lz4Error {
    /// Not an LZ4 frame.
    #[snafu(display("bad LZ4 magic number {magic:#010x} at compressed offset {offset}"))]
    BadMagic {
        /// The magic read.
        magic: u32,
        /// Where.
        offset: u64,
    },
    /// Unsupported frame descriptor.
    #[snafu(display("unsupported LZ4 frame descriptor at compressed offset {offset}: {what}"))]
    BadDescriptor {
        /// Which field.
        what: &'static str,
        /// Where.
        offset: u64,
    },
    /// Header checksum mismatch.
    #[snafu(display("LZ4 frame header checksum mismatch at compressed offset {offset}"))]
    HeaderChecksum {
        /// Where.
        offset: u64,
    },
    /// Block larger than the frame's maximum.
    #[snafu(display("LZ4 block of {size} bytes exceeds the frame's maximum of {max} bytes"))]
    BlockTooLarge {
        /// Declared size.
        size: u32,
        /// Frame maximum.
        max: u32,
    },
    /// Corrupt block.
    #[snafu(display("corrupt LZ4 block ending at compressed offset {offset}"))]
    Corrupt {
        /// Where.
        offset: u64,
        /// Decoder error.
        source: lz4_flex::block::DecompressError,
    },
    /// Block checksum mismatch.
    #[snafu(display("LZ4 block checksum mismatch at compressed offset {offset}"))]
    BlockChecksum {
        /// Where.
        offset: u64,
    },
    /// Content checksum mismatch.
    #[snafu(display("LZ4 content checksum mismatch at the end of the frame"))]
    ContentChecksum,
    /// Declared content size differs from the decoded size.
    #[snafu(display("LZ4 frame declares {declared} bytes of content but holds {actual}"))]
    ContentSize {
        /// From the header.
        declared: u64,
        /// Decoded.
        actual: u64,
    },
    /// The stream ended in the middle of a frame.
    #[snafu(display("LZ4 stream ends in the middle of a frame"))]
    Truncated,
    /// No frame at all.
    #[snafu(display("LZ4 stream is empty"))]
    Empty,
}

type Result<T, E = Lz4Error> = std::result::Result<T, E>;

/// Fixed properties of one frame, from its descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameInfo {
    /// Blocks do not reference earlier blocks.
    pub block_independent: bool,
    /// Each block carries an xxh32.
    pub block_checksum: bool,
    /// The frame ends with an xxh32 of the content.
    pub content_checksum: bool,
    /// Largest block size.
    pub block_max: u32,
    /// Declared content size.
    pub content_size: Option<u64>,
}

/// What the framer found.
#[derive(Debug)]
pub enum Event {
    /// A frame begins.
    FrameStart(FrameInfo),
    /// A whole block.
    Block {
        /// Block bytes (compressed unless `stored`).
        data: Vec<u8>,
        /// The block is stored uncompressed.
        stored: bool,
        /// Its xxh32, if the frame has block checksums.
        checksum: Option<u32>,
    },
    /// A frame ends.
    FrameEnd {
        /// The content xxh32, if the frame has one.
        content_checksum: Option<u32>,
    },
}

/// Framer state at a block or frame boundary (what a resume record keeps).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Boundary {
    /// Between frames (or at the very start).
    BetweenFrames {
        /// At least one frame has been seen.
        seen_frame: bool,
    },
    /// Inside a frame, before a block header.
    InFrame(FrameInfo),
}

#[derive(Debug)]
enum Phase {
    Magic,
    Descriptor,
    SkipSize,
    Skip(u64),
    BlockHeader(FrameInfo),
    BlockData {
        info: FrameInfo,
        size: u32,
        stored: bool,
    },
    BlockChecksum {
        info: FrameInfo,
        stored: bool,
    },
    ContentChecksum,
}

/// Cuts a compressed stream into frame events. Feed it bytes with [`Framer::feed`].
#[derive(Debug)]
pub struct Framer {
    phase: Phase,
    offset: u64,
    seen_frame: bool,
    small: Vec<u8>,
    block: Option<Vec<u8>>,
}

impl Framer {
    /// A framer at stream offset `offset` in the state `boundary` (both from a resume record, or
    /// `0` and `BetweenFrames { seen_frame: false }` for a fresh stream).
    pub fn resume(boundary: Boundary, offset: u64) -> Self {
        let (phase, seen_frame) = match boundary {
            Boundary::BetweenFrames { seen_frame } => (Phase::Magic, seen_frame),
            Boundary::InFrame(info) => (Phase::BlockHeader(info), true),
        };
        Framer {
            phase,
            offset,
            seen_frame,
            small: Vec::with_capacity(16),
            block: None,
        }
    }

    /// Bytes consumed so far (absolute stream offset).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The boundary state, if the framer is exactly at a block or frame boundary.
    pub fn boundary(&self) -> Option<Boundary> {
        match &self.phase {
            Phase::Magic if self.small.is_empty() => Some(Boundary::BetweenFrames {
                seen_frame: self.seen_frame,
            }),
            Phase::BlockHeader(info) if self.small.is_empty() => Some(Boundary::InFrame(*info)),
            _ => None,
        }
    }

    /// True when the next block needs a buffer ([`Framer::set_buffer`]) before feeding on.
    pub fn needs_buffer(&self) -> bool {
        self.block.is_none()
    }

    /// Gives the framer an (empty, reusable) buffer for the next block.
    pub fn set_buffer(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        self.block = Some(buf);
    }

    /// True when the stream may end here (after at least one complete frame).
    pub fn can_end(&self) -> bool {
        matches!(self.phase, Phase::Magic) && self.small.is_empty() && self.seen_frame
    }

    /// Checks that the stream ended at a legal place.
    pub fn finish(&self) -> Result<()> {
        if self.can_end() {
            Ok(())
        } else if !self.seen_frame && matches!(self.phase, Phase::Magic) && self.small.is_empty() {
            EmptySnafu.fail()
        } else {
            TruncatedSnafu.fail()
        }
    }

    fn take_small(&mut self, input: &mut &[u8], want: usize) -> bool {
        let need = want - self.small.len();
        let n = need.min(input.len());
        self.small.extend_from_slice(&input[..n]);
        *input = &input[n..];
        self.offset += n as u64;
        self.small.len() == want
    }

    /// Consumes bytes from `input` until an event is complete (returned) or `input` is empty
    /// (`None`). A block needs a buffer first (see [`Framer::needs_buffer`]).
    pub fn feed(&mut self, input: &mut &[u8]) -> Result<Option<Event>> {
        loop {
            if input.is_empty() {
                return Ok(None);
            }
            match self.phase {
                Phase::Magic => {
                    let start = self.offset - self.small.len() as u64;
                    if !self.take_small(input, 4) {
                        continue;
                    }
                    let magic = u32::from_le_bytes(self.small[..4].try_into().unwrap_or_default());
                    self.small.clear();
                    if magic == MAGIC {
                        self.phase = Phase::Descriptor;
                    } else if magic & SKIPPABLE_MASK == SKIPPABLE_MAGIC {
                        self.phase = Phase::SkipSize;
                    } else {
                        return BadMagicSnafu {
                            magic,
                            offset: start,
                        }
                        .fail();
                    }
                }
                Phase::Descriptor => {
                    let start = self.offset - self.small.len() as u64;
                    if !self.take_small(input, 2) {
                        continue;
                    }
                    let flg = self.small[0];
                    let bd = self.small[1];
                    ensure!(
                        flg >> 6 == 1,
                        BadDescriptorSnafu {
                            what: "version",
                            offset: start
                        }
                    );
                    ensure!(
                        flg & 0b10 == 0,
                        BadDescriptorSnafu {
                            what: "reserved FLG bit",
                            offset: start
                        }
                    );
                    ensure!(
                        flg & 1 == 0,
                        BadDescriptorSnafu {
                            what: "dictionary ID (not supported)",
                            offset: start
                        }
                    );
                    ensure!(
                        bd & 0b1000_1111 == 0,
                        BadDescriptorSnafu {
                            what: "reserved BD bits",
                            offset: start
                        }
                    );
                    let has_size = flg & 0b1000 != 0;
                    let want = 2 + if has_size { 8 } else { 0 } + 1;
                    if !self.take_small(input, want) {
                        continue;
                    }
                    let hc = self.small[want - 1];
                    let computed = (xxh32_oneshot(&self.small[..want - 1]) >> 8) as u8;
                    ensure!(hc == computed, HeaderChecksumSnafu { offset: start });
                    let block_max = match (bd >> 4) & 7 {
                        4 => 64 << 10,
                        5 => 256 << 10,
                        6 => 1 << 20,
                        7 => 4 << 20,
                        _ => {
                            return BadDescriptorSnafu {
                                what: "block maximum size",
                                offset: start,
                            }
                            .fail();
                        }
                    };
                    let content_size = has_size.then(|| {
                        u64::from_le_bytes(self.small[2..10].try_into().unwrap_or_default())
                    });
                    let info = FrameInfo {
                        block_independent: flg & 0b10_0000 != 0,
                        block_checksum: flg & 0b1_0000 != 0,
                        content_checksum: flg & 0b100 != 0,
                        block_max,
                        content_size,
                    };
                    self.small.clear();
                    self.seen_frame = true;
                    self.phase = Phase::BlockHeader(info);
                    return Ok(Some(Event::FrameStart(info)));
                }
                Phase::SkipSize => {
                    if !self.take_small(input, 4) {
                        continue;
                    }
                    let n = u32::from_le_bytes(self.small[..4].try_into().unwrap_or_default());
                    self.small.clear();
                    self.phase = Phase::Skip(u64::from(n));
                }
                Phase::Skip(left) => {
                    let n = (left.min(input.len() as u64)) as usize;
                    *input = &input[n..];
                    self.offset += n as u64;
                    self.phase = if left - n as u64 == 0 {
                        Phase::Magic
                    } else {
                        Phase::Skip(left - n as u64)
                    };
                }
                Phase::BlockHeader(info) => {
                    if !self.take_small(input, 4) {
                        continue;
                    }
                    let word = u32::from_le_bytes(self.small[..4].try_into().unwrap_or_default());
                    self.small.clear();
                    if word == 0 {
                        if info.content_checksum {
                            self.phase = Phase::ContentChecksum;
                            continue;
                        }
                        self.phase = Phase::Magic;
                        return Ok(Some(Event::FrameEnd {
                            content_checksum: None,
                        }));
                    }
                    let stored = word & 0x8000_0000 != 0;
                    let size = word & 0x7FFF_FFFF;
                    ensure!(
                        size <= info.block_max,
                        BlockTooLargeSnafu {
                            size,
                            max: info.block_max
                        }
                    );
                    self.phase = Phase::BlockData { info, size, stored };
                }
                Phase::BlockData { info, size, stored } => {
                    let Some(block) = self.block.as_mut() else {
                        return Ok(None);
                    };
                    if block.is_empty() {
                        // Exactly the block's size: memory follows the data (no doubling).
                        block.reserve_exact(size as usize);
                    }
                    let need = size as usize - block.len();
                    let n = need.min(input.len());
                    block.extend_from_slice(&input[..n]);
                    *input = &input[n..];
                    self.offset += n as u64;
                    if block.len() < size as usize {
                        continue;
                    }
                    if info.block_checksum {
                        self.phase = Phase::BlockChecksum { info, stored };
                        continue;
                    }
                    self.phase = Phase::BlockHeader(info);
                    let data = self.block.take().unwrap_or_default();
                    return Ok(Some(Event::Block {
                        data,
                        stored,
                        checksum: None,
                    }));
                }
                Phase::BlockChecksum { info, stored } => {
                    if !self.take_small(input, 4) {
                        continue;
                    }
                    let sum = u32::from_le_bytes(self.small[..4].try_into().unwrap_or_default());
                    self.small.clear();
                    self.phase = Phase::BlockHeader(info);
                    let data = self.block.take().unwrap_or_default();
                    return Ok(Some(Event::Block {
                        data,
                        stored,
                        checksum: Some(sum),
                    }));
                }
                Phase::ContentChecksum => {
                    if !self.take_small(input, 4) {
                        continue;
                    }
                    let sum = u32::from_le_bytes(self.small[..4].try_into().unwrap_or_default());
                    self.small.clear();
                    self.phase = Phase::Magic;
                    return Ok(Some(Event::FrameEnd {
                        content_checksum: Some(sum),
                    }));
                }
            }
        }
    }
}

/// Decoder state at a block boundary (what a resume record keeps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecoderState {
    /// Current frame, if inside one.
    pub frame: Option<FrameInfo>,
    /// Decompressed bytes produced so far (all frames).
    pub produced: u64,
    /// Decompressed bytes produced in the current frame.
    pub frame_produced: u64,
    /// Running content checksum of the current frame.
    pub content_hash: Xxh32,
}

/// Decompresses blocks from a [`Framer`].
#[derive(Debug)]
pub struct BlockDecoder {
    state: DecoderState,
    out: Vec<u8>,
    window: Vec<u8>,
}

impl BlockDecoder {
    /// A decoder in `state`; `window` is up to 64 KiB of output just before `state.produced`
    /// (needed only inside a frame with linked blocks).
    pub fn resume(state: DecoderState, window: Vec<u8>) -> Self {
        BlockDecoder {
            state,
            out: Vec::new(),
            window,
        }
    }

    /// A fresh decoder.
    pub fn new() -> Self {
        Self::resume(
            DecoderState {
                frame: None,
                produced: 0,
                frame_produced: 0,
                content_hash: Xxh32::new(0),
            },
            Vec::new(),
        )
    }

    /// Current state (valid after each event).
    pub fn state(&self) -> &DecoderState {
        &self.state
    }

    /// Whether resuming in `boundary` needs the window of earlier output.
    pub fn needs_window(boundary: &Boundary) -> bool {
        matches!(boundary, Boundary::InFrame(info) if !info.block_independent)
    }

    fn check_block(&self, data: &[u8], checksum: Option<u32>, offset: u64) -> Result<FrameInfo> {
        let info = self.state.frame.ok_or(Lz4Error::Truncated)?;
        if let Some(sum) = checksum
            && xxh32_oneshot(data) != sum
        {
            return Err(Lz4Error::BlockChecksum { offset });
        }
        Ok(info)
    }

    /// The first half of [`BlockDecoder::handle`] for a compressed block: checks its checksum and
    /// decompresses it into the decoder's buffer, returning the decoded length; the compressed
    /// bytes are not needed after this (the caller may reuse their buffer while
    /// [`BlockDecoder::emit_decoded`] hashes and hands out the result).
    pub fn decode_block(&mut self, data: &[u8], checksum: Option<u32>, offset: u64) -> Result<usize> {
        let info = self.check_block(data, checksum, offset)?;
        if self.out.len() < info.block_max as usize {
            self.out.resize(info.block_max as usize, 0);
        }
        if info.block_independent || self.window.is_empty() {
            lz4_flex::block::decompress_into(data, &mut self.out)
        } else {
            lz4_flex::block::decompress_into_with_dict(data, &mut self.out, &self.window)
        }
        .map_err(|source| Lz4Error::Corrupt { offset, source })
    }

    /// The second half: the `n` bytes [`BlockDecoder::decode_block`] produced go into the content
    /// checksum, the window and the state, then to `sink`.
    pub fn emit_decoded<E>(
        &mut self,
        n: usize,
        sink: &mut impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), DecodeOrSink<E>> {
        self.emit(None, n, sink)
    }

    /// Accounts for a block's output (`stored` bytes, or the first `n` bytes of the buffer).
    fn emit<E>(
        &mut self,
        stored: Option<&[u8]>,
        n: usize,
        sink: &mut impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), DecodeOrSink<E>> {
        let info = self
            .state
            .frame
            .ok_or(DecodeOrSink::Decode(Lz4Error::Truncated))?;
        let bytes: &[u8] = match stored {
            Some(b) => b,
            None => self
                .out
                .get(..n)
                .ok_or(DecodeOrSink::Decode(Lz4Error::Truncated))?,
        };
        if info.content_checksum {
            self.state.content_hash.update(bytes);
        }
        if !info.block_independent {
            push_window(&mut self.window, bytes);
        }
        self.state.produced += bytes.len() as u64;
        self.state.frame_produced += bytes.len() as u64;
        sink(bytes).map_err(DecodeOrSink::Sink)
    }

    /// Handles one event; decompressed bytes (if any) go to `sink`. `offset` is the compressed
    /// offset just after the event (for error messages).
    pub fn handle<E>(
        &mut self,
        event: &Event,
        offset: u64,
        sink: &mut impl FnMut(&[u8]) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), DecodeOrSink<E>> {
        match event {
            Event::FrameStart(info) => {
                self.state.frame = Some(*info);
                self.state.frame_produced = 0;
                self.state.content_hash = Xxh32::new(0);
                self.window.clear();
                if self.out.len() < info.block_max as usize {
                    self.out.resize(info.block_max as usize, 0);
                }
            }
            Event::Block {
                data,
                stored,
                checksum,
            } => {
                if *stored {
                    self.check_block(data, *checksum, offset)
                        .map_err(DecodeOrSink::Decode)?;
                    self.emit(Some(data), 0, sink)?;
                } else {
                    let n = self
                        .decode_block(data, *checksum, offset)
                        .map_err(DecodeOrSink::Decode)?;
                    self.emit(None, n, sink)?;
                }
            }
            Event::FrameEnd { content_checksum } => {
                let info = self
                    .state
                    .frame
                    .ok_or(DecodeOrSink::Decode(Lz4Error::Truncated))?;
                if let Some(sum) = content_checksum
                    && self.state.content_hash.digest() != *sum
                {
                    return Err(DecodeOrSink::Decode(Lz4Error::ContentChecksum));
                }
                if let Some(declared) = info.content_size
                    && declared != self.state.frame_produced
                {
                    return Err(DecodeOrSink::Decode(Lz4Error::ContentSize {
                        declared,
                        actual: self.state.frame_produced,
                    }));
                }
                self.state.frame = None;
                self.window.clear();
            }
        }
        Ok(())
    }
}

impl Default for BlockDecoder {
    fn default() -> Self {
        Self::new()
    }
}

fn push_window(window: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.len() >= WINDOW {
        window.clear();
        window.extend_from_slice(&bytes[bytes.len() - WINDOW..]);
        return;
    }
    let keep = WINDOW - bytes.len();
    if window.len() > keep {
        window.drain(..window.len() - keep);
    }
    window.extend_from_slice(bytes);
}

/// A decode error or an error of the caller's sink.
#[derive(Debug)]
pub enum DecodeOrSink<E> {
    /// The stream is bad.
    Decode(Lz4Error),
    /// The sink failed.
    Sink(E),
}

// --- xxh32 with a serialisable state --------------------------------------------------------

const P1: u32 = 0x9E37_79B1;
const P2: u32 = 0x85EB_CA77;
const P3: u32 = 0xC2B2_AE3D;
const P4: u32 = 0x27D4_EB2F;
const P5: u32 = 0x1656_67B1;

/// Streaming xxh32 whose state can be saved in a resume record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Xxh32 {
    seed: u32,
    v: [u32; 4],
    total: u64,
    buf: Vec<u8>,
}

fn round(acc: u32, input: u32) -> u32 {
    acc.wrapping_add(input.wrapping_mul(P2))
        .rotate_left(13)
        .wrapping_mul(P1)
}

impl Xxh32 {
    /// A fresh hasher.
    pub fn new(seed: u32) -> Self {
        Xxh32 {
            seed,
            v: [
                seed.wrapping_add(P1).wrapping_add(P2),
                seed.wrapping_add(P2),
                seed,
                seed.wrapping_sub(P1),
            ],
            total: 0,
            buf: Vec::with_capacity(16),
        }
    }

    fn stripe(v: &mut [u32; 4], s: &[u8]) {
        for (i, lane) in v.iter_mut().enumerate() {
            let w = u32::from_le_bytes([s[i * 4], s[i * 4 + 1], s[i * 4 + 2], s[i * 4 + 3]]);
            *lane = round(*lane, w);
        }
    }

    /// Adds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if !self.buf.is_empty() {
            let n = (16 - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() < 16 {
                return;
            }
            let b = std::mem::take(&mut self.buf);
            Self::stripe(&mut self.v, &b);
            self.buf = b;
            self.buf.clear();
        }
        let mut chunks = data.chunks_exact(16);
        for c in &mut chunks {
            Self::stripe(&mut self.v, c);
        }
        self.buf.extend_from_slice(chunks.remainder());
    }

    /// The digest of everything added.
    pub fn digest(&self) -> u32 {
        let mut h = if self.total >= 16 {
            self.v[0]
                .rotate_left(1)
                .wrapping_add(self.v[1].rotate_left(7))
                .wrapping_add(self.v[2].rotate_left(12))
                .wrapping_add(self.v[3].rotate_left(18))
        } else {
            self.seed.wrapping_add(P5)
        };
        h = h.wrapping_add(self.total as u32);
        let mut rest = &self.buf[..];
        while rest.len() >= 4 {
            let w = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            h = h
                .wrapping_add(w.wrapping_mul(P3))
                .rotate_left(17)
                .wrapping_mul(P4);
            rest = &rest[4..];
        }
        for &b in rest {
            h = h
                .wrapping_add(u32::from(b).wrapping_mul(P5))
                .rotate_left(11)
                .wrapping_mul(P1);
        }
        h ^= h >> 15;
        h = h.wrapping_mul(P2);
        h ^= h >> 13;
        h = h.wrapping_mul(P3);
        h ^= h >> 16;
        h
    }
}

/// xxh32 of `data` with seed 0.
pub fn xxh32_oneshot(data: &[u8]) -> u32 {
    let mut h = Xxh32::new(0);
    h.update(data);
    h.digest()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn xxh32_vectors() {
        assert_eq!(xxh32_oneshot(b""), 0x02CC_5D05);
        assert_eq!(xxh32_oneshot(b"a"), 0x550D_7456);
        assert_eq!(xxh32_oneshot(b"abc"), 0x32D1_53FF);
        let long: Vec<u8> = (0..1000u32).map(|i| (i * 7) as u8).collect();
        // Incremental in odd pieces equals one shot.
        let mut h = Xxh32::new(0);
        for piece in long.chunks(7) {
            h.update(piece);
        }
        assert_eq!(h.digest(), xxh32_oneshot(&long));
    }

    fn decode_all(compressed: &[u8], piece: usize) -> Result<Vec<u8>> {
        let mut framer = Framer::resume(Boundary::BetweenFrames { seen_frame: false }, 0);
        let mut dec = BlockDecoder::new();
        let mut out = Vec::new();
        for mut chunk in compressed.chunks(piece) {
            while !chunk.is_empty() {
                if framer.needs_buffer() {
                    framer.set_buffer(Vec::new());
                }
                if let Some(ev) = framer.feed(&mut chunk)? {
                    dec.handle(&ev, framer.offset(), &mut |b: &[u8]| -> Result<(), ()> {
                        out.extend_from_slice(b);
                        Ok(())
                    })
                    .map_err(|e| match e {
                        DecodeOrSink::Decode(d) => d,
                        DecodeOrSink::Sink(()) => unreachable!(),
                    })?;
                }
            }
        }
        framer.finish()?;
        Ok(out)
    }

    #[test]
    fn decodes_lz4_flex_frames_in_any_piece_size() {
        use std::io::Write;
        let data: Vec<u8> = (0..300_000u32).map(|i| ((i / 3) % 251) as u8).collect();
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(&data).unwrap();
        let compressed = enc.finish().unwrap();
        for piece in [1, 5, 4096, 1 << 20] {
            assert_eq!(
                decode_all(&compressed, piece).unwrap(),
                data,
                "piece {piece}"
            );
        }
        // Truncation is reported, not silently accepted.
        let e = decode_all(&compressed[..compressed.len() - 3], 4096).unwrap_err();
        assert!(matches!(e, Lz4Error::Truncated), "{e}");
        // A flipped byte in the header is caught by the header checksum.
        let mut bad = compressed.clone();
        bad[5] ^= 0x40;
        assert!(decode_all(&bad, 4096).is_err());
    }
}
