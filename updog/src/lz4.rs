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
use std::hash::Hasher as _;
use twox_hash::XxHash32;

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
    pub content_hash: ContentHash,
}

/// Decompresses blocks from a [`Framer`].
#[derive(Debug)]
pub struct BlockDecoder {
    state: DecoderState,
    out: Vec<u8>,
    window: Vec<u8>,
    /// Compute and check the frames' content checksums (xxh32 of the output).
    content_checks: bool,
}

impl BlockDecoder {
    /// A decoder in `state`; `window` is up to 64 KiB of output just before `state.produced`
    /// (needed only inside a frame with linked blocks).
    pub fn resume(state: DecoderState, window: Vec<u8>) -> Self {
        BlockDecoder {
            state,
            out: Vec::new(),
            window,
            content_checks: true,
        }
    }

    /// Neither computes nor checks the frames' content checksums, for output that is checked
    /// block by block against something stronger anyway (the root image against its dm-verity
    /// tree): the xxh32 would cost a pass over every byte and prove nothing more. Block
    /// checksums, sizes and the frame structure are still checked.
    pub fn without_content_checksums(mut self) -> Self {
        self.content_checks = false;
        self
    }

    /// A fresh decoder.
    pub fn new() -> Self {
        Self::resume(
            DecoderState {
                frame: None,
                produced: 0,
                frame_produced: 0,
                content_hash: ContentHash::new(),
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
    pub fn decode_block(
        &mut self,
        data: &[u8],
        checksum: Option<u32>,
        offset: u64,
    ) -> Result<usize> {
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
        if info.content_checksum && self.content_checks {
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
                self.state.content_hash = ContentHash::new();
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
                    && self.content_checks
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

/// The running xxh32 of a frame's content: twox-hash's hasher, whose state (lanes, byte count,
/// the buffered tail) serialises into the resume record.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ContentHash(XxHash32);

// Every field of the state is an integer: equality is total.
impl Eq for ContentHash {}

impl ContentHash {
    /// A fresh hasher (seed 0, as the LZ4 frame format uses).
    pub fn new() -> Self {
        ContentHash(XxHash32::with_seed(0))
    }

    /// Adds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.0.write(data);
    }

    /// The digest of everything added.
    pub fn digest(&self) -> u32 {
        self.0.finish_32()
    }
}

impl Default for ContentHash {
    fn default() -> Self {
        Self::new()
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        // twox-hash uses `buffer_usage` as an index into its 16-byte buffer without a check (a
        // damaged record saying 17 would panic on the next update): it must be what the byte
        // count implies before the state is handed over.
        let value = serde_json::Value::deserialize(d)?;
        let total = value.get("total_len").and_then(serde_json::Value::as_u64);
        let used = value
            .get("buffer_usage")
            .and_then(serde_json::Value::as_u64);
        match (total, used) {
            (Some(total), Some(used)) if used == total % 16 => {}
            _ => {
                return Err(D::Error::custom(format!(
                    "xxh32 state: buffer_usage {used:?} does not match total_len {total:?}"
                )));
            }
        }
        serde_json::from_value(value)
            .map(ContentHash)
            .map_err(D::Error::custom)
    }
}

/// xxh32 of `data` with seed 0.
pub fn xxh32_oneshot(data: &[u8]) -> u32 {
    XxHash32::oneshot(0, data)
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
        let mut h = ContentHash::new();
        for piece in long.chunks(7) {
            h.update(piece);
        }
        assert_eq!(h.digest(), xxh32_oneshot(&long));
    }

    fn decode_all(compressed: &[u8], piece: usize) -> Result<Vec<u8>> {
        decode_all_with(compressed, piece, BlockDecoder::new())
    }

    fn decode_all_with(compressed: &[u8], piece: usize, mut dec: BlockDecoder) -> Result<Vec<u8>> {
        let mut framer = Framer::resume(Boundary::BetweenFrames { seen_frame: false }, 0);
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

    /// A frame of stored (uncompressed) blocks with a content checksum: every content byte is
    /// a frame byte, so a flipped byte reaches the content checksum and nothing else.
    fn stored_frame(blocks: &[&[u8]]) -> Vec<u8> {
        // FLG: version 01, independent blocks, content checksum; BD: 64 KiB blocks.
        let descriptor = [0b0110_0100u8, 0x40];
        let mut f = MAGIC.to_le_bytes().to_vec();
        f.extend_from_slice(&descriptor);
        f.push((xxh32_oneshot(&descriptor) >> 8) as u8);
        let mut content = Vec::new();
        for b in blocks {
            f.extend_from_slice(&(b.len() as u32 | 0x8000_0000).to_le_bytes());
            f.extend_from_slice(b);
            content.extend_from_slice(b);
        }
        f.extend_from_slice(&0u32.to_le_bytes());
        f.extend_from_slice(&xxh32_oneshot(&content).to_le_bytes());
        f
    }

    /// Odd-sized blocks, so the hasher holds a partial 16-byte stripe at each boundary.
    fn three_blocks() -> Vec<Vec<u8>> {
        [1001usize, 777, 30]
            .iter()
            .enumerate()
            .map(|(k, &n)| (0..n).map(|i| (i * 31 + k * 7) as u8).collect())
            .collect()
    }

    #[test]
    fn content_checksum_refuses_a_flipped_content_byte() {
        let blocks = three_blocks();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        let frame = stored_frame(&refs);
        assert_eq!(decode_all(&frame, 100).unwrap(), blocks.concat());
        // The first content byte of the second block (after header, block 1 and its size).
        let mut bad = frame.clone();
        bad[7 + 4 + 1001 + 4] ^= 0x01;
        let e = decode_all(&bad, 100).unwrap_err();
        assert!(matches!(e, Lz4Error::ContentChecksum), "{e}");
        // Without content checksums (the root image, checked against its tree instead) the
        // changed byte passes here; the frame structure is still checked.
        let skip = || BlockDecoder::new().without_content_checksums();
        let mut changed = blocks.concat();
        changed[1001] ^= 0x01;
        assert_eq!(decode_all_with(&bad, 100, skip()).unwrap(), changed);
        assert!(decode_all_with(&bad[..bad.len() - 6], 100, skip()).is_err());
    }

    /// Decodes `frame` up to the boundary after `stop_after` blocks, saves both states through
    /// JSON as a resume record does, and decodes the rest with fresh halves.
    fn decode_with_resume(frame: &[u8], stop_after: usize) -> Result<Vec<u8>> {
        let mut framer = Framer::resume(Boundary::BetweenFrames { seen_frame: false }, 0);
        let mut dec = BlockDecoder::new();
        let mut out = Vec::new();
        let mut input = frame;
        let mut blocks = 0;
        let mut sink = |b: &[u8]| -> Result<(), ()> {
            out.extend_from_slice(b);
            Ok(())
        };
        let unwrap = |e: DecodeOrSink<()>| match e {
            DecodeOrSink::Decode(d) => d,
            DecodeOrSink::Sink(()) => unreachable!(),
        };
        while blocks < stop_after {
            if framer.needs_buffer() {
                framer.set_buffer(Vec::new());
            }
            let ev = framer.feed(&mut input)?.expect("event");
            blocks += usize::from(matches!(ev, Event::Block { .. }));
            dec.handle(&ev, framer.offset(), &mut sink)
                .map_err(unwrap)?;
        }
        let saved = serde_json::to_string(&(framer.boundary(), dec.state(), framer.offset()))
            .expect("serialise");
        drop((framer, dec));
        let (boundary, state, offset): (Option<Boundary>, DecoderState, u64) =
            serde_json::from_str(&saved).expect("deserialise");
        assert!(state.content_hash.0.total_len() > 0, "{saved}");
        let mut framer = Framer::resume(boundary.expect("at a boundary"), offset);
        let mut dec = BlockDecoder::resume(state, Vec::new());
        while !input.is_empty() {
            if framer.needs_buffer() {
                framer.set_buffer(Vec::new());
            }
            if let Some(ev) = framer.feed(&mut input)? {
                dec.handle(&ev, framer.offset(), &mut sink)
                    .map_err(unwrap)?;
            }
        }
        framer.finish()?;
        Ok(out)
    }

    #[test]
    fn content_checksum_holds_across_a_resume_from_json() {
        let blocks = three_blocks();
        let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
        let frame = stored_frame(&refs);
        for stop_after in [1, 2] {
            assert_eq!(
                decode_with_resume(&frame, stop_after).unwrap(),
                blocks.concat()
            );
        }
        // A byte flipped before the checkpoint (hashed by the first run) and one after it (by
        // the resumed run) are both refused at the end of the frame.
        for at in [7 + 4 + 10, 7 + 4 + 1001 + 4 + 700] {
            let mut bad = frame.clone();
            bad[at] ^= 0x80;
            let e = decode_with_resume(&bad, 1).unwrap_err();
            assert!(matches!(e, Lz4Error::ContentChecksum), "byte {at}: {e}");
        }
    }

    #[test]
    fn damaged_hash_state_is_an_error_not_a_panic() {
        let mut h = ContentHash::new();
        h.update(&[7; 21]);
        let good = serde_json::to_value(&h).unwrap();
        assert_eq!(good["buffer_usage"], 5, "{good}");
        let back: ContentHash = serde_json::from_value(good.clone()).unwrap();
        assert_eq!(back, h);
        for (field, value) in [("buffer_usage", 17), ("buffer_usage", 4), ("total_len", 22)] {
            let mut bad = good.clone();
            bad[field] = value.into();
            let e = serde_json::from_value::<ContentHash>(bad).unwrap_err();
            assert!(
                e.to_string().contains("xxh32 state"),
                "{field}={value}: {e}"
            );
        }
        // The hand-written hasher's state (resume records of format 2) is not read as one.
        let old =
            serde_json::json!({"seed": 0, "v": [1, 2, 3, 4], "total": 21, "buf": [7, 7, 7, 7, 7]});
        assert!(serde_json::from_value::<ContentHash>(old).is_err());
    }
}
