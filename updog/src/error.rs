//! The one error type of updog.

use crate::exit::ExitStatus;
use snafu::Snafu;
use std::path::PathBuf;

/// Alias for `Result<T, Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in updog.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// `updog.toml` is unreadable or invalid (the message names the file, key and line).
    #[snafu(transparent)]
    Config {
        /// Cause.
        source: updog_config::Error,
    },
    /// Reading the config file failed.
    #[snafu(display("failed to read config file {}", path.display()))]
    ConfigRead {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The config file is not valid TOML or misses a key.
    #[snafu(display("failed to parse config file {}", path.display()))]
    ConfigParse {
        /// File.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(toml::de::Error, Box::new)))]
        source: Box<toml::de::Error>,
    },
    /// A URL in the config is invalid.
    #[snafu(display("{}: `{field}` = {value:?} is not a valid URL", path.display()))]
    ConfigUrl {
        /// File.
        path: PathBuf,
        /// Key.
        field: &'static str,
        /// Value.
        value: String,
        /// Cause.
        source: url::ParseError,
    },
    /// A config value is out of range.
    #[snafu(display("{}: `{field}` = {value:?} is invalid; expected {expected}", path.display()))]
    ConfigValue {
        /// File.
        path: PathBuf,
        /// Key.
        field: &'static str,
        /// Value.
        value: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// Reading os-release failed.
    #[snafu(display("failed to read {}", path.display()))]
    OsReleaseRead {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A field of os-release is missing or invalid.
    #[snafu(display("{}: field {field} is missing or invalid ({value:?})", path.display()))]
    OsReleaseField {
        /// File.
        path: PathBuf,
        /// Field.
        field: &'static str,
        /// Value found.
        value: String,
    },
    /// This binary was built for an architecture updates do not exist for.
    #[snafu(display("unsupported architecture {arch}"))]
    UnsupportedArch {
        /// Compile-time architecture.
        arch: String,
    },
    /// Reading the trusted root failed.
    #[snafu(display("failed to read the trusted root {}", path.display()))]
    TrustedRootRead {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A state directory could not be created.
    #[snafu(display("failed to create directory {}", path.display()))]
    CreateDir {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing a state file failed.
    #[snafu(display("failed to write {}", path.display()))]
    WriteFile {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A durable write, removal or fsync of state (`abos-fsio`) failed.
    #[snafu(display("failed to write {} ({})", path.display(), source.op()))]
    StateFile {
        /// File or directory.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },
    /// Reading a state file failed.
    #[snafu(display("failed to read {}", path.display()))]
    ReadFile {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Another updog holds the lock.
    #[snafu(display("another updog is running (lock {} held{holder})", path.display()))]
    LockHeld {
        /// Lock file.
        path: PathBuf,
        /// " by pid N" if known.
        holder: String,
    },
    /// The lock file could not be opened.
    #[snafu(display("failed to open lock file {}", path.display()))]
    LockOpen {
        /// Lock file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The HTTP client could not be built (bad proxy setting, TLS setup).
    #[snafu(display("failed to set up the HTTP client"))]
    HttpClient {
        /// Cause.
        #[snafu(source(from(reqwest::Error, Box::new)))]
        source: Box<reqwest::Error>,
    },
    /// The async runtime could not start.
    #[snafu(display("failed to start the async runtime"))]
    Runtime {
        /// Cause.
        source: std::io::Error,
    },
    /// An HTTP request failed.
    #[snafu(display("request for {url} failed"))]
    HttpRequest {
        /// URL.
        url: String,
        /// Cause.
        #[snafu(source(from(reqwest::Error, Box::new)))]
        source: Box<reqwest::Error>,
    },
    /// The server answered with an error status.
    #[snafu(display("{url} answered HTTP {status}"))]
    HttpStatus {
        /// URL.
        url: String,
        /// Status.
        status: u16,
    },
    /// The retry deadline passed without a byte from the server.
    #[snafu(display(
        "gave up on {url}: no data within the retry deadline of {}s ({attempts} attempts)",
        deadline.as_secs_f64()
    ))]
    RetryDeadline {
        /// URL.
        url: String,
        /// The deadline.
        deadline: std::time::Duration,
        /// Attempts made (including the one cut).
        attempts: u32,
    },
    /// The server closed the stream before the signed length.
    #[snafu(display("{url} ended after {got} of {expected} bytes"))]
    StreamEnded {
        /// URL.
        url: String,
        /// Bytes received.
        got: u64,
        /// Signed length.
        expected: u64,
    },
    /// Reading a local (`file://`) target failed.
    #[snafu(display("failed to read {}", path.display()))]
    LocalTarget {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A URL could not be built.
    #[snafu(display("cannot join {path:?} to {base}"))]
    JoinUrl {
        /// Base.
        base: String,
        /// Path.
        path: String,
        /// Cause.
        source: url::ParseError,
    },
    /// Loading and verifying the repository metadata failed.
    #[snafu(display("failed to load the update repository at {url}"))]
    RepoLoad {
        /// Metadata URL.
        url: String,
        /// Cause.
        #[snafu(source(from(tuf_client::Error, Box::new)))]
        source: Box<tuf_client::Error>,
    },
    /// The repository has no manifest.json.
    #[snafu(display("manifest.json is not in the repository"))]
    ManifestMissing,
    /// Reading manifest.json through TUF failed.
    #[snafu(display("failed to read manifest.json from the repository"))]
    ManifestRead {
        /// Cause.
        #[snafu(source(from(tuf_client::Error, Box::new)))]
        source: Box<tuf_client::Error>,
    },
    /// manifest.json is invalid.
    #[snafu(display("manifest.json is invalid"))]
    ManifestParse {
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },
    /// A target named by the manifest is invalid or not signed in the repository.
    #[snafu(display("target {name:?} is not in the signed repository metadata"))]
    TargetMissing {
        /// Target name.
        name: String,
    },
    /// Looking up a target in the signed metadata failed (a delegated role could not be
    /// fetched or verified).
    #[snafu(display("failed to look up target {name:?} in the repository"))]
    TargetLookup {
        /// Name.
        name: String,
        /// Cause.
        #[snafu(source(from(tuf_client::Error, Box::new)))]
        source: Box<tuf_client::Error>,
    },
    /// The delta index of the root image (`<root>.index`, a signed target) could not be
    /// downloaded, or its length or hash does not match the signed targets metadata.
    #[snafu(display("failed to download the delta index {name:?} through TUF"))]
    DeltaIndex {
        /// Target name.
        name: String,
        /// Cause.
        #[snafu(source(from(tuf_client::Error, Box::new)))]
        source: Box<tuf_client::Error>,
    },
    /// Reading the running root or writing the inactive root failed during a delta update.
    #[snafu(display("delta update of {partition}: disk I/O failed"))]
    DeltaIo {
        /// The partition (or disk) concerned.
        partition: String,
        /// Cause.
        source: abos_delta::Error,
    },
    /// An image target lists no SHA-256 (the resumable image writer verifies SHA-256).
    #[snafu(display(
        "image target {name:?} lists no SHA-256 hash; updog's resumable image writer needs one"
    ))]
    TargetNoSha256 {
        /// Name.
        name: String,
    },
    /// No migration path between the versions.
    #[snafu(display("no migration path from {from} to {to}"))]
    MigrationPath {
        /// From.
        from: String,
        /// To.
        to: String,
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },
    /// Caching migrations and manifest failed.
    #[snafu(display("failed to store manifest and migrations in {}", path.display()))]
    MigrationCache {
        /// Target directory.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(tuf_client::Error, Box::new)))]
        source: Box<tuf_client::Error>,
    },
    /// A signpost operation failed.
    #[snafu(display("failed to {op} on the OS disk"))]
    Signpost {
        /// What was attempted.
        op: &'static str,
        /// Cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// The partition table changed between planning the update and applying it.
    #[snafu(display(
        "the update was planned for set {planned} on {}, but the disk now has set {found} \
         inactive (or its partitions moved); nothing was written",
        disk.display()
    ))]
    PlanStale {
        /// The set the plan wrote into.
        planned: String,
        /// The inactive set found at apply time.
        found: String,
        /// Disk.
        disk: PathBuf,
    },
    /// The disk could not be opened for writing.
    #[snafu(display("failed to open the OS disk {} for writing", path.display()))]
    DiskOpen {
        /// Disk.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing to the disk failed.
    #[snafu(display("failed to write {} at byte {offset}", path.display()))]
    DiskWrite {
        /// Disk.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },
    /// Reading from the disk failed.
    #[snafu(display("failed to read {} at byte {offset}", path.display()))]
    DiskRead {
        /// Disk.
        path: PathBuf,
        /// Byte offset.
        offset: u64,
        /// Cause.
        source: std::io::Error,
    },
    /// fsync of the disk failed.
    #[snafu(display("failed to flush {} to stable storage", path.display()))]
    DiskSync {
        /// Disk.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The server sent more bytes than the signed length.
    #[snafu(display("{name}: the server sent more than the {expected} bytes signed for it"))]
    TargetTooLong {
        /// Target.
        name: String,
        /// Signed length.
        expected: u64,
    },
    /// The stream ended before the signed length and could not be resumed.
    #[snafu(display(
        "{name}: download stopped at byte {got} of {expected} and retries are exhausted"
    ))]
    TargetIncomplete {
        /// Target.
        name: String,
        /// Signed length.
        expected: u64,
        /// Bytes received.
        got: u64,
        /// Last cause.
        source: Box<Error>,
    },
    /// The downloaded bytes do not hash to the signed SHA-256.
    #[snafu(display("{name}: SHA-256 mismatch: signed {expected}, received {actual}"))]
    TargetHash {
        /// Target.
        name: String,
        /// Signed.
        expected: String,
        /// Computed.
        actual: String,
    },
    /// The LZ4 stream is corrupt.
    #[snafu(display("{name}: failed to decode LZ4-compressed target"))]
    Decode {
        /// Target.
        name: String,
        /// Cause.
        source: crate::lz4::Lz4Error,
    },
    /// The decompressed image is larger than its partition.
    #[snafu(display("{name}: decompressed image exceeds the {limit}-byte partition {partition}"))]
    ImageTooLarge {
        /// Target.
        name: String,
        /// Partition label.
        partition: String,
        /// Partition size.
        limit: u64,
    },
    /// A worker thread died.
    #[snafu(display("the {what} thread panicked"))]
    ThreadPanic {
        /// Which thread.
        what: &'static str,
    },
    /// The written partitions do not verify.
    #[snafu(display("verification of the written {what} failed: {detail}"))]
    Verify {
        /// Which partition(s).
        what: &'static str,
        /// What exactly.
        detail: String,
    },
    /// The written root and hash partitions do not verify against the boot partition's table
    /// (or could not be read for the check).
    #[snafu(display(
        "verification of the written root and hash partitions of {} against the boot partition's dm-verity table failed",
        path.display()
    ))]
    Verity {
        /// Disk.
        path: PathBuf,
        /// What the check found (the first corrupt block, a superblock field, a short read).
        source: dm_verity::Error,
    },
    /// Running the reboot command failed.
    #[snafu(display("failed to reboot with {command:?}"))]
    Reboot {
        /// The command.
        command: Vec<String>,
        /// Cause.
        source: std::io::Error,
    },
    /// The reboot command exited with an error.
    #[snafu(display("reboot command {command:?} failed with {status}"))]
    RebootStatus {
        /// The command.
        command: Vec<String>,
        /// Its status.
        status: std::process::ExitStatus,
    },
    /// A state file or directory is a link, not ours, or writable by others.
    #[snafu(display("{} {problem}", path.display()))]
    UnsafeState {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A file of the trust datastore cannot be parsed.
    #[snafu(display(
        "the trust state file {} is damaged: {problem}; updog will not run without it, because \
         it is what protects this host against rollback, freeze and clock attacks",
        path.display()
    ))]
    TrustStateCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The trusted root shipped with the OS cannot be parsed or is not signed by its own keys.
    #[snafu(display("the trusted root {} is not usable: {problem}", path.display()))]
    TrustedRootInvalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A repository URL in the config uses a scheme updog cannot fetch.
    #[snafu(display(
        "{}: `{field}` = {value:?} uses the scheme {scheme:?}; updog fetches only https://, \
         http:// and file:// URLs",
        path.display()
    ))]
    ConfigUrlScheme {
        /// Config file.
        path: PathBuf,
        /// Key.
        field: &'static str,
        /// Value.
        value: String,
        /// The scheme found.
        scheme: String,
    },
    /// The repository answered "not found" for a file every repository has.
    #[snafu(display(
        "no update repository at {base}: {url} was not found (the server answered \"not found\")"
    ))]
    RepoNotFound {
        /// `metadata_base_url`.
        base: String,
        /// The file that was not found.
        url: String,
    },
    /// The trusted root has expired and the repository offers no newer one.
    #[snafu(display(
        "this host's trusted root (version {version}) expired at {expires}, and the repository \
         at {url} offers no newer root version to replace it"
    ))]
    RootExpired {
        /// Root version held.
        version: u64,
        /// Its expiry.
        expires: jiff::Timestamp,
        /// `metadata_base_url`.
        url: String,
    },
    /// The server (or a `file://` target) ended cleanly before the signed length.
    #[snafu(display(
        "{name}: {url} is {got} bytes long, but the signed length is {expected} bytes"
    ))]
    TargetShort {
        /// Target.
        name: String,
        /// Where it was read.
        url: String,
        /// Bytes it had.
        got: u64,
        /// Signed length.
        expected: u64,
    },
    /// `update-revert` found no applied update.
    #[snafu(display(
        "nothing to revert: no update is applied (set {next} already boots next); the \
         partition table was not changed"
    ))]
    NothingToRevert {
        /// The set that boots next.
        next: String,
    },
    /// The disk given with `--disk` does not exist.
    #[snafu(display("the disk {} given with --disk does not exist", path.display()))]
    DiskMissing {
        /// The path given.
        path: PathBuf,
    },
    /// The disk given with `--disk` could not be used.
    #[snafu(display("failed to {op} of {} (given with --disk)", path.display()))]
    DiskOverride {
        /// What was attempted.
        op: &'static str,
        /// The path given.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// `status.json` is not a status file.
    #[snafu(display("the status file {} is damaged", path.display()))]
    StatusParse {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// `status.json` was written by a newer updog.
    #[snafu(display(
        "the status file {} has schema version {found}; this updog reads version {supported} or older",
        path.display()
    ))]
    StatusVersion {
        /// The file.
        path: PathBuf,
        /// Version found.
        found: u32,
        /// Version supported.
        supported: u32,
    },
    /// The status could not be encoded.
    #[snafu(display("failed to encode the status"))]
    StatusEncode {
        /// Cause.
        source: serde_json::Error,
    },
    /// Reboot coordination failed (`[fleet]`).
    #[snafu(display("fleet coordination: failed to {op}"))]
    Fleet {
        /// What was attempted.
        op: &'static str,
        /// Cause.
        source: fleet::Error,
    },
    /// `[fleet]` has no host name and `/etc/hostname` gives none.
    #[snafu(display(
        "[fleet] in {} names no host and {} gives none; set `host` in [fleet]",
        config.display(),
        hostname.display()
    ))]
    FleetHost {
        /// updog.toml.
        config: PathBuf,
        /// /etc/hostname.
        hostname: PathBuf,
    },
    /// A health check could not be started or watched.
    #[snafu(display("failed to run health check {}", path.display()))]
    HealthCheckRun {
        /// The check.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing generated docs failed.
    #[snafu(display("failed to write {}", path.display()))]
    Docs {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The exit status of a transport failure: a file the signed metadata names is missing is a
/// verification failure (a missing `timestamp.json`, i.e. no repository at all, is reported as
/// `RepoNotFound` instead); otherwise updog's HTTP client's own verdict, network by default.
fn classify_transport(t: &tuf_client::TransportError) -> ExitStatus {
    match t.kind() {
        tuf_client::TransportErrorKind::NotFound => ExitStatus::VerificationFailed,
        tuf_client::TransportErrorKind::UnsupportedScheme => ExitStatus::Usage,
        _ => match std::error::Error::source(t).and_then(|s| s.downcast_ref::<Error>()) {
            Some(e) => match e.exit_code() {
                ExitStatus::Failure => ExitStatus::Network,
                other => other,
            },
            None => ExitStatus::Network,
        },
    }
}

/// The exit status of a tuf-client error (one per §5 outcome).
fn classify_tuf(e: &tuf_client::Error) -> ExitStatus {
    use tuf_client::Error as T;
    match e {
        T::Expired { .. } => ExitStatus::MetadataExpired,
        T::TimestampRollback { .. }
        | T::SnapshotVersionRollback { .. }
        | T::SnapshotRollback { .. }
        | T::SnapshotRemoved { .. } => ExitStatus::RollbackDetected,
        T::ClockWentBackwards { .. } => ExitStatus::ClockSteppedBack,
        T::Fetch { source, .. } | T::TargetRead { source, .. } => classify_transport(source),
        T::TrustedRoot { .. } | T::BaseUrl { .. } => ExitStatus::Usage,
        // The clock record is damaged: trust state (checked before, so rarely seen here).
        T::DatastoreTime { .. } => ExitStatus::VerificationFailed,
        T::DatastoreCreate { .. }
        | T::DatastoreRead { .. }
        | T::DatastoreWrite { .. }
        | T::DatastoreRemove { .. }
        | T::JoinUrl { .. }
        | T::NotRefreshed => ExitStatus::Failure,
        // Signatures, lengths, hashes, versions, malformed metadata, unsafe target paths.
        _ => ExitStatus::VerificationFailed,
    }
}

impl Error {
    /// The documented exit status for this error.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            Error::Config { .. }
            | Error::ConfigRead { .. }
            | Error::ConfigParse { .. }
            | Error::ConfigUrl { .. }
            | Error::ConfigUrlScheme { .. }
            | Error::ConfigValue { .. }
            | Error::OsReleaseRead { .. }
            | Error::OsReleaseField { .. }
            | Error::UnsupportedArch { .. }
            | Error::TrustedRootRead { .. }
            | Error::TrustedRootInvalid { .. }
            | Error::DiskMissing { .. } => ExitStatus::Usage,
            Error::LockHeld { .. } => ExitStatus::LockHeld,
            Error::Fleet { source, .. } => match source {
                fleet::Error::Halted { .. } => ExitStatus::ReleaseHalted,
                fleet::Error::AcquireTimeout { .. } => ExitStatus::NoRebootSlot,
                fleet::Error::InvalidInput { .. } => ExitStatus::Usage,
                _ => ExitStatus::Network,
            },
            Error::FleetHost { .. } => ExitStatus::Usage,
            Error::UnsafeState { .. } => ExitStatus::UnsafeState,
            Error::HttpRequest { .. }
            | Error::HttpStatus { .. }
            | Error::StreamEnded { .. }
            | Error::RetryDeadline { .. }
            | Error::RepoNotFound { .. } => ExitStatus::Network,
            Error::TargetIncomplete { source, .. } => match source.exit_code() {
                ExitStatus::Failure => ExitStatus::Network,
                other => other,
            },
            Error::RepoLoad { source, .. }
            | Error::ManifestRead { source }
            | Error::TargetLookup { source, .. }
            | Error::DeltaIndex { source, .. }
            | Error::MigrationCache { source, .. } => classify_tuf(source.as_ref()),
            Error::ManifestMissing
            | Error::ManifestParse { .. }
            | Error::TargetMissing { .. }
            | Error::TargetNoSha256 { .. }
            | Error::TargetTooLong { .. }
            | Error::TargetShort { .. }
            | Error::TargetHash { .. }
            | Error::TrustStateCorrupt { .. }
            | Error::Decode { .. }
            | Error::Verify { .. }
            | Error::Verity { .. } => ExitStatus::VerificationFailed,
            Error::ImageTooLarge { .. } => ExitStatus::ImageTooLarge,
            Error::RootExpired { .. } => ExitStatus::MetadataExpired,
            Error::NothingToRevert { .. } => ExitStatus::BadState,
            Error::Signpost { source, .. } | Error::DiskOverride { source, .. } => {
                match source.exit_code() {
                    signpost::ExitStatus::Refused => ExitStatus::BadState,
                    signpost::ExitStatus::Locked => ExitStatus::LockHeld,
                    _ => ExitStatus::Disk,
                }
            }
            Error::DiskOpen { .. }
            | Error::PlanStale { .. }
            | Error::DiskWrite { .. }
            | Error::DiskRead { .. }
            | Error::DiskSync { .. }
            | Error::DeltaIo { .. } => ExitStatus::Disk,
            _ => ExitStatus::Failure,
        }
    }

    /// An operator hint, if there is a useful one.
    pub fn hint(&self) -> Option<String> {
        // Hints about one specific situation first, then one per exit class.
        match self {
            Error::UnsafeState { path, .. } => {
                return Some(format!(
                    "updog runs as root and never writes its state through a link or into a \
                     directory others can write (that would let them overwrite any file): this \
                     may be an attack. Inspect {}, replace a link by a real directory or file \
                     owned by root (or remove it; updog recreates its state), or fix the \
                     permissions (chmod go-w), then run updog again",
                    path.display()
                ));
            }
            Error::TrustStateCorrupt { path, .. } => {
                return Some(format!(
                    "restore {} from a backup if you have one; otherwise delete it knowingly: \
                     updog then trusts the repository again from the shipped root \
                     (usr/share/updog/root.json under the host root), and on that run it cannot \
                     tell an older (rolled-back) repository or a clock set back from a good one",
                    path.display()
                ));
            }
            Error::TrustedRootInvalid { path, .. } | Error::TrustedRootRead { path, .. } => {
                return Some(format!(
                    "{} ships with the OS image and anchors all trust in the repository; \
                     reinstall it from the image (or --host-root points at the wrong directory)",
                    path.display()
                ));
            }
            Error::Config {
                source: updog_config::Error::UrlScheme { path, key, .. },
            } => {
                return Some(format!(
                    "set `{key}` in {} to an https:// URL (http:// and file:// also work)",
                    path.display()
                ));
            }
            Error::ConfigUrlScheme { path, field, .. } => {
                return Some(format!(
                    "set `{field}` in {} to an https:// URL (http:// and file:// also work)",
                    path.display()
                ));
            }
            Error::RepoNotFound { .. } => {
                return Some(
                    "check metadata_base_url in updog.toml: it must be the directory holding \
                     timestamp.json and the N.root.json files (for Bottlerocket: \
                     <base>/<variant>/<arch>/)"
                        .into(),
                );
            }
            Error::RootExpired { .. } => {
                return Some(
                    "refreshing the repository's timestamp, snapshot or targets does not help: \
                     the repository owner must publish a new root (N+1.root.json, signed by the \
                     current root keys) next to the old ones; or this host's clock is wrong"
                        .into(),
                );
            }
            Error::TargetShort { .. } => {
                return Some(
                    "the repository's copy of the target is shorter than what its metadata \
                     signs (a damaged or partly uploaded file); retrying will not help until it \
                     is fixed. Nothing was activated; the running system is unchanged"
                        .into(),
                );
            }
            Error::NothingToRevert { .. } => {
                return Some(
                    "`update-revert` undoes `update-apply` or `update`; `signpost status` \
                     shows the partition flags"
                        .into(),
                );
            }
            Error::DiskMissing { .. } | Error::DiskOverride { .. } => {
                return Some(
                    "--disk takes a whole-disk image or block device with the A/B partition \
                     table; without --disk, updog finds the running system's disk itself"
                        .into(),
                );
            }
            Error::Signpost {
                op: "activate the staged set",
                ..
            } => {
                return Some(
                    "nothing is staged to apply: `updog update-image` writes and stages an \
                     update, `updog update` writes and activates one; `signpost status` shows \
                     the partition flags"
                        .into(),
                );
            }
            Error::TargetIncomplete { .. } => {
                return Some(
                    "the download did not finish; it resumes where it stopped on the next \
                     `updog update`. Check the network, proxy settings and targets_base_url"
                        .into(),
                );
            }
            _ => {}
        }
        Some(match self.exit_code() {
            ExitStatus::LockHeld => {
                "wait for the other updog to finish (see `systemctl status updog.service`)".into()
            }
            ExitStatus::ClockSteppedBack => {
                "the system clock is earlier than a time updog has already \
                seen; fix the clock (NTP). If the clock was wrongly in the future before, remove \
                var/lib/updog/tuf/latest_known_time.json under the host root"
                    .into()
            }
            ExitStatus::MetadataExpired => "the repository's signed metadata has expired: the \
                publisher must refresh it, or this host's clock is wrong"
                .into(),
            ExitStatus::RollbackDetected => {
                "the repository served older signed metadata than this \
                host already trusts (rollback attack or a stale mirror); nothing was changed"
                    .into()
            }
            ExitStatus::VerificationFailed => "nothing was activated; the running system is \
                unchanged and remains the one to boot"
                .into(),
            ExitStatus::Network => {
                "check the network, metadata_base_url/targets_base_url and the proxy settings \
                in updog.toml"
                    .into()
            }
            ExitStatus::Usage => {
                "check /etc/updog.toml and /etc/os-release (or --host-root)".into()
            }
            _ => return None,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use tuf_client::{TransportError, TransportErrorKind};

    fn load(e: tuf_client::Error) -> ExitStatus {
        Error::RepoLoad {
            url: "http://h/metadata/".into(),
            source: Box::new(e),
        }
        .exit_code()
    }

    fn fetch(kind: TransportErrorKind, cause: Option<Error>) -> tuf_client::Error {
        let url: url::Url = "http://h/metadata/1.snapshot.json".parse().unwrap();
        tuf_client::Error::Fetch {
            what: "snapshot metadata".into(),
            url: url.to_string(),
            source: TransportError::new(
                kind,
                &url,
                "failed",
                cause.map(|c| Box::new(c) as Box<dyn std::error::Error + Send + Sync>),
            ),
        }
    }

    /// The same codes for the same situations as with tough: one per §5 outcome.
    #[test]
    fn tuf_client_errors_keep_their_exit_codes() {
        let t = |s: &str| s.parse::<jiff::Timestamp>().unwrap();
        use tuf_client::Error as T;
        let cases = [
            (
                T::Expired {
                    role: "timestamp".into(),
                    version: 3,
                    expires: t("2020-01-01T00:00:00Z"),
                    now: t("2030-01-01T00:00:00Z"),
                },
                ExitStatus::MetadataExpired,
            ),
            (
                T::TimestampRollback { trusted: 5, new: 3 },
                ExitStatus::RollbackDetected,
            ),
            (
                T::SnapshotVersionRollback {
                    timestamp: 6,
                    trusted: 5,
                    new: 3,
                },
                ExitStatus::RollbackDetected,
            ),
            (
                T::SnapshotRollback {
                    file: "targets.json".into(),
                    trusted: 5,
                    new: 3,
                },
                ExitStatus::RollbackDetected,
            ),
            (
                T::ClockWentBackwards {
                    now: t("2030-01-01T00:00:00Z"),
                    last: t("2031-01-01T00:00:00Z"),
                    tolerance_secs: 300,
                },
                ExitStatus::ClockSteppedBack,
            ),
            (
                T::HashMismatch {
                    what: "snapshot metadata".into(),
                    url: "http://h/metadata/1.snapshot.json".into(),
                    algorithm: "sha256".into(),
                },
                ExitStatus::VerificationFailed,
            ),
            (
                T::LengthMismatch {
                    what: "target 'x'".into(),
                    url: "http://h/targets/x".into(),
                    expected: 2,
                    actual: 1,
                },
                ExitStatus::VerificationFailed,
            ),
            (
                T::TargetsVersion {
                    role: "targets".into(),
                    expected: 2,
                    found: 1,
                },
                ExitStatus::VerificationFailed,
            ),
            // A file the signed metadata names is missing: verification, not network.
            (
                fetch(TransportErrorKind::NotFound, None),
                ExitStatus::VerificationFailed,
            ),
            (
                fetch(
                    TransportErrorKind::Other,
                    Some(Error::HttpStatus {
                        url: "http://h/".into(),
                        status: 503,
                    }),
                ),
                ExitStatus::Network,
            ),
            (
                fetch(
                    TransportErrorKind::Other,
                    Some(Error::RetryDeadline {
                        url: "http://h/".into(),
                        deadline: std::time::Duration::from_secs(2),
                        attempts: 3,
                    }),
                ),
                ExitStatus::Network,
            ),
            // More bytes than updog's transport buffers: the server is not serving the file
            // the metadata signs.
            (
                fetch(
                    TransportErrorKind::Other,
                    Some(Error::TargetTooLong {
                        name: "x".into(),
                        expected: 1,
                    }),
                ),
                ExitStatus::VerificationFailed,
            ),
            (fetch(TransportErrorKind::Other, None), ExitStatus::Network),
            (
                fetch(TransportErrorKind::UnsupportedScheme, None),
                ExitStatus::Usage,
            ),
        ];
        for (e, want) in cases {
            let shown = e.to_string();
            assert_eq!(load(e), want, "{shown}");
        }
        assert_eq!(
            Error::TargetNoSha256 { name: "x".into() }.exit_code(),
            ExitStatus::VerificationFailed
        );
    }
}
