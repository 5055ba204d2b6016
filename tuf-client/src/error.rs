//! The crate's one error enum. Every variant names the operation that failed and carries the
//! role, URL or path it concerns. Display shows this layer's message only; the cause is reachable
//! through `source()`.

use crate::transport::TransportError;
use snafu::Snafu;
use std::path::PathBuf;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in an update cycle.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// The trusted root given in the configuration is not valid root metadata.
    #[snafu(display("the trusted root given to the client is not valid root metadata"))]
    TrustedRoot {
        /// Why.
        #[snafu(source(from(Error, Box::new)))]
        source: Box<Error>,
    },

    /// A base URL cannot be used.
    #[snafu(display("base URL '{url}' cannot be used: {reason}"))]
    BaseUrl {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },

    /// A URL could not be built for a file.
    #[snafu(display("cannot build a URL for '{name}' under '{base}'"))]
    JoinUrl {
        /// Base URL.
        base: String,
        /// File name.
        name: String,
        /// Parser error.
        source: url::ParseError,
    },

    /// The datastore directory could not be created.
    #[snafu(display("cannot create the datastore directory '{}'", path.display()))]
    DatastoreCreate {
        /// The directory.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },

    /// A datastore file could not be read.
    #[snafu(display("cannot read '{}' from the datastore", path.display()))]
    DatastoreRead {
        /// The file.
        path: PathBuf,
        /// I/O error.
        source: std::io::Error,
    },

    /// A datastore file could not be written durably.
    #[snafu(display("cannot write '{}' to the datastore", path.display()))]
    DatastoreWrite {
        /// The file.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },

    /// A datastore file could not be removed durably.
    #[snafu(display("cannot remove '{}' from the datastore", path.display()))]
    DatastoreRemove {
        /// The file.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },

    /// The recorded time of the last cycle in the datastore is unreadable.
    #[snafu(display("the last cycle time in '{}' is not a timestamp: '{text}'", path.display()))]
    DatastoreTime {
        /// The file.
        path: PathBuf,
        /// Its content.
        text: String,
    },

    /// §5.1: the clock is further behind the last recorded cycle than the tolerance allows.
    #[snafu(display(
        "the clock went backwards: this cycle starts at {now}, the last one started at {last} \
         (tolerance {tolerance_secs} s)"
    ))]
    ClockWentBackwards {
        /// This cycle's start time.
        now: jiff::Timestamp,
        /// The last persisted cycle start time.
        last: jiff::Timestamp,
        /// The configured tolerance in seconds.
        tolerance_secs: u64,
    },

    /// A file could not be fetched.
    #[snafu(display("cannot fetch {what} from {url}"))]
    Fetch {
        /// What was being fetched (a role or a target name).
        what: String,
        /// The URL.
        url: String,
        /// Transport error (its kind tells not-found from other failures).
        source: TransportError,
    },

    /// A download went over its length limit.
    #[snafu(display("{what} from {url} is larger than its limit of {limit} bytes"))]
    TooLarge {
        /// What was being fetched.
        what: String,
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },

    /// A file's length differs from the length its signed metadata gives.
    #[snafu(display("{what} from {url} is {actual} bytes, signed metadata says {expected}"))]
    LengthMismatch {
        /// What was checked.
        what: String,
        /// Where it came from.
        url: String,
        /// Signed length.
        expected: u64,
        /// Received length.
        actual: u64,
    },

    /// A file's hash differs from the hash its signed metadata gives.
    #[snafu(display("{what} from {url} does not match its signed {algorithm} hash"))]
    HashMismatch {
        /// What was checked.
        what: String,
        /// Where it came from.
        url: String,
        /// Hash algorithm.
        algorithm: String,
    },

    /// Signed metadata lists a hash algorithm this client cannot compute.
    #[snafu(display(
        "{what} lists hash algorithm '{algorithm}', which this client does not support"
    ))]
    UnsupportedHash {
        /// What was checked.
        what: String,
        /// Hash algorithm.
        algorithm: String,
    },

    /// Metadata is not valid JSON in the TUF envelope, or its content breaks the format.
    #[snafu(display("{role} metadata from {origin} is malformed: {reason}"))]
    Malformed {
        /// Role name.
        role: String,
        /// URL or datastore path.
        origin: String,
        /// What is wrong.
        reason: String,
    },

    /// Metadata is not signed by a threshold of the keys trusted for its role.
    #[snafu(display(
        "{role} metadata from {origin} is not signed by a threshold of {signer} keys"
    ))]
    Signature {
        /// Role name.
        role: String,
        /// The role whose keys were used ("root (previous version)" for the root chain).
        signer: String,
        /// URL or datastore path.
        origin: String,
        /// tough's verification error.
        #[snafu(source(from(tough::schema::Error, Box::new)))]
        source: Box<tough::schema::Error>,
    },

    /// §5.3.5: a root in the chain does not have version N+1.
    #[snafu(display("root from {origin} has version {found}, expected exactly {expected}"))]
    RootVersion {
        /// URL.
        origin: String,
        /// N+1.
        expected: u64,
        /// What the file says.
        found: u64,
    },

    /// §5.3.10, §5.4.4, §5.5.6, §5.6.5: metadata expired before the cycle's start time.
    #[snafu(display(
        "{role} metadata (version {version}) expired at {expires}, cycle started at {now}"
    ))]
    Expired {
        /// Role name.
        role: String,
        /// Its version.
        version: u64,
        /// Its expiry.
        expires: jiff::Timestamp,
        /// The fixed update start time.
        now: jiff::Timestamp,
    },

    /// §5.4.3.1: the new timestamp's version is lower than the trusted one.
    #[snafu(display("timestamp version {new} is lower than the trusted version {trusted}"))]
    TimestampRollback {
        /// Trusted version.
        trusted: u64,
        /// New version.
        new: u64,
    },

    /// §5.4.3.2: the new timestamp names a lower snapshot version than the trusted timestamp.
    #[snafu(display(
        "timestamp version {timestamp} names snapshot version {new}, lower than the trusted {trusted}"
    ))]
    SnapshotVersionRollback {
        /// New timestamp's version.
        timestamp: u64,
        /// Trusted snapshot version.
        trusted: u64,
        /// New snapshot version.
        new: u64,
    },

    /// §5.5.4: the snapshot's version is not the one the timestamp names.
    #[snafu(display("snapshot version {found} is not version {expected} named by the timestamp"))]
    SnapshotVersion {
        /// From the timestamp.
        expected: u64,
        /// From the snapshot.
        found: u64,
    },

    /// §5.5.5: a targets role was rolled back in the new snapshot.
    #[snafu(display(
        "new snapshot lists {file} at version {new}, lower than the trusted {trusted}"
    ))]
    SnapshotRollback {
        /// Metadata file name, e.g. `targets.json`.
        file: String,
        /// Trusted version.
        trusted: u64,
        /// New version.
        new: u64,
    },

    /// §5.5.5: a targets role listed by the trusted snapshot is missing from the new one.
    #[snafu(display("new snapshot no longer lists {file}, which the trusted snapshot lists"))]
    SnapshotRemoved {
        /// Metadata file name.
        file: String,
    },

    /// §5.6.4: a targets role's version is not the one the snapshot names.
    #[snafu(display("{role} version {found} is not version {expected} named by the snapshot"))]
    TargetsVersion {
        /// Role name.
        role: String,
        /// From the snapshot.
        expected: u64,
        /// From the file.
        found: u64,
    },

    /// The top-level targets role is not listed in the snapshot.
    #[snafu(display("the snapshot does not list {role}.json"))]
    NotInSnapshot {
        /// Role name.
        role: String,
    },

    /// A lookup or download was attempted before a successful `refresh`.
    #[snafu(display("refresh() has not completed successfully in this updater"))]
    NotRefreshed,

    /// A target path cannot be turned into a safe URL (empty, `.` or `..` segment).
    #[snafu(display("target path '{name}' has an empty, '.' or '..' segment"))]
    UnsafeTargetPath {
        /// Target path.
        name: String,
    },

    /// Reading a target's body failed part-way.
    #[snafu(display("reading target '{name}' from {url} failed"))]
    TargetRead {
        /// Target path.
        name: String,
        /// URL.
        url: String,
        /// Transport error.
        source: TransportError,
    },
}
