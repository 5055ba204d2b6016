//! Progress reporting: the library calls a [`Reporter`]; only the binary draws or prints.

use serde::Serialize;

/// Something that happened during a long operation.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event<'a> {
    /// The repository's metadata was loaded and verified.
    RepositoryLoaded {
        /// Metadata URL.
        metadata_url: &'a str,
        /// Root version after walking the chain.
        root_version: u64,
        /// Number of targets listed.
        targets: usize,
    },
    /// The targets to copy were chosen.
    TargetsPlanned {
        /// How many.
        count: usize,
        /// Their total size.
        bytes: u64,
    },
    /// A target already present and verified was kept.
    TargetReused {
        /// Target name.
        name: &'a str,
        /// Size.
        bytes: u64,
    },
    /// A target was downloaded and verified.
    TargetFetched {
        /// Target name.
        name: &'a str,
        /// Size.
        bytes: u64,
    },
    /// A file was verified (import, verify-mirror).
    FileVerified {
        /// Path relative to the mirror.
        path: &'a str,
        /// Size.
        bytes: u64,
    },
    /// A file was added to an archive (export) or unpacked (import).
    FileArchived {
        /// Path relative to the mirror.
        path: &'a str,
        /// Size.
        bytes: u64,
    },
}

/// Receives progress events. Implementations must be cheap and must not fail.
pub trait Reporter: Send + Sync {
    /// Called for each event.
    fn report(&self, event: &Event<'_>);
}

/// Discards every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn report(&self, _event: &Event<'_>) {}
}
