//! The crate's error type, its exit codes and hints.

use crate::keys::KeyType;
use crate::root::{Authority, TopRole};
use snafu::Snafu;
use std::path::PathBuf;

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes of `repo-tools`. Documented in `--help`; never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: success.
    Success = 0,
    /// 1: a negative answer (`root verify` found problems; a threshold is not met).
    Negative = 1,
    /// 2: usage or input error (bad arguments, unreadable or malformed files, output exists).
    Usage = 2,
    /// 3: verification failed (signatures, hashes, root chain, rollback, expiry, tampered archive).
    Untrusted = 3,
    /// 4: the repository could not be fetched (network, server, missing files at the source).
    Transport = 4,
    /// 5: a local filesystem operation failed.
    Io = 5,
    /// 6: a key on a PKCS#11 token or in AWS KMS could not be used: module not loadable, token
    /// or object missing, login refused, KMS unreachable or refusing. Nothing was written.
    KeyService = 6,
}

impl ExitStatus {
    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        use ExitStatus::*;
        &[
            Success, Negative, Usage, Untrusted, Transport, Io, KeyService,
        ]
    }
    fn code(self) -> u8 {
        self as u8
    }
    fn name(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Negative => "negative",
            Usage => "usage",
            Untrusted => "untrusted",
            Transport => "transport",
            Io => "io",
            KeyService => "key-service",
        }
    }
    fn meaning(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Negative => "negative answer (root verify found problems)",
            Usage => "usage",
            Untrusted => "verification failed",
            Transport => "fetch failed (also: an S3 request failed)",
            Io => "filesystem",
            KeyService => {
                "a key on a PKCS#11 token or in AWS KMS could not be used (module not loadable, token or object missing, wrong PIN, KMS unreachable or refusing; nothing written)"
            }
        }
    }
}

