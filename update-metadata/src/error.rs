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
    #[snafu(display("failed to write {} ({step})", path.display()))]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The step that failed.
        step: &'static str,
        /// The I/O error.
        source: std::io::Error,
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
        source: toml::de::Error,
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

    /// Adding an update that is already in the manifest.
    #[snafu(display("the manifest already has an update for {variant} {arch} {version}"))]
    DuplicateUpdate {
        /// Variant.
        variant: String,
        /// Architecture.
        arch: String,
        /// Version.
        version: Version,
    },

    /// Applying a wave policy failed.
    #[snafu(display("failed to set waves for {variant} {arch} {version}"))]
    SetWaves {
        /// Variant.
        variant: String,
        /// Architecture.
        arch: String,
        /// Version.
        version: Version,
        /// The waves error.
        source: waves::Error,
    },

    /// An update's waves are not in ascending time order.
    #[snafu(display("update {variant} {arch} {version}: field `waves` is invalid"))]
    WavesUnordered {
        /// Variant.
        variant: String,
        /// Architecture.
        arch: String,
        /// Version.
        version: Version,
        /// The waves error (names the keys and times).
        source: waves::Error,
    },

    /// Entries of one variant/arch disagree on `max_version`.
    #[snafu(display(
        "{variant} {arch}: updates disagree on max_version ({version} has {max_version}, {other_version} has {other_max_version}); set it with set-max-version"
    ))]
    MaxVersionMismatch {
        /// Variant.
        variant: String,
        /// Architecture.
        arch: String,
        /// One update's version.
        version: Version,
        /// Its max_version.
        max_version: Version,
        /// Another update's version.
        other_version: Version,
        /// Its max_version.
        other_max_version: Version,
    },

    /// Every entry of a variant/arch is above its max_version: hosts have nowhere to go.
    #[snafu(display(
        "{variant} {arch}: max_version {max_version} is below every listed version (lowest {lowest}): no update is offerable"
    ))]
    NothingUnderMaxVersion {
        /// Variant.
        variant: String,
        /// Architecture.
        arch: String,
        /// The max_version.
        max_version: Version,
        /// The lowest listed version.
        lowest: Version,
    },

    /// Two entries with the same variant, arch and version.
    #[snafu(display(
        "updates[{index}]: duplicate update {variant} {arch} {version} (also updates[{first}])"
    ))]
    DuplicateEntry {
        /// Index of the second entry.
        index: usize,
        /// Index of the first entry.
        first: usize,
        /// Variant.
        variant: String,
        /// Architecture.
        arch: String,
        /// Version.
        version: Version,
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
