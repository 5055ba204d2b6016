//! The crate's one error type.

use snafu::Snafu;
use std::path::PathBuf;

/// Errors of chunking, index parsing, planning and executing a delta.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// Reading the image (or a local source) failed.
    #[snafu(display("failed to read {what}"))]
    Read {
        /// What was read.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Writing the chunk file, the target or the progress record failed.
    #[snafu(display("failed to write {what}"))]
    Write {
        /// What was written.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Opening or creating a file failed.
    #[snafu(display("failed to open {}", path.display()))]
    Open {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The index is not a valid abos-chunked index (v2).
    #[snafu(display("invalid abos-chunked index at byte {offset}: {reason}"))]
    BadIndex {
        /// Byte offset in the index where the problem is.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The index header is not the JSON we expect.
    #[snafu(display("invalid abos-chunked index header"))]
    IndexHeader {
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A fetched chunk does not decompress.
    #[snafu(display(
        "chunk {chunk} (chunk file bytes {start}..{end}) does not decompress: {reason}"
    ))]
    Decompress {
        /// Chunk number in the index.
        chunk: usize,
        /// Start of its range in the chunk file.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// The decoder's message.
        reason: String,
    },
    /// A fetched chunk's content does not have the hash the index gives.
    #[snafu(display(
        "chunk {chunk} (image bytes {offset}..{}) fetched from the chunk file has SHA-256 {actual}, the index says {expected}",
        offset + len
    ))]
    ChunkHash {
        /// Chunk number in the index.
        chunk: usize,
        /// Offset in the image.
        offset: u64,
        /// Length.
        len: u64,
        /// Hash in the index.
        expected: String,
        /// Hash of what was fetched.
        actual: String,
    },
    /// The written image does not have the image hash the index gives.
    #[snafu(display("the image written has SHA-256 {actual}, the index says {expected}"))]
    ImageHash {
        /// Hash in the index.
        expected: String,
        /// Hash of the chunks written.
        actual: String,
    },
    /// An HTTP request failed.
    #[snafu(display("failed to fetch {url} bytes {start}..{end}"))]
    Http {
        /// The URL.
        url: String,
        /// Start of the range.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// reqwest's error.
        source: reqwest::Error,
    },
    /// The server answered a Range request with something other than 206 (e.g. 200: it ignores
    /// Range). The caller falls back to the full artifact.
    #[snafu(display("{url} answered a Range request for bytes {start}..{end} with HTTP {status}"))]
    RangeRefused {
        /// The URL.
        url: String,
        /// Start.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// Status code.
        status: u16,
    },
    /// A range came back shorter (or longer) than asked: a truncated or replaced chunk file.
    #[snafu(display("{what} gave {got} bytes for bytes {start}..{end} (truncated chunk file?)"))]
    ShortRange {
        /// Where from.
        what: String,
        /// Start.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// Bytes received.
        got: u64,
    },
    /// A fetcher outside this crate failed (e.g. updog's HTTP client after its retries); the
    /// caller that supplied the fetcher keeps the detailed error.
    #[snafu(display("fetching chunk file bytes {start}..{end} failed: {reason}"))]
    Fetch {
        /// Start.
        start: u64,
        /// End (exclusive).
        end: u64,
        /// The fetcher's message.
        reason: String,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