/// Everything that can go wrong in repo-tools.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
#[allow(missing_docs)]
pub enum Error {
    // ---- input parsing ----
    #[snafu(display(
        "cannot parse time '{text}': use RFC 3339 (2030-01-01T00:00:00Z) or 'in N seconds|minutes|hours|days|weeks'"
    ))]
    TimeParse { text: String },

    #[snafu(display(
        "{what} expiry {expires} has fractional seconds; other TUF clients refuse that"
    ))]
    FractionalExpiry {
        what: String,
        expires: jiff::Timestamp,
    },

    #[snafu(display("cannot parse root file {origin}"))]
    ParseRoot {
        origin: String,
        source: serde_json::Error,
    },

    #[snafu(display("cannot parse metadata file {file}"))]
    ParseMetadata {
        file: String,
        source: serde_json::Error,
    },

    #[snafu(display("cannot parse mirror record {}", path.display()))]
    ParseRecord {
        path: PathBuf,
        source: serde_json::Error,
    },

    #[snafu(display("cannot serialise JSON"))]
    CanonicalJson { source: serde_json::Error },

    #[snafu(display("'{key_id}' is not a hex key ID"))]
    BadKeyId { key_id: String },

    #[snafu(display("cannot read private key {}: not ed25519/ECDSA P-256 PKCS#8 DER or RSA PEM", path.display()))]
    ParsePrivateKey {
        path: PathBuf,
        source: Box<tough::error::Error>,
    },

    #[snafu(display("cannot read a public key from {origin}"))]
    ParsePublicKey { origin: String },

    #[snafu(display(
        "invalid metadata subdirectory '{text}': use relative path segments of [A-Za-z0-9._-]"
    ))]
    BadSubdir { text: String },

    #[snafu(display("invalid {what} '{text}'"))]
    BadFilter { what: &'static str, text: String },

    #[snafu(display("invalid URL {url}"))]
    BadUrl { url: String },

    /// An object-storage (S3) location or request failed (`mirror` from or to s3://).
    #[snafu(display("{source}"))]
    ObjectStore { source: repo_store::Error },

    #[snafu(display("{} already exists; refusing to overwrite it", path.display()))]
    OutputExists { path: PathBuf },

    // ---- keys ----
    #[snafu(display("failed to generate a {kind:?} key"))]
    GenerateKey { kind: KeyType },

    #[snafu(display("cannot compute a key ID"))]
    KeyId { source: Box<tough::schema::Error> },

    /// A key URL is malformed, or a token/KMS key cannot be used; the message names the URL (PIN
    /// redacted) and the cause.
    #[snafu(transparent)]
    KeySource { source: key_source::Error },

    // ---- root editing and signing ----
    #[snafu(display("key {key_id} is not assigned to role '{role}'"))]
    KeyNotInRole { key_id: String, role: TopRole },

    #[snafu(display("key {key_id} is not in this root"))]
    KeyNotInRoot { key_id: String },

    #[snafu(display("root version would overflow"))]
    VersionOverflow,

    #[snafu(display(
        "root version {version} expired at {expires}; set a new expiry before signing"
    ))]
    RootExpired {
        version: u64,
        expires: jiff::Timestamp,
    },

    #[snafu(display("root is not signable: {problem}"))]
    UnstableRoot { problem: String },

    #[snafu(display(
        "cannot cross-sign: new root version {version} must be the previous root's version {previous} plus one"
    ))]
    CrossSignVersion { previous: u64, version: u64 },

    #[snafu(display(
        "key {key} (key ID {key_id}) is not a root key of this root (nor of the cross-signing root)"
    ))]
    NotARootKey { key: String, key_id: String },

    #[snafu(display("signing with {key} failed"))]
    Sign {
        key: String,
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    #[snafu(display(
        "root threshold not met for {} root keys (version {authority_version}): {valid} valid signature(s), {threshold} required",
        match authority { Authority::This => "its own", Authority::Previous => "the previous root's" }
    ))]
    ThresholdNotMet {
        authority: Authority,
        authority_version: u64,
        valid: usize,
        threshold: u64,
    },

    #[snafu(display("nothing to merge"))]
    NothingToMerge,

    #[snafu(display("{} is not the same root as {}: the signed content differs", path.display(), first.display()))]
    MergeMismatch { path: PathBuf, first: PathBuf },

    #[snafu(display("{} carries a signature by key {key_id}, which this root does not list", path.display()))]
    UnknownSignatureKey { path: PathBuf, key_id: String },

    #[snafu(display("{} carries an invalid signature by key {key_id}", path.display()))]
    BadSignature { path: PathBuf, key_id: String },

    // ---- repositories ----
    #[snafu(display("root chain file {file} {reason}"))]
    RootChain { file: String, reason: String },

    #[snafu(display("the repository's root chain is empty"))]
    EmptyRootChain,

    /// Locating, loading or reading the repository through the shared core (base URLs, the
    /// trusted root, expired metadata, capped manifest reads); the message names the URL.
    #[snafu(transparent)]
    Repo { source: abos_repo_core::Error },

    #[snafu(display(
        "the repository at {url} uses delegated targets roles, which repo-tools does not mirror"
    ))]
    DelegationsUnsupported { url: String },

    #[snafu(display("{role} metadata has no entry for {key}"))]
    MetaMissing { key: String, role: String },

    #[snafu(display("{url} not found"))]
    MetadataNotFound { url: String },

    #[snafu(display("failed to fetch {url}"))]
    Fetch {
        url: String,
        source: Box<tough::TransportError>,
    },

    #[snafu(display("{url} is larger than {max} bytes"))]
    TooLarge { url: String, max: u64 },

    #[snafu(display("metadata file {file} does not match what was verified: {reason}"))]
    MetadataMismatch { file: String, reason: String },

    #[snafu(display("metadata file {file} is not signed by a threshold of its role's keys"))]
    MetadataSignature {
        file: String,
        source: Box<tough::schema::Error>,
    },

    #[snafu(display("invalid target name '{name}'"))]
    TargetName {
        name: String,
        source: Box<tough::error::Error>,
    },

    #[snafu(display("target '{name}' is not listed in the repository's targets metadata"))]
    SelectedTargetMissing { name: String },

    #[snafu(display("failed to fetch and verify target '{name}'"))]
    ReadTarget {
        name: String,
        source: Box<tough::error::Error>,
    },

    #[snafu(display("target file {path} failed verification"))]
    VerifyTarget {
        path: String,
        source: Box<tough::error::Error>,
    },

    #[snafu(display("the manifest has no update matching {filter}"))]
    NothingMatches { filter: String },

    #[snafu(display(
        "refusing rollback: the mirror holds {role} version {mirrored}, the source offers {source_version}"
    ))]
    Rollback {
        role: String,
        mirrored: u64,
        source_version: u64,
    },

    #[snafu(display("no repository (metadata/…/timestamp.json) found in {}", dir.display()))]
    NoRepository { dir: PathBuf },

    #[snafu(display("unexpected file {path}: {reason}"))]
    UnexpectedFile { path: String, reason: String },

    #[snafu(display("file {path} (target '{name}') is missing"))]
    MissingFile { path: String, name: String },

    #[snafu(display("unsafe file name '{name}'"))]
    UnsafeName { name: String },

    // ---- archives ----
    #[snafu(display("archive entry {path} refused: {reason}"))]
    ArchiveEntry { path: String, reason: String },

    #[snafu(display("archive {} has no index ({})", archive.display(), crate::archive::INDEX_FILE))]
    ArchiveIndexMissing { archive: PathBuf },

    #[snafu(display("cannot parse the index of archive {}: {reason}", archive.display()))]
    ParseIndex {
        archive: PathBuf,
        /// The parser's complaint, escaped and bounded (it may quote the archive's bytes).
        reason: String,
    },

    #[snafu(display("cannot read archive {}", path.display()))]
    ReadArchive {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("{} changed while it was being archived", path.display()))]
    ChangedWhileReading { path: PathBuf },

    #[snafu(display("mirror file {} is corrupt: sha256 {actual}, targets metadata says {expected}", path.display()))]
    CorruptMirrorFile {
        path: PathBuf,
        expected: String,
        actual: String,
    },

    // ---- local filesystem ----
    #[snafu(display("cannot read {}", path.display()))]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("cannot write {}", path.display()))]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("cannot create directory {}", path.display()))]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("cannot list directory {}", path.display()))]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("cannot remove {}", path.display()))]
    Remove {
        path: PathBuf,
        source: std::io::Error,
    },

    #[snafu(display("cannot move {} to {}", from.display(), to.display()))]
    Rename {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },

    /// A durable write, create, removal or fsync (`abos-fsio`) failed.
    #[snafu(display("cannot write {} ({})", path.display(), source.op()))]
    Durable {
        path: PathBuf,
        source: abos_fsio::Error,
    },

    #[snafu(display("{} has no parent directory", path.display()))]
    NoParent { path: PathBuf },
}

