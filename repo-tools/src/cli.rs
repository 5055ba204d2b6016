//! Command-line definitions (clap derive only; behaviour lives in [`crate::commands`]).

use crate::keys::{KeyType, RsaBits};
use crate::layout::MetadataSubdir;
use crate::root::TopRole;
use clap::{Args, Parser, Subcommand};
use key_source::KeyUrl;
use std::num::NonZeroU64;
use std::path::PathBuf;
use url::Url;

/// Root-of-trust ceremonies and air-gapped mirrors for TUF update repositories.
///
/// `repo-tools root` creates and maintains root.json: keys per role, thresholds, expiry, versions,
/// threshold signing on separate machines with merged signatures, and rotation (root N+1
/// cross-signed by root N's keys). `repo-tools mirror` copies a repository, verified, into a
/// directory any static web server can serve; `export`/`import` carry it across an air gap.
#[derive(Debug, Parser)]
#[command(name = "repo-tools", version)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options for every command.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Print the result as JSON on stdout (progress events as JSON lines on stderr).
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Log level for messages on stderr (REPO_TOOLS_LOG, an EnvFilter such as `tough=debug`,
    /// wins).
    #[arg(long, global = true, value_enum, default_value_t = abos_shell::log::LogLevel::Warn)]
    pub log_level: abos_shell::log::LogLevel,
}

/// A command.
#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once
pub enum Command {
    /// Create, edit, sign, merge and verify root.json (the root of trust).
    #[command(subcommand)]
    Root(RootCommand),
    /// Copy a repository (all of it, or one variant/arch/version) into a directory, verifying
    /// every byte; a second run fetches only what changed.
    ///
    /// Layout: DIR/metadata/[SUBDIR/] (root chain 1..N.root.json, timestamp.json,
    /// V.snapshot.json, V.targets.json) and DIR/targets/<sha256>.<name>. Point updog at
    /// metadata_base_url=<base>/metadata/[SUBDIR/] and targets_base_url=<base>/targets/.
    Mirror(MirrorArgs),
    /// Verify a mirror directory against a trusted root (every metadata file and every target).
    VerifyMirror(VerifyMirrorArgs),
    /// Download targets, verified, under their plain names into a new directory (as
    /// `tuftool download`): all of them, or those named with --target.
    Download(DownloadArgs),
    /// Pack a mirror into one tar archive (with an index) for offline media.
    Export(ExportArgs),
    /// Unpack an archive into a staging directory, verify all of it against the trusted root,
    /// and only then move it into place.
    Import(ImportArgs),
    /// Write man pages and shell completions.
    #[command(hide = true)]
    GenerateDocs(GenerateDocsArgs),
}

/// `repo-tools root …`
#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Create a new root.json: no keys, threshold 1 per role, consistent snapshots on.
    Init {
        /// The root file to create (must not exist).
        root: PathBuf,
        /// Initial version.
        #[arg(long, default_value = "1")]
        version: NonZeroU64,
        /// Consistent snapshots (the default; Bottlerocket requires them).
        #[arg(long, overrides_with = "no_consistent_snapshot")]
        consistent_snapshot: bool,
        /// Plain metadata and target names instead of consistent snapshots.
        #[arg(long)]
        no_consistent_snapshot: bool,
        /// Expiry: RFC 3339 or "in N units" (whole seconds).
        #[arg(long, default_value = "in 52 weeks")]
        expires: String,
    },
    /// Add public keys to roles (the key list gains the key if it is new). Clears signatures.
    AddKey {
        /// The root file.
        root: PathBuf,
        /// A key file (private key, PEM public key, hex ed25519 or TUF key JSON), key text, or
        /// a key URL (file://PATH, pkcs11:…, aws-kms://[PROFILE]/KEY-ID: the public key is read
        /// from the token or KMS).
        #[arg(short, long = "key", required = true)]
        keys: Vec<String>,
        /// Role(s) to assign the keys to.
        #[arg(short, long = "role", required = true)]
        roles: Vec<TopRole>,
    },
    /// Remove a key ID from one role, or from every role and the key list. Clears signatures.
    RemoveKey {
        /// The root file.
        root: PathBuf,
        /// Hex key ID.
        key_id: String,
        /// Only from this role.
        #[arg(short, long)]
        role: Option<TopRole>,
    },
    /// Set a role's signature threshold. Clears signatures.
    SetThreshold {
        /// The root file.
        root: PathBuf,
        /// The role.
        role: TopRole,
        /// Signatures required.
        threshold: NonZeroU64,
    },
    /// Set the expiry: RFC 3339 or "in N units" (truncated to whole seconds). Clears signatures.
    Expire {
        /// The root file.
        root: PathBuf,
        /// The time.
        time: String,
    },
    /// Set the version. Clears signatures.
    SetVersion {
        /// The root file.
        root: PathBuf,
        /// The version.
        version: NonZeroU64,
    },
    /// Increment the version (for a rotation: N+1). Clears signatures.
    BumpVersion {
        /// The root file.
        root: PathBuf,
    },
    /// Sign with one or more private keys, keeping other holders' signatures.
    ///
    /// Without --ignore-threshold, nothing is written unless every threshold is met. Key
    /// holders signing their own copies use --ignore-threshold and merge afterwards.
    Sign {
        /// The root file.
        root: PathBuf,
        /// Signing key(s): a private key file or file:///PATH, a PKCS#11 URI
        /// (pkcs11:token=T;object=K?pin-source=FILE) or an AWS KMS key (aws-kms://[PROFILE]/KEY-ID).
        #[arg(short, long = "key", required = true)]
        keys: Vec<KeyUrl>,
        /// The previous root (version N) whose root keys cross-sign this root (N+1).
        #[arg(short, long)]
        cross_sign: Option<PathBuf>,
        /// Write even if a threshold is not met yet (a partial signature).
        #[arg(short, long)]
        ignore_threshold: bool,
    },
    /// Merge the signatures of several signed copies of the same root.
    MergeSignatures {
        /// The signed copies.
        #[arg(required = true, num_args = 1..)]
        inputs: Vec<PathBuf>,
        /// Where to write the merged root.
        #[arg(short, long)]
        out: PathBuf,
        /// The previous root, to check cross-signatures by its keys.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Check a root: roles, key IDs, thresholds, signatures, expiry and (with --previous) the
    /// rotation rule. Exit 1 if anything is wrong.
    Verify {
        /// The root file.
        root: PathBuf,
        /// The previous root (version N) this root (N+1) must be cross-signed by.
        #[arg(long)]
        previous: Option<PathBuf>,
    },
    /// Generate a signing key (ed25519 by default) in a format tough reads, plus OUT.pub.
    GenKey {
        /// The private key file to create (must not exist; mode 0600).
        out: PathBuf,
        /// Key type.
        #[arg(short = 't', long = "type", value_enum, default_value = "ed25519")]
        key_type: KeyType,
        /// RSA modulus size.
        #[arg(long, value_enum, default_value = "2048")]
        bits: RsaBits,
        /// Also add the key to these roles of --root.
        #[arg(short, long = "role", requires = "root")]
        roles: Vec<TopRole>,
        /// The root file to add the key to.
        #[arg(long, requires = "roles")]
        root: Option<PathBuf>,
    },
}

