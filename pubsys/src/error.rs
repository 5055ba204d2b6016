//! The one error type of the pubsys crate, and its documented exit codes.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias for pubsys.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Process exit status of the `pubsys` binary, by error class.
///
/// These numbers are a public interface for scripts: they are never renumbered or reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
#[repr(u8)]
pub enum ExitStatus {
    /// 0: the command did what was asked.
    Success = 0,
    /// 1: a defined negative answer: `check-repo-expirations` found a role expiring inside the
    /// window, or `validate-repo` found targets that fail verification.
    Negative = 1,
    /// 2: bad usage or environment (clap usage errors, unreadable input files, bad policy files).
    Usage = 2,
    /// 3: signing keys: missing, unreadable, wrong format, not in root, threshold not met.
    Keys = 3,
    /// 4: the repository could not be loaded or verified (bad signature, expired, rolled back,
    /// unreachable).
    Repository = 4,
    /// 5: a conflict with what the repository already holds (release already published, output
    /// directory exists, target name reused with other content).
    Conflict = 5,
    /// 6: the manifest is or would become invalid.
    Manifest = 6,
    /// 7: writing the repository failed; the live repository was left as it was.
    Write = 7,
}

impl ExitStatus {
    /// The numeric exit code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Everything that can go wrong in pubsys.
#[derive(Debug, Snafu)]
#[snafu(visibility(pub(crate)))]
#[non_exhaustive]
pub enum Error {
    /// The trusted root file could not be read.
    #[snafu(display("Failed to read trusted root '{}'", path.display()))]
    ReadRoot {
        /// Root path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// A signing key file could not be read (usually: it does not exist).
    #[snafu(display("Failed to read signing key '{}'", path.display()))]
    ReadKey {
        /// Key path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// A signing key file is not in a format tough can sign with.
    #[snafu(display("Signing key '{}' is not in a supported format", path.display()))]
    KeyFormat {
        /// Key path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// A key source names a backend pubsys does not have.
    #[snafu(display(
        "Unsupported key source '{spec}': use a path, file://PATH, a pkcs11: URI or aws-kms://[PROFILE]/KEY-ID"
    ))]
    KeySourceUnsupported {
        /// The key source as given.
        spec: String,
    },

    /// A key on a PKCS#11 token or in AWS KMS (or a key URL) cannot be used: malformed URL,
    /// module not loadable, wrong PIN, no such token or object, KMS unreachable or refusing.
    /// The message names the key's URL (PIN redacted) and the cause.
    #[snafu(transparent)]
    KeySource {
        /// Cause.
        source: key_source::Error,
    },