/// True if a tough error (or anything in its cause chain) says the bytes did not match the
/// signed hash or length: tough reports those through its transport error.
fn content_mismatch(err: &tough::error::Error) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(err);
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

/// The exit status of a repository-core error, as repo-tools has always classed these failures:
/// a transport failure is 4, anything the verification refused is 3.
fn repo_status(source: &abos_repo_core::Error) -> ExitStatus {
    use abos_repo_core::Error as Core;
    match source {
        e if e.is_transport() => ExitStatus::Transport,
        Core::PathUrl { .. } | Core::ParseRoot { .. } => ExitStatus::Usage,
        Core::CurrentDir { .. }
        | Core::ReadRoot { .. }
        | Core::Datastore { .. }
        | Core::StageRoot { .. }
        | Core::SerializeRoot { .. }
        | Core::Editor { .. } => ExitStatus::Io,
        _ => ExitStatus::Untrusted,
    }
}

impl Error {
    /// The exit status for this error.
    pub fn exit_status(&self) -> ExitStatus {
        use Error::*;
        match self {
            TimeParse { .. }
            | ParseRoot { .. }
            | ParseMetadata { .. }
            | ParseRecord { .. }
            | BadKeyId { .. }
            | ParsePrivateKey { .. }
            | ParsePublicKey { .. }
            | BadSubdir { .. }
            | BadUrl { .. }
            | OutputExists { .. }
            | KeyNotInRole { .. }
            | KeyNotInRoot { .. }
            | VersionOverflow
            | RootExpired { .. }
            | UnstableRoot { .. }
            | CrossSignVersion { .. }
            | NotARootKey { .. }
            | NothingToMerge
            | MergeMismatch { .. }
            | NothingMatches { .. }
            | DelegationsUnsupported { .. }
            | FractionalExpiry { .. }
            | CanonicalJson { .. }
            | GenerateKey { .. }
            | KeyId { .. }
            | Sign { .. }
            | UnsafeName { .. }
            | NoRepository { .. }
            | BadFilter { .. }
            | ParseIndex { .. }
            | ArchiveIndexMissing { .. } => ExitStatus::Usage,
            KeySource { source } => match source.class() {
                key_source::ErrorClass::Url => ExitStatus::Usage,
                key_source::ErrorClass::File => ExitStatus::Usage,
                key_source::ErrorClass::Refused | key_source::ErrorClass::Unavailable => {
                    ExitStatus::KeyService
                }
            },
            ThresholdNotMet { .. } => ExitStatus::Negative,
            ObjectStore { source } => match source {
                repo_store::Error::BadUrl { .. } | repo_store::Error::Profile { .. } => {
                    ExitStatus::Usage
                }
                _ => ExitStatus::Transport,
            },
            MetadataNotFound { .. } | Fetch { .. } => ExitStatus::Transport,
            Repo { source } => repo_status(source),
            ReadTarget { source, .. } | VerifyTarget { source, .. } => {
                if content_mismatch(source.as_ref()) {
                    ExitStatus::Untrusted
                } else if matches!(source.as_ref(), tough::error::Error::Transport { .. }) {
                    ExitStatus::Transport
                } else {
                    ExitStatus::Untrusted
                }
            }
            UnknownSignatureKey { .. }
            | BadSignature { .. }
            | RootChain { .. }
            | EmptyRootChain
            | MetaMissing { .. }
            | TooLarge { .. }
            | MetadataMismatch { .. }
            | MetadataSignature { .. }
            | TargetName { .. }
            | SelectedTargetMissing { .. }
            | Rollback { .. }
            | UnexpectedFile { .. }
            | MissingFile { .. }
            | ArchiveEntry { .. }
            | CorruptMirrorFile { .. }
            | ChangedWhileReading { .. } => ExitStatus::Untrusted,
            ReadFile { .. }
            | WriteFile { .. }
            | CreateDir { .. }
            | ReadDir { .. }
            | Remove { .. }
            | Rename { .. }
            | Durable { .. }
            | NoParent { .. }
            | ReadArchive { .. } => ExitStatus::Io,
        }
    }

