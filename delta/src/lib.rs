//! abos-delta: the **abos-chunked** format (v2) for block-reuse (delta) updates of root images.
//!
//! This crate owns the format and both of its sides, as pure functions and narrow I/O edges:
//! - [`chunker`]: content-defined chunking on 4 KiB boundaries (cuts survive content shifts);
//! - [`index`]: the index (magic, JSON header, compact varint entries), parsed and checked;
//! - [`publish`]: image → chunk file + index (pubsys publishes both as TUF targets);
//! - [`local`]: what the host already has (its sources, chunked with the index's parameters);
//! - [`plan`]: copy or fetch per chunk, coalesced Range requests, delta-or-full decision;
//! - [`fetch`]: chunk file ranges over HTTP Range or from a file;
//! - [`execute`]: writes the image to any [`execute::Target`], re-hashing every chunk.
//!
//! The format is described in `delta/README.md`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use abos_delta::{LocalIndex, Params, Plan, plan::Options, fetch::FileFetch};
//! let dir = tempfile::tempdir()?;
//! let old: Vec<u8> = (0..2_000_000u32).map(|i| (i * 7 / 4096) as u8).collect();
//! let mut new = old.clone();
//! new[1_000_000] ^= 1;
//! // Publish the new image.
//! let mut chunks = Vec::new();
//! let index = abos_delta::publish::chunk_image(&new[..], &mut chunks, Params::default())?;
//! std::fs::write(dir.path().join("root.chunks"), &chunks)?;
//! // On the host: index the old image, plan, execute.
//! std::fs::write(dir.path().join("old"), &old)?;
//! let mut local = LocalIndex::new();
//! local.add_source(&old[..], index.header.chunking, "old")?;
//! let plan = Plan::new(&index, &local, Options::default());
//! assert!(plan.fetch_image_bytes < 300_000);
//! let sources = [std::fs::File::open(dir.path().join("old"))?];
//! let mut fetch = FileFetch::open(&dir.path().join("root.chunks"))?;
//! let mut out = std::io::Cursor::new(Vec::new());
//! abos_delta::execute::execute(&index, &plan, &sources, &mut fetch, &mut out, None).await?;
//! assert_eq!(out.into_inner(), new);
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod chunker;
pub mod error;
pub mod execute;
pub mod fetch;
pub mod index;
pub mod local;
pub mod plan;
pub mod publish;

pub use chunker::Params;
pub use error::{Error, Result};
pub use index::Index;
pub use local::LocalIndex;
pub use plan::{Decision, Plan};