    /// A signing key is not listed in root.json at all.
    #[snafu(display(
        "Signing key '{key}' (key id {key_id}) is not listed in the repository's root.json (version {root_version})"
    ))]
    KeyNotInRoot {
        /// Key location (path or URL, PIN redacted).
        key: String,
        /// Hex key id of the key.
        key_id: String,
        /// Version of the root consulted.
        root_version: u64,
    },

    /// The given keys cannot meet a role's threshold.
    #[snafu(display(
        "The signing keys given cannot sign the {role} role: it needs {threshold} signature(s) from its {authorised} authorised key(s), and {have} of the given keys are authorised for it"
    ))]
    KeyThreshold {
        /// Role name.
        role: String,
        /// Threshold in root.
        threshold: u64,
        /// Number of keys root authorises for the role.
        authorised: usize,
        /// Number of given keys authorised for the role.
        have: usize,
    },

    /// No signing keys were given.
    #[snafu(display("No signing keys given"))]
    NoKeys,

    /// Locating, loading, editing or reading the repository (the shared core: base URLs,
    /// the trusted root, expired metadata, capped manifest reads). The message names the URL or
    /// path.
    #[snafu(transparent)]
    Repo {
        /// Cause.
        source: abos_repo_core::Error,
    },

    /// The repository directory holds metadata, but the URL it was loaded from does not.
    #[snafu(display("'{}' already holds repository metadata, but {metadata_url} has none; refusing to start a new repository over it", path.display()))]
    RepoLocationMismatch {
        /// Directory holding metadata.
        path: PathBuf,
        /// URL that was read.
        metadata_url: String,
    },

    /// The manifest would become invalid (or an edit was refused).
    #[snafu(display("The manifest would become invalid"))]
    ManifestInvalid {
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// A manifest file for the editor could not be loaded or written.
    #[snafu(display("Failed to access manifest file '{}'", path.display()))]
    ManifestFile {
        /// Manifest path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// The manifest editor could not find the entry named.
    #[snafu(display("No update in the manifest for {variant} {arch} {version}"))]
    UpdateNotFound {
        /// Variant.
        variant: String,
        /// Arch.
        arch: String,
        /// Version.
        version: String,
    },

    /// The release is already in the repository.
    #[snafu(display("The repository already holds release {variant} {arch} {version}"))]
    ReleaseExists {
        /// Variant.
        variant: String,
        /// Arch.
        arch: String,
        /// Version.
        version: String,
    },

    /// The output directory already exists.
    #[snafu(display("Output directory '{}' already exists", path.display()))]
    OutdirExists {
        /// The directory.
        path: PathBuf,
    },

    /// A target name is already in the repository with different content.
    #[snafu(display(
        "Target '{name}' is already in the repository with different content (sha256 {existing}, new {new})"
    ))]
    TargetConflict {
        /// Target name.
        name: String,
        /// Hash listed now.
        existing: String,
        /// Hash of the new file.
        new: String,
    },

    /// A file name cannot be a target name.
    #[snafu(display("'{name}' is not a valid target name"))]
    TargetName {
        /// The name.
        name: String,
        /// Cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// A file to publish has no usable file name.
    #[snafu(display("'{}' has no UTF-8 file name to use as a target name", path.display()))]
    NoFileName {
        /// The path.
        path: PathBuf,
    },

    /// An input file (image, extra target) could not be read.
    #[snafu(display("Failed to read input file '{}'", path.display()))]
    ReadInput {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// An input file's size or hash disagrees with the build description.
    #[snafu(display("Input file '{}' does not match the build description ({what})", path.display()))]
    InputMismatch {
        /// Path.
        path: PathBuf,
        /// What differs.
        what: String,
    },

    /// The build description could not be loaded.
    #[snafu(display("Failed to load build description '{}'", path.display()))]
    BuildDescription {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// The command line names neither a build description nor all three image paths.
    #[snafu(display(
        "A release needs --build-description, or --variant, --arch, --version and all of --boot, --root and --hash"
    ))]
    ReleaseInputs,

    /// Release.toml could not be loaded.
    #[snafu(display("Failed to load release file '{}'", path.display()))]
    ReleaseFile {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },

    /// A wave policy could not be loaded.
    #[snafu(display("Failed to load wave policy '{}'", path.display()))]
    WavePolicy {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(waves::Error, Box::new)))]
        source: Box<waves::Error>,
    },

    /// The expiration policy file could not be read.
    #[snafu(display("Failed to read expiration policy '{}'", path.display()))]
    ReadExpirationPolicy {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// The expiration policy file is malformed.
    #[snafu(display("Invalid expiration policy '{}'", path.display()))]
    ParseExpirationPolicy {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },

    /// A time or duration argument is malformed.
    #[snafu(display("Invalid {what} '{value}': {reason}"))]
    ParseTime {
        /// Which setting.
        what: String,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },

    /// An expiry time computation overflowed.
    #[snafu(display("Expiry time for {role} is out of range"))]
    ExpiryRange {
        /// Role.
        role: String,
        /// Cause.
        source: jiff::Error,
    },

    /// tough's repository editor refused the repository or an edit.
    #[snafu(display("Failed to prepare repository edit"))]
    Editor {
        /// Cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// Signing failed.
    #[snafu(display("Failed to sign repository metadata"))]
    Sign {
        /// Cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// Signed metadata could not be staged.
    #[snafu(display("Failed to stage signed metadata in '{}'", path.display()))]
    Stage {
        /// Staging dir.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(tough::error::Error, Box::new)))]
        source: Box<tough::error::Error>,
    },

    /// `--delta`: the root image could not be chunked (abos-chunked).
    #[snafu(display("Failed to build the chunked form of '{}'", path.display()))]
    Delta {
        /// The root image.
        path: PathBuf,
        /// Cause.
        source: abos_delta::Error,
    },

    /// `--delta`: reading the root image or writing its chunked form failed.
    #[snafu(display("Failed to build the chunked form of '{}'", path.display()))]
    DeltaIo {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// A file operation in the repository store failed.
    #[snafu(display("Failed to {action} '{}'", path.display()))]
    StoreIo {
        /// What was being done.
        action: String,
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// Writing, removing or fsyncing a file of the local repository store failed.
    #[snafu(display("Failed to update '{}' in the repository ({})", path.display(), source.op()))]
    StoreFile {
        /// Path.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },

    /// Metadata could not be serialised.
    #[snafu(display("Failed to serialise {what}"))]
    Serialize {
        /// What.
        what: String,
        /// Cause.
        source: serde_json::Error,
    },

    /// Some targets failed verification.
    #[snafu(display("{failed} of {total} targets failed verification (first: '{first}')"))]
    TargetsInvalid {
        /// Failed count.
        failed: usize,
        /// Total checked.
        total: usize,
        /// First failing target.
        first: String,
    },

    /// The manifest names an image target the repository does not list.
    #[snafu(display(
        "manifest.json names target '{name}' for {variant} {arch} {version}, but the repository does not list it"
    ))]
    ManifestTargetMissing {
        /// Target.
        name: String,
        /// Variant.
        variant: String,
        /// Arch.
        arch: String,
        /// Version.
        version: String,
    },

    /// A URL could not be built.
    #[snafu(display("Invalid URL '{url}'"))]
    Url {
        /// URL text.
        url: String,
        /// Cause.
        source: url::ParseError,
    },

    /// The async runtime could not be started.
    #[snafu(display("Failed to start the async runtime"))]
    Runtime {
        /// Cause.
        source: std::io::Error,
    },

    /// A background task failed.
    #[snafu(display("A background task failed"))]
    Join {
        /// Cause.
        source: tokio::task::JoinError,
    },

    /// Documentation could not be written.
    #[snafu(display("Failed to write documentation to '{}'", path.display()))]
    WriteDocs {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// An object-storage (S3) repository location or request failed; a lost conditional
    /// write (another publisher won) is a conflict, exit 5.
    #[snafu(display("{source}"))]
    ObjectStore {
        /// Cause.
        source: repo_store::Error,
    },

    /// Another pubsys holds the repository's writer lock.
    #[snafu(display("The repository is being updated by another pubsys (lock '{}' is held)", path.display()))]
    RepoLocked {
        /// Lock file.
        path: PathBuf,
    },

    /// The command line does not say where the repository is.
    #[snafu(display("No repository location: {reason}"))]
    Location {
        /// What to give.
        reason: String,
    },

    /// tough could not compute a key id for a key.
    #[snafu(display("Failed to compute the key id of '{}'", path.display()))]
    KeyId {
        /// Key path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(tough::schema::Error, Box::new)))]
        source: Box<tough::schema::Error>,
    },

    /// A new root for a key rotation is not acceptable.
    #[snafu(display("Cannot rotate to root '{}': {reason}", path.display()))]
    RootRotation {
        /// New root path.
        path: PathBuf,
        /// Why.
        reason: String,
    },

    /// Infra.toml could not be read.
    #[snafu(display("Failed to read infrastructure config '{}'", path.display()))]
    ReadInfra {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },

    /// Infra.toml is malformed.
    #[snafu(display("Invalid infrastructure config '{}'", path.display()))]
    ParseInfra {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: toml::de::Error,
    },

    /// The root file does not have the SHA-512 Infra.toml expects.
    #[snafu(display("Root '{}' has SHA-512 {actual}, but root_role_sha512 in Infra.toml is {expected}", path.display()))]
    RootDigest {
        /// Root path.
        path: PathBuf,
        /// Configured digest.
        expected: String,
        /// Actual digest.
        actual: String,
    },

    /// A file the command would create already exists.
    #[snafu(display("'{}' already exists", path.display()))]
    FileExists {
        /// The path.
        path: PathBuf,
    },

    /// Two files of one release would be published under the same target name.
    #[snafu(display(
        "Two files of this release are both named '{name}' (target names are file names)"
    ))]
    DuplicateTarget {
        /// The target name.
        name: String,
    },

    /// The root does not use consistent snapshots: the repository pubsys writes
    /// (`<sha256>.<name>` targets, `V.snapshot.json`) would be unreadable by every client.
    #[snafu(display(
        "Root '{}' (version {version}) has consistent_snapshot false; pubsys publishes only repositories with consistent snapshots",
        path.display()
    ))]
    NoConsistentSnapshots {
        /// The root consulted (the trusted root, or the repository's latest root).
        path: PathBuf,
        /// Its version.
        version: u64,
    },

    /// The yank request does not change anything.
    #[snafu(display("Nothing to yank: {reason}"))]
    NothingToYank {
        /// Why.
        reason: String,
    },
}

