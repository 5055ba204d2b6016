//! The crate's one error enum: every variant names the URL or path it is about.

use snafu::Snafu;
use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong while locating, loading, editing or reading a repository.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// The current directory is needed to make a relative path absolute and cannot be read.
    #[snafu(display("Failed to resolve the current directory for '{}'", path.display()))]
    CurrentDir {
        /// The relative path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// A path cannot be expressed as a `file://` URL.
    #[snafu(display("Cannot make a file:// URL from '{}'", path.display()))]
    PathUrl {
        /// The path.
        path: PathBuf,
    },

    /// The trusted root file cannot be read.
    #[snafu(display("Failed to read trusted root '{}'", path.display()))]
    ReadRoot {
        /// The root file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// The trusted root is not root metadata.
    #[snafu(display("Failed to parse trusted root '{origin}'"))]
    ParseRoot {
        /// Where the root came from (a path or URL).
        origin: String,
        /// Cause.
        source: serde_json::Error,
    },

    /// The persistent datastore directory cannot be created.
    #[snafu(display("Failed to create datastore directory '{}'", path.display()))]
    Datastore {
        /// The directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// There is no repository at the URL: `timestamp.json` is missing.
    #[snafu(display("No repository found at {metadata_url} (timestamp.json is missing)"))]
    Missing {
        /// Metadata base URL.
        metadata_url: String,
    },

    /// The repository's metadata has expired and the policy is [`crate::Expiry::Safe`].
    #[snafu(display("Repository at {metadata_url} has expired {role} metadata"))]
    Expired {
        /// Metadata base URL.
        metadata_url: String,
        /// The role that expired first.
        role: String,
        /// Cause.
        source: Box<tough::error::Error>,
    },

    /// The repository could not be fetched or failed verification.
    #[snafu(display("Failed to load repository from {metadata_url}"))]
    Load {
        /// Metadata base URL.
        metadata_url: String,
        /// Cause.
        source: Box<tough::error::Error>,
    },

    /// A name is not a valid TUF target name.
    #[snafu(display("'{name}' is not a valid target name"))]
    TargetName {
        /// The name.
        name: String,
        /// Cause.
        source: Box<tough::error::Error>,
    },

    /// The repository does not list a target the caller needs.
    #[snafu(display("Repository at {metadata_url} has no {name} target"))]
    TargetMissing {
        /// Target name.
        name: String,
        /// Metadata base URL.
        metadata_url: String,
    },

    /// A target is listed larger than the caller is willing to read into memory.
    #[snafu(display(
        "Target '{name}' at {targets_url} is {length} bytes, more than the {max} byte limit"
    ))]
    TargetTooLarge {
        /// Target name.
        name: String,
        /// Targets base URL.
        targets_url: String,
        /// Signed length.
        length: u64,
        /// Limit.
        max: u64,
    },

    /// A target could not be fetched, or its bytes do not match the signed length and hashes.
    #[snafu(display("Failed to read target '{name}' from {targets_url}"))]
    ReadTarget {
        /// Target name.
        name: String,
        /// Targets base URL.
        targets_url: String,
        /// Cause.
        source: Box<tough::error::Error>,
    },

    /// `manifest.json` from the repository does not parse.
    #[snafu(display("Failed to parse manifest.json from {metadata_url}"))]
    ParseManifest {
        /// Metadata base URL.
        metadata_url: String,
        /// Cause.
        source: Box<update_metadata::Error>,
    },

    /// The loaded root cannot be staged as a file for tough's editor.
    #[snafu(display("Failed to {action} '{}'", path.display()))]
    StageRoot {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// The loaded root cannot be serialised for tough's editor.
    #[snafu(display("Failed to serialise the repository's root for editing"))]
    SerializeRoot {
        /// Cause.
        source: serde_json::Error,
    },

    /// tough's editor refused the repository or the root.
    #[snafu(display("Failed to prepare repository edit"))]
    Editor {
        /// Cause.
        source: Box<tough::error::Error>,
    },
}

impl Error {
    /// True if tough's report (anywhere in the cause chain) says the bytes did not match the
    /// signed hash or length: tough reports those through its transport stream.
    pub fn is_content_mismatch(&self) -> bool {
        let mut current: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = current {
            if let Some(t) = e.downcast_ref::<tough::error::Error>()
                && matches!(
                    t,
                    tough::error::Error::HashMismatch { .. }
                        | tough::error::Error::MaxSizeExceeded { .. }
                )
            {
                return true;
            }
            current = e.source();
        }
        false
    }

    /// True if the failure is the transport's (connection, server error, missing file) rather
    /// than a verification failure.
    pub fn is_transport(&self) -> bool {
        match self {
            Error::Missing { .. } => true,
            Error::Load { source, .. } | Error::ReadTarget { source, .. } => {
                !self.is_content_mismatch()
                    && matches!(source.as_ref(), tough::error::Error::Transport { .. })
            }
            _ => false,
        }
    }
}
