//! The one error type of this crate.

use snafu::Snafu;
use std::path::PathBuf;

/// Errors from locations, configuration and S3 requests.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// Not an `s3://bucket/prefix` URL.
    #[snafu(display("'{url}' is not an S3 location: {reason} (expected s3://BUCKET[/PREFIX])"))]
    BadUrl {
        /// The text given.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The client could not be configured.
    #[snafu(display("cannot configure an S3 client for bucket '{bucket}': {source}"))]
    Client {
        /// Bucket.
        bucket: String,
        /// Cause.
        source: object_store::Error,
    },
    /// An AWS configuration or credentials file could not be read.
    #[snafu(display("cannot read AWS configuration {}: {source}", path.display()))]
    Profile {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A request failed.
    #[snafu(display("{action} s3://{bucket}/{key} failed: {source}"))]
    Request {
        /// What was attempted.
        action: &'static str,
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Cause.
        source: Box<object_store::Error>,
    },
    /// A conditional write lost to another writer.
    #[snafu(display(
        "s3://{bucket}/{key} was not written: {reason} (another publisher wrote to this \
         repository at the same time; nothing of this run is live, run it again)"
    ))]
    Conflict {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Why.
        reason: String,
    },
    /// A local file could not be read.
    #[snafu(display("cannot read {}: {source}", path.display()))]
    ReadFile {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The runtime driving S3 requests could not start.
    #[snafu(display("cannot start the S3 client's runtime: {source}"))]
    StartRuntime {
        /// Cause.
        source: std::io::Error,
    },
    /// The runtime driving S3 requests went away mid-request.
    #[snafu(display("the S3 client's runtime stopped during a request"))]
    Runtime,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// True if a conditional write lost to another writer.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Conflict { .. })
    }
}
