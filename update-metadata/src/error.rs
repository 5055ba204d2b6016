//! The update-metadata crate's error type.

use std::path::PathBuf;

use semver::Version;
use snafu::Snafu;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, editing or checking update metadata.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// A variant name that is not `[a-z0-9][a-z0-9._-]*`.
    #[snafu(display("invalid variant {value:?}: {reason}"))]
    InvalidVariant {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// An architecture other than `x86_64` or `aarch64`.
    #[snafu(display("invalid arch {value:?}: expected \"x86_64\" or \"aarch64\""))]
    InvalidArch {
        /// The rejected text.
        value: String,
    },

    /// A target name that is empty, contains `/` or `..`, or a control character.
    #[snafu(display("invalid target name {value:?}: {reason}"))]
    InvalidTargetName {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A version lock that is neither `latest` nor a version.
    #[snafu(display(
        "invalid version lock {value:?}: expected \"latest\" or a version such as \"v1.2.3\""
    ))]
    InvalidVersionLock {
        /// The rejected text.
        value: String,
        /// The semver error.
        source: semver::Error,
    },

    /// A migration key that is not `"(X.Y.Z, A.B.C)"`.
    #[snafu(display("invalid migration key {value:?}: {reason}"))]
    InvalidMigrationKey {
        /// The rejected text.
        value: String,
        /// What is wrong with it.
        reason: String,
    },

    /// Reading a file failed.
    #[snafu(display("failed to read {}", path.display()))]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Writing a file (temp file, fsync, rename, directory fsync) failed.
    #[snafu(display("failed to write {} ({})", path.display(), source.op()))]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The step that failed, on which path, and the I/O error.
        source: abos_fsio::Error,
    },

    /// A manifest that does not parse. `field` is the JSON path of the bad value.
    #[snafu(display("{origin}: invalid manifest: field `{field}` is invalid"))]
    ParseManifest {
        /// File path or URL the bytes came from.
        origin: String,
        /// JSON path of the failing field, e.g. `updates[0].waves`.
        field: String,
        /// The JSON error (names the bad value, line and column).
        source: serde_json::Error,
    },

    /// A Release.toml that does not parse.
    #[snafu(display("{origin}: invalid release file: field `{field}` is invalid"))]
    ParseRelease {
        /// File the text came from.
        origin: String,
        /// Path of the failing field.
        field: String,
        /// The TOML error.
        source: Box<toml::de::Error>,
    },

    /// A build description that does not parse.
    #[snafu(display("{}: invalid build description: field `{field}` is invalid", path.display()))]
    ParseBuildDescription {
        /// The file.
        path: PathBuf,
        /// Path of the failing field.
        field: String,
        /// The JSON error.
        source: serde_json::Error,
    },

    /// A build description whose artifact path leaves its directory.
    #[snafu(display(
        "{}: field `{field}` is invalid: {value:?} must be a relative path inside the description's directory",
        path.display()
    ))]
    ArtifactPath {
        /// The description file.
        path: PathBuf,
        /// The field, e.g. `artifacts.boot.file_name`.
        field: String,
        /// The rejected value.
        value: String,
    },

    /// Adding an update that is already in the manifest.
    #[snafu(display("the manifest already has an update for {update}"))]
    DuplicateUpdate {
        /// `variant arch version`.
        update: String,
    },

    /// Applying a wave policy failed.
    #[snafu(display("failed to set waves for {update}"))]
    SetWaves {
        /// `variant arch version`.
        update: String,
        /// The waves error.
        #[snafu(source(from(waves::Error, Box::new)))]
        source: Box<waves::Error>,
    },

    /// An update's waves are not in ascending time order.
    #[snafu(display("update {update}: field `waves` is invalid"))]
    WavesUnordered {
        /// `variant arch version`.
        update: String,
        /// The waves error (names the keys and times).
        #[snafu(source(from(waves::Error, Box::new)))]
        source: Box<waves::Error>,
    },

    /// A wave key above 2048: no seed is that large, so the wave never opens for anyone.
    #[snafu(display(
        "update {update}: field `waves` is invalid: key \"{key}\" is above 2048 (seeds are 0 to 2047; wave keys are seed bounds, not percentages)"
    ))]
    WaveKeyOutOfRange {
        /// `variant arch version`.
        update: String,
        /// The key.
        key: u32,
    },

    /// An entry for the host's own variant and arch breaks the manifest's rules.
    #[snafu(display(
        "the manifest's entry for this host ({host}) is invalid, so no update can be chosen safely: {entry}; the publisher must fix the manifest (`pubsys manifest validate` shows every problem)"
    ))]
    InvalidEntryForHost {
        /// `variant arch` of the host.
        host: String,
        /// The rejected entry and why.
        entry: String,
    },

    /// Entries of one variant/arch disagree on `max_version`.
    #[snafu(display(
        "{group}: updates disagree on max_version ({first}, {other}); set it with set-max-version"
    ))]
    MaxVersionMismatch {
        /// `variant arch`.
        group: String,
        /// One entry, `version has max_version`.
        first: String,
        /// Another entry, `version has max_version`.
        other: String,
    },

    /// Every entry of a variant/arch is above its max_version: hosts have nowhere to go.
    #[snafu(display(
        "{group}: max_version {max_version} is below every listed version (lowest {lowest}): no update is offerable"
    ))]
    NothingUnderMaxVersion {
        /// `variant arch`.
        group: String,
        /// The max_version.
        max_version: Version,
        /// The lowest listed version.
        lowest: Version,
    },

    /// Two entries with the same variant, arch and version.
    #[snafu(display("updates[{index}]: duplicate update {update} (also updates[{first}])"))]
    DuplicateEntry {
        /// Index of the second entry.
        index: usize,
        /// Index of the first entry.
        first: usize,
        /// `variant arch version`.
        update: String,
    },

    /// The migration chain has a gap.
    #[snafu(display("migrations: the chain is broken between {from} and {to}"))]
    BrokenMigrationChain {
        /// Lower version.
        from: Version,
        /// Higher version.
        to: Version,
        /// The missing step.
        source: Box<Error>,
    },

    /// No migrations entry leads on from a version.
    #[snafu(display(
        "migrations: no entry from {from} towards {to}; Release.toml must list every consecutive release pair, with [] when there are no migrations"
    ))]
    MissingMigration {
        /// Where the walk stopped.
        from: Version,
        /// Where it was heading.
        to: Version,
    },
}

/// Exit codes for binaries built on this crate. Never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Success.
    Success = 0,
    /// Invalid input (manifest, release file, names, versions).
    InvalidInput = 2,
    /// Reading or writing a file failed.
    Io = 3,
}

impl Error {
    /// The documented exit code for this error class.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            Error::ReadFile { .. } | Error::WriteFile { .. } => ExitStatus::Io,
            _ => ExitStatus::InvalidInput,
        }
    }
}