impl Error {
    /// The documented exit status for this error.
    pub fn exit_status(&self) -> ExitStatus {
        use Error::*;
        match self {
            ReadKey { .. }
            | KeyId { .. }
            | RootRotation { .. }
            | KeyFormat { .. }
            | KeySourceUnsupported { .. }
            | KeySource { .. }
            | KeyNotInRoot { .. }
            | KeyThreshold { .. }
            | NoKeys
            | Sign { .. } => ExitStatus::Keys,
            RootDigest { .. } | ManifestTargetMissing { .. } => ExitStatus::Repository,
            Repo { source } => repo_status(source),
            ReleaseExists { .. }
            | OutdirExists { .. }
            | TargetConflict { .. }
            | DuplicateTarget { .. }
            | RepoLocationMismatch { .. }
            | FileExists { .. }
            | RepoLocked { .. } => ExitStatus::Conflict,
            ManifestInvalid { .. } | ManifestFile { .. } | UpdateNotFound { .. } => {
                ExitStatus::Manifest
            }
            Stage { .. }
            | StoreIo { .. }
            | StoreFile { .. }
            | Serialize { .. }
            | Editor { .. }
            | WriteDocs { .. } => ExitStatus::Write,
            Delta { .. } | DeltaIo { .. } => ExitStatus::Write,
            TargetsInvalid { .. } => ExitStatus::Negative,
            ObjectStore { source } => match source {
                repo_store::Error::Conflict { .. } => ExitStatus::Conflict,
                repo_store::Error::BadUrl { .. } | repo_store::Error::Profile { .. } => {
                    ExitStatus::Usage
                }
                _ => ExitStatus::Write,
            },
            _ => ExitStatus::Usage,
        }
    }

