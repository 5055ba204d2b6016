//! The waves crate's error type.

use std::path::PathBuf;

use snafu::Snafu;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while reading wave policies or building schedules.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// A seed outside 0..=2047.
    #[snafu(display("seed {value} is out of range: seeds are 0 to 2047"))]
    SeedOutOfRange {
        /// The rejected value.
        value: u64,
    },

    /// A seed that is not a decimal number.
    #[snafu(display("seed {value:?} is not a decimal number"))]
    SeedNotNumber {
        /// The rejected text.
        value: String,
    },

    /// A `start_after` value that is neither an offset nor an RFC3339 time.
    #[snafu(display(
        "bad offset {input:?}: {reason} (expected \"[in] N minutes|hours|days|weeks\" or an RFC3339 time)"
    ))]
    BadOffset {
        /// The rejected text.
        input: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A timestamp that is not RFC3339.
    #[snafu(display("bad timestamp {input:?}: expected RFC3339, e.g. 2025-08-25T17:00:00Z"))]
    BadTimestamp {
        /// The rejected text.
        input: String,
    },

    /// The policy file could not be read.
    #[snafu(display("failed to read wave policy {}", path.display()))]
    ReadPolicy {
        /// The policy file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The policy file is not valid TOML of the expected shape.
    #[snafu(display("{}: invalid wave policy: field `{field}` is invalid", path.display()))]
    PolicyToml {
        /// The policy file.
        path: PathBuf,
        /// Path of the failing field (`.` for the whole file).
        field: String,
        /// The TOML error (names the field and line).
        #[snafu(source(from(toml::de::Error, Box::new)))]
        source: Box<toml::de::Error>,
    },

    /// The policy file has no waves.
    #[snafu(display("{}: `waves` is empty: a policy needs at least one [[waves]] table", path.display()))]
    PolicyEmpty {
        /// The policy file.
        path: PathBuf,
    },

    /// A wave's `start_after` is not valid.
    #[snafu(display("{}: waves[{index}].start_after = {value:?} is invalid", path.display()))]
    PolicyStartAfter {
        /// The policy file.
        path: PathBuf,
        /// Zero-based wave index.
        index: usize,
        /// The rejected value.
        value: String,
        /// Why the offset did not parse.
        #[snafu(source(from(Error, Box::new)))]
        source: Box<Error>,
    },

    /// A wave's `fleet_percentage` is outside 1..=100.
    #[snafu(display(
        "{}: waves[{index}].fleet_percentage = {value} is invalid: it must be between 1 and 100",
        path.display()
    ))]
    PolicyPercentageRange {
        /// The policy file.
        path: PathBuf,
        /// Zero-based wave index.
        index: usize,
        /// The rejected value.
        value: i64,
    },

    /// A wave's `fleet_percentage` does not grow.
    #[snafu(display(
        "{}: waves[{index}].fleet_percentage = {value} is invalid: percentages are cumulative and must increase strictly (previous wave has {previous})",
        path.display()
    ))]
    PolicyPercentageOrder {
        /// The policy file.
        path: PathBuf,
        /// Zero-based wave index.
        index: usize,
        /// The rejected value.
        value: u8,
        /// The previous wave's percentage.
        previous: u8,
    },

    /// The last wave does not reach 100 %.
    #[snafu(display(
        "{}: waves[{index}].fleet_percentage = {value} is invalid: the last wave must reach 100, because every host becomes eligible in the last wave",
        path.display()
    ))]
    PolicyLastNotFull {
        /// The policy file.
        path: PathBuf,
        /// Zero-based wave index.
        index: usize,
        /// The rejected value.
        value: u8,
    },

    /// Two waves of a policy do not open in order once applied to a start time.
    #[snafu(display(
        "waves[{index}] opens at {at}, not after waves[{previous_index}] at {previous}: waves must open in ascending order"
    ))]
    ScheduleUnordered {
        /// Zero-based wave index.
        index: usize,
        /// When it opens.
        at: jiff::Timestamp,
        /// Index of the wave before.
        previous_index: usize,
        /// When the wave before opens.
        previous: jiff::Timestamp,
    },

    /// A start time plus an offset falls outside the representable time range.
    #[snafu(display("waves[{index}]: start time {start} plus the offset is out of range"))]
    ScheduleOverflow {
        /// Zero-based wave index.
        index: usize,
        /// The start time.
        start: jiff::Timestamp,
    },

    /// A manifest's wave map is not in ascending time order.
    #[snafu(display(
        "wave key {key} opens at {at}, not after key {previous_key} at {previous}: waves must be in ascending order"
    ))]
    WavesUnordered {
        /// The offending key.
        key: u32,
        /// Its time.
        at: jiff::Timestamp,
        /// The key before.
        previous_key: u32,
        /// Its time.
        previous: jiff::Timestamp,
    },

    /// Writing an output file (chart, docs) failed.
    #[snafu(display("failed to write {}", path.display()))]
    WriteFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// JSON rendering failed.
    #[snafu(display("failed to render JSON"))]
    RenderJson {
        /// The serde error.
        source: serde_json::Error,
    },
}

/// Exit codes of the `waves` binary. Never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Success.
    Success = 0,
    /// Usage error (clap) or invalid input (policy file, time).
    Usage = 2,
    /// Writing an output failed.
    Io = 3,
}

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        &[ExitStatus::Success, ExitStatus::Usage, ExitStatus::Io]
    }
    fn code(self) -> u8 {
        self as u8
    }
    fn name(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Usage => "usage",
            ExitStatus::Io => "io",
        }
    }
    fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Usage => "invalid input or usage",
            ExitStatus::Io => "could not read or write a file",
        }
    }
}

impl Error {
    /// The documented exit code for this error.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            Error::WriteFile { .. } | Error::ReadPolicy { .. } | Error::RenderJson { .. } => {
                ExitStatus::Io
            }
            _ => ExitStatus::Usage,
        }
    }

    /// A hint for operators, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Error::PolicyStartAfter { .. } | Error::BadOffset { .. } => Some(
                "start_after takes \"N minutes\", \"N hours\", \"N days\", \"N weeks\" (optionally prefixed by \"in\") or an RFC3339 time",
            ),
            Error::PolicyPercentageOrder { .. } | Error::PolicyPercentageRange { .. } => Some(
                "fleet_percentage is the cumulative share of the fleet updated by the end of the wave",
            ),
            _ => None,
        }
    }
}