    /// A suggestion for the operator, when there is a useful one.
    pub fn hint(&self) -> Option<String> {
        use Error::*;
        Some(match self {
            ThresholdNotMet { .. } => "sign with more root keys (each holder signs their own copy), then `repo-tools root merge-signatures`; pass --ignore-threshold to write a partial signature".into(),
            RootExpired { .. } => "run `repo-tools root expire ROOT.json 'in 52 weeks'` (this clears signatures) and sign again".into(),
            NotARootKey { .. } => "add the key with `repo-tools root add-key --role root`, or pass --cross-sign OLD.json if it is a key of the previous root".into(),
            UnknownSignatureKey { .. } => "if it is a cross-signature by a key of the previous root, pass --previous OLD.json".into(),
            MergeMismatch { .. } => "every copy must come from the same edited root; edits after signing clear signatures".into(),
            CrossSignVersion { .. } => "run `repo-tools root bump-version` on the new root first".into(),
            OutputExists { .. } => "choose another path, or remove the existing one first (import: --replace)".into(),
            KeySource { source } => return source.hint().map(str::to_owned),
            ParsePrivateKey { .. } => "generate keys with `repo-tools root gen-key`; ed25519/ECDSA keys must be PKCS#8 DER, RSA keys PEM".into(),
            Repo {
                source:
                    abos_repo_core::Error::Load { .. }
                    | abos_repo_core::Error::Expired { .. }
                    | abos_repo_core::Error::Missing { .. },
            } => "check the URLs and that ROOT.json is the root this repository is signed under; pass --allow-expired only for media known to be stale".into(),
            Rollback { .. } => "the source repository is older than the mirror: check that you point at the right repository".into(),
            ArchiveEntry { .. } | UnexpectedFile { .. } | VerifyTarget { .. } | MissingFile { .. } => "the archive was damaged or tampered with: export it again from a verified mirror".into(),
            NothingMatches { .. } => "check --variant/--arch/--version against the repository's manifest.json".into(),
            RootChain { .. } => "the repository's root chain does not lead from the trusted root; check ROOT.json".into(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn status(source: abos_repo_core::Error) -> ExitStatus {
        Error::from(source).exit_status()
    }

    #[test]
    fn repository_core_errors_keep_their_exit_codes() {
        use abos_repo_core::Error as Core;
        let url = "http://127.0.0.1:1/metadata/".to_owned();
        assert_eq!(
            status(Core::Missing {
                metadata_url: url.clone()
            }),
            ExitStatus::Transport
        );
        assert_eq!(
            status(Core::TargetTooLarge {
                name: "manifest.json".into(),
                targets_url: url.clone(),
                length: 1 << 30,
                max: 1 << 24,
            }),
            ExitStatus::Untrusted
        );
        assert_eq!(
            status(Core::ReadRoot {
                path: "/nonexistent/root.json".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
            ExitStatus::Io
        );
        assert_eq!(
            status(Core::PathUrl {
                path: "relative".into()
            }),
            ExitStatus::Usage
        );
    }
}