/// `repo-tools mirror`
#[derive(Debug, Args)]
pub struct MirrorArgs {
    /// Source metadata base URL (http://, https://, file://, or s3://BUCKET/KEY/ read through
    /// the S3 API with the AWS environment's endpoint and credentials).
    #[arg(long)]
    pub metadata_url: Url,
    /// Source targets base URL.
    #[arg(long)]
    pub targets_url: Url,
    /// Trusted root.json (any version in the repository's chain).
    #[arg(long)]
    pub root: PathBuf,
    /// Mirror directory (created if missing; reused incrementally), or a bucket,
    /// s3://BUCKET/PREFIX (same layout; objects carry Cache-Control and Content-Type).
    #[arg(long)]
    pub out: PathBuf,
    /// Directory under DIR/metadata/ for this repository, e.g. aws-k8s-1.31/x86_64.
    #[arg(long, default_value = "")]
    pub metadata_subdir: MetadataSubdir,
    /// Only this variant (with --arch).
    #[arg(long, requires = "arch")]
    pub variant: Option<String>,
    /// Only this architecture (with --variant).
    #[arg(long, requires = "variant")]
    pub arch: Option<String>,
    /// Only this version (with --variant and --arch).
    #[arg(long, requires = "variant")]
    pub version: Option<String>,
    /// Accept expired metadata (signatures and hashes are still checked).
    #[arg(long)]
    pub allow_expired: bool,
    /// Parallel downloads.
    #[arg(short, long, default_value = "4")]
    pub jobs: usize,
    /// Attempts per target when the transfer fails (a connection cut mid-body, a 5xx); a
    /// target whose bytes do not match is never retried.
    #[arg(long, default_value = "3")]
    pub attempts: u32,
    /// Copy only the metadata (root chain, timestamp, snapshot, targets), no target files:
    /// as `tuftool clone --metadata-only`. Targets already in the mirror are kept.
    #[arg(long, conflicts_with = "variant")]
    pub metadata_only: bool,
}

/// `repo-tools download`
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The directory to create (must not exist); targets are written as OUTDIR/<name>.
    pub outdir: PathBuf,
    /// Trusted root.json.
    #[arg(short, long)]
    pub root: PathBuf,
    /// Metadata base URL (http://, https:// or file://).
    #[arg(short, long)]
    pub metadata_url: Url,
    /// Targets base URL.
    #[arg(short, long)]
    pub targets_url: Url,
    /// Only this target (repeatable; default: every target).
    #[arg(short = 'n', long = "target", visible_alias = "target-name")]
    pub targets: Vec<String>,
    /// Accept expired metadata (signatures and hashes are still checked).
    #[arg(long, visible_alias = "allow-expired-repo")]
    pub allow_expired: bool,
    /// Parallel downloads.
    #[arg(short, long, default_value = "4")]
    pub jobs: usize,
}

/// `repo-tools verify-mirror`
#[derive(Debug, Args)]
pub struct VerifyMirrorArgs {
    /// The mirror directory.
    pub dir: PathBuf,
    /// Trusted root.json.
    #[arg(long)]
    pub root: PathBuf,
    /// Accept expired metadata.
    #[arg(long)]
    pub allow_expired: bool,
}

/// `repo-tools export`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The mirror directory.
    pub mirror: PathBuf,
    /// The archive to write.
    #[arg(short, long)]
    pub out: PathBuf,
}

/// `repo-tools import`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The archive.
    pub archive: PathBuf,
    /// Trusted root.json.
    #[arg(long)]
    pub root: PathBuf,
    /// Destination directory (must not exist unless --replace).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace an existing destination once the new tree has verified.
    #[arg(long)]
    pub replace: bool,
    /// Accept expired metadata (for media that spent longer in transit than the timestamp role
    /// lives). Signatures and hashes are still checked.
    #[arg(long)]
    pub allow_expired: bool,
}

/// `repo-tools generate-docs`
#[derive(Debug, Args)]
pub struct GenerateDocsArgs {
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }
}
