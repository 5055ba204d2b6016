//! pubsys: publishes OS releases into TUF repositories and keeps those repositories healthy.
//!
//! What this crate owns (see STYLE.md's crate map):
//! - [`release`]: adding a release (three images, optional migrations and extra targets) to a new
//!   or existing repository, with `manifest.json` updated (update entry, max_version, migrations,
//!   waves) and everything signed and written in the safe order ([`repo`]).
//! - [`validate`], [`expirations`], [`refresh`], [`yank`]: checking every target, reporting
//!   expiry, re-signing with new expirations, and pulling a bad release back.
//! - [`manifest_edit`]: the command-line manifest editor (Bottlerocket's `updata`).
//! - Seams: [`keys::KeySpec`] (where signing keys come from) and [`store::RepoStore`] (where the
//!   repository is written). "Now" is always a parameter.
//!
//! The manifest schema belongs to `update-metadata` and the wave math to `waves`; TUF is tough.
//!
//! ```no_run
//! # async fn demo() -> pubsys::Result<()> {
//! use pubsys::repo::{LoadOptions, RepoSource};
//! let (root, _) = pubsys::repo::read_root(std::path::Path::new("root.json"))?;
//! let source = RepoSource::new(
//!     "file:///srv/repo/metadata/aws-dev/x86_64/".parse().unwrap(),
//!     "file:///srv/repo/targets/".parse().unwrap(),
//! );
//! let report = pubsys::validate::validate(&root, &source, &LoadOptions::default(), &pubsys::NoReporter).await?;
//! assert_eq!(report.failed, 0);
//! # Ok(()) }
//! ```
//!
//! Tests: `cargo test -p pubsys` (interop tests need `tuftool` on PATH and python-tuf; they print
//! `SKIP:` when missing, and fail under `CI=true`). Benchmarks: `cargo test -p pubsys --release
//! --test bench -- --ignored --nocapture`.
#![deny(missing_docs)]

pub mod cli;
pub mod commands;
pub mod delta;
pub mod error;
mod exit_table;
pub mod expirations;
pub mod infra;
pub mod keys;
pub mod manifest_edit;
pub mod policy;
pub mod refresh;
pub mod release;
pub mod repo;
pub mod store;
pub mod validate;
pub mod yank;

pub use error::{Error, ExitStatus, Result};

/// A stage of a long operation, for progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Loading and verifying the existing repository.
    LoadingRepository,
    /// Hashing the files to publish.
    HashingTargets,
    /// Signing metadata.
    Signing,
    /// Writing target files.
    WritingTargets,
    /// Writing metadata (timestamp last).
    WritingMetadata,
    /// Downloading and verifying targets.
    VerifyingTargets,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::LoadingRepository => "loading repository",
            Phase::HashingTargets => "hashing targets",
            Phase::Signing => "signing",
            Phase::WritingTargets => "writing targets",
            Phase::WritingMetadata => "writing metadata",
            Phase::VerifyingTargets => "verifying targets",
        })
    }
}

/// Progress sink. Libraries call it; only the binary draws (a bar on a tty, JSON lines, nothing).
pub trait Reporter: Send + Sync {
    /// A new phase began.
    fn phase(&self, _phase: Phase) {}
    /// A byte-counted task of `total_bytes` over `items` items started.
    fn start(&self, _items: usize, _total_bytes: u64) {}
    /// `bytes` more bytes were processed.
    fn advance(&self, _bytes: u64) {}
    /// One item finished (`ok` false if it failed).
    fn item_done(&self, _name: &str, _ok: bool) {}
    /// The byte-counted task finished.
    fn finish(&self) {}
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;
impl Reporter for NoReporter {}
