//! Progress reporting: the library calls a [`Reporter`]; only the binary draws or prints.

use serde::Serialize;

/// Which image of a partition set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ImageKind {
    /// The root filesystem.
    Root,
    /// The boot filesystem.
    Boot,
    /// The dm-verity hash tree.
    Hash,
}

impl std::fmt::Display for ImageKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageKind::Root => "root",
            ImageKind::Boot => "boot",
            ImageKind::Hash => "hash",
        })
    }
}

/// Steps of a command, in the order an update runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Step {
    /// Loading and verifying TUF metadata.
    LoadMetadata,
    /// Marking the inactive set unbootable.
    ClearInactive,
    /// Fetching and caching migrations and manifest.json.
    FetchMigrations,
    /// Writing the images.
    WriteImages,
    /// Verifying the written partitions.
    Verify,
    /// Marking the inactive set valid.
    MarkValid,
    /// Waiting for a reboot slot of the host's fleet group.
    AcquireSlot,
    /// Making the inactive set the next to boot.
    Activate,
    /// Running the reboot command.
    Reboot,
}

/// One progress event (serialised as a JSON line by `--json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum ProgressEvent {
    /// A step begins.
    Step {
        /// Which.
        step: Step,
    },
    /// An image download begins (or resumes at `resumed_at` compressed bytes).
    ImageStart {
        /// Which image.
        image: ImageKind,
        /// TUF target name.
        target: String,
        /// Signed compressed length.
        total: u64,
        /// Compressed bytes already done by an earlier run.
        resumed_at: u64,
    },
    /// Progress of the current image.
    ImageProgress {
        /// Which image.
        image: ImageKind,
        /// Compressed bytes received (including resumed ones).
        received: u64,
        /// Signed compressed length.
        total: u64,
        /// Decompressed bytes written to the partition.
        written: u64,
    },
    /// An image is complete.
    ImageDone {
        /// Which image.
        image: ImageKind,
        /// Decompressed bytes written.
        written: u64,
    },
    /// How the root image is written: from a delta (reusing the running root's blocks) or the
    /// full image, and why not a delta. Reported before the root image starts.
    Delta {
        /// `delta` or `full`.
        method: String,
        /// Why the full image is used (absent for `delta`).
        #[serde(skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Bytes the delta plan downloads (index + ranges), when a plan was made.
        #[serde(skip_serializing_if = "Option::is_none")]
        planned_fetch_bytes: Option<u64>,
        /// Image bytes reused from the running root, when a plan was made.
        #[serde(skip_serializing_if = "Option::is_none")]
        reuse_bytes: Option<u64>,
        /// The full image's (compressed) length.
        full_bytes: u64,
    },
    /// A request failed and will be retried.
    Retry {
        /// URL.
        url: String,
        /// Attempt number that failed (1-based).
        attempt: u32,
        /// Wait before the next attempt.
        delay_ms: u64,
        /// Why.
        reason: String,
    },
}

/// Receives progress events. Called from the download and the writer threads.
pub trait Reporter: Send + Sync {
    /// One event.
    fn report(&self, event: ProgressEvent);
}

/// A reporter that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NullReporter;

impl Reporter for NullReporter {
    fn report(&self, _event: ProgressEvent) {}
}

/// A reporter that keeps events in memory (for tests and callers that want a log).
#[derive(Debug, Default)]
pub struct RecordingReporter {
    events: std::sync::Mutex<Vec<ProgressEvent>>,
}

impl RecordingReporter {
    /// Everything reported so far.
    pub fn events(&self) -> Vec<ProgressEvent> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }
}

impl Reporter for RecordingReporter {
    fn report(&self, event: ProgressEvent) {
        if let Ok(mut e) = self.events.lock() {
            e.push(event);
        }
    }
}