    /// The numeric exit code for this error (see [`ExitStatus`]).
    pub fn exit_code(&self) -> u8 {
        self.exit_status().code()
    }

    /// An operator hint for this error, if there is a useful one.
    pub fn hint(&self) -> Option<String> {
        use Error::*;
        match self {
            KeyFormat { .. } => Some(
                "ed25519 and ECDSA P-256 keys must be PKCS#8 DER files; RSA keys PEM (PKCS#8 or PKCS#1)"
                    .into(),
            ),
            KeySource { source } => source.hint().map(str::to_owned),
            KeyNotInRoot { .. } | KeyThreshold { .. } => Some(
                "check the key against root.json (repo-tools root add-key) or pass more --key options"
                    .into(),
            ),
            NoKeys => Some(
                "pass --key FILE|pkcs11:URI|aws-kms://[PROFILE]/KEY-ID (repeat for threshold signing), or set signing_keys in Infra.toml"
                    .into(),
            ),
            Repo {
                source: abos_repo_core::Error::Expired { .. },
            } => Some(
                "run `pubsys refresh-repo --allow-expired-repo` first, or pass --allow-expired-repo"
                    .into(),
            ),
            ReleaseExists { .. } => {
                Some("bump the version, or `pubsys yank --remove` the release first".into())
            }
            OutdirExists { .. } => Some("choose a new --outdir, or use --repo-dir to update in place".into()),
            NothingToYank { .. } => Some(
                "yank lowers max_version (--max-version) or removes a release (--remove); to offer withheld releases again, publish with `pubsys repo --reinstate-yanked` or edit with `pubsys manifest set-max-version`".into(),
            ),
            NoConsistentSnapshots { .. } => Some(
                "make a root with consistent snapshots (`repo-tools root init` does by default; tuftool root init too) and sign it".into(),
            ),
            ManifestInvalid { source }
                if matches!(**source, update_metadata::Error::BrokenMigrationChain { .. }) =>
            {
                Some(
                    "nothing was written; a release without migrations needs an empty migration list: \
                     pass --assume-no-migrations (`pubsys manifest add-update`), or record them with \
                     `pubsys manifest set-migrations`"
                        .into(),
                )
            }
            ManifestInvalid { .. } => Some("nothing was written; `pubsys manifest validate` explains manifest rules".into()),
            _ => None,
        }
    }
}

/// The exit status of a repository-core error, as pubsys has always classed these failures.
fn repo_status(source: &abos_repo_core::Error) -> ExitStatus {
    use abos_repo_core::Error as Core;
    match source {
        Core::Missing { .. }
        | Core::Expired { .. }
        | Core::Load { .. }
        | Core::TargetMissing { .. }
        | Core::TargetTooLarge { .. }
        | Core::ReadTarget { .. }
        | Core::ParseManifest { .. } => ExitStatus::Repository,
        Core::Datastore { .. }
        | Core::CurrentDir { .. }
        | Core::StageRoot { .. }
        | Core::SerializeRoot { .. }
        | Core::Editor { .. } => ExitStatus::Write,
        // An unreadable or unparsable trusted root, a path with no file:// URL.
        _ => ExitStatus::Usage,
    }
}

/// Renders an error and its sources as one line, `a: b: c` (for per-item failure lists).
pub fn chain_string(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = e.source();
    }
    out
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
        let url = "file:///srv/repo/metadata/v/a/".to_owned();
        assert_eq!(
            status(Core::Missing {
                metadata_url: url.clone()
            }),
            ExitStatus::Repository
        );
        assert_eq!(
            status(Core::TargetTooLarge {
                name: "manifest.json".into(),
                targets_url: url.clone(),
                length: 1 << 30,
                max: 1 << 24,
            }),
            ExitStatus::Repository
        );
        assert_eq!(
            status(Core::ReadRoot {
                path: "/nonexistent/root.json".into(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            }),
            ExitStatus::Usage
        );
        assert_eq!(
            status(Core::Datastore {
                path: "/ro/datastore".into(),
                source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
            }),
            ExitStatus::Write
        );
    }
}
