//! The updog-config crate's error type. Every variant names the file; every variant about a key
//! names the key and its line.

use snafu::Snafu;
use std::path::PathBuf;

/// Alias for `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that makes an `updog.toml` unusable.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// The file cannot be read.
    #[snafu(display("failed to read config file {}", path.display()))]
    Read {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// The file is not UTF-8 text.
    #[snafu(display("{}:{line}: not UTF-8 text", path.display()))]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// 1-based line of the first bad byte.
        line: usize,
    },

    /// The file is not TOML.
    #[snafu(display("{}:{line}:{column}: not valid TOML: {message}", path.display()))]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The TOML parser's message.
        message: String,
    },

    /// A key updog does not know (a typo would otherwise be silently ignored).
    #[snafu(display(
        "{}:{line}: unknown key `{key}`; {}",
        path.display(),
        match suggestion {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("the keys are {}", crate::KNOWN_KEYS.join(", ")),
        }
    ))]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The nearest valid key, if one is close.
        suggestion: Option<&'static str>,
    },

    /// A required key is absent.
    #[snafu(display("{}: required key `{key}` is missing", path.display()))]
    MissingKey {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
    },

    /// A value of the wrong type (a string where a number belongs, …).
    #[snafu(display("{}:{line}: `{key}` is invalid: {message}", path.display()))]
    Type {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The key.
        key: String,
        /// The TOML deserializer's message.
        message: String,
    },

    /// A value of the right type but outside what is accepted.
    #[snafu(display(
        "{}:{line}: `{key}` = {value} is invalid; expected {expected}",
        path.display()
    ))]
    Value {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The key.
        key: &'static str,
        /// The value, as TOML.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },

    /// A URL key whose value is not a URL.
    #[snafu(display("{}:{line}: `{key}` = {value:?} is not a valid URL", path.display()))]
    Url {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// Cause.
        source: url::ParseError,
    },

    /// A URL key with a scheme updog cannot fetch from.
    #[snafu(display(
        "{}:{line}: `{key}` = {value:?} uses the scheme {scheme:?}; only https://, http:// and file:// URLs are accepted",
        path.display()
    ))]
    UrlScheme {
        /// The file.
        path: PathBuf,
        /// 1-based line of the value.
        line: usize,
        /// The key.
        key: &'static str,
        /// The value.
        value: String,
        /// The scheme found.
        scheme: String,
    },
}

impl Error {
    /// The key at fault, if the error is about one key.
    pub fn key(&self) -> Option<&str> {
        match self {
            Error::UnknownKey { key, .. } | Error::Type { key, .. } => Some(key),
            Error::MissingKey { key, .. }
            | Error::Value { key, .. }
            | Error::Url { key, .. }
            | Error::UrlScheme { key, .. } => Some(key),
            Error::Read { .. } | Error::NotUtf8 { .. } | Error::Syntax { .. } => None,
        }
    }

    /// The 1-based line at fault, if known.
    pub fn line(&self) -> Option<usize> {
        match self {
            Error::Syntax { line, .. }
            | Error::NotUtf8 { line, .. }
            | Error::UnknownKey { line, .. }
            | Error::Type { line, .. }
            | Error::Value { line, .. }
            | Error::Url { line, .. }
            | Error::UrlScheme { line, .. } => Some(*line),
            Error::Read { .. } | Error::MissingKey { .. } => None,
        }
    }
}
