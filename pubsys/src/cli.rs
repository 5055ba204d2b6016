//! Command-line definitions (clap derive only; behaviour lives in [`crate::commands`]).

use crate::keys::KeySpec;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use update_metadata::{Arch, TargetName, Variant, Version};
use url::Url;

/// Publish OS releases into TUF repositories, and keep those repositories valid.
///
/// A repository directory (--repo-dir DIR) holds metadata per variant and arch under
/// DIR/metadata/<variant>/<arch>/ and every target under the shared DIR/targets/; serve DIR over
/// any static web server and point updog's metadata_base_url at .../metadata/<variant>/<arch>/
/// and targets_base_url at .../targets/.
#[derive(Debug, Parser)]
#[command(name = "pubsys", version, about, long_about)]
pub struct Cli {
    /// Log level for messages on stderr.
    #[arg(long, global = true, value_enum, default_value_t = abos_shell::log::LogLevel::Warn)]
    pub log_level: abos_shell::log::LogLevel,

    /// More logging (-v info, -vv debug, -vvv trace); overrides --log-level.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Print the outcome as JSON on stdout.
    #[arg(long, global = true)]
    pub json: bool,

    /// Bottlerocket's Infra.toml: `[repo.<name>]` supplies signing_keys, metadata_base_url and
    /// targets_url when the options are not given, and root_role_sha512 is checked against
    /// --root-role-path.
    #[arg(long, global = true)]
    pub infra_config_path: Option<PathBuf>,

    /// Which `[repo.<name>]` of Infra.toml to use.
    #[arg(long, global = true, default_value = "default")]
    pub repo: String,

    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

const REPO_EXAMPLES: &str = "Examples:
  # First release into a new repository directory, rolled out over the default waves
  pubsys repo --root-role-path root.json --key keys/targets.pk8 --repo-dir /srv/updates \\
      --build-description build/bottlerocket-aws-dev-x86_64.json \\
      --wave-policy waves/policies/default.toml --release-start-time 'in 1 hour'

  # Same, from explicit image files
  pubsys repo --root-role-path root.json --key keys/targets.pk8 --repo-dir /srv/updates \\
      --variant aws-dev --arch x86_64 --version 1.1.0 \\
      --boot boot.ext4.lz4 --root root.ext4.lz4 --hash root.verity.lz4 \\
      --release-file Release.toml --extra-target migrate_v1.1.0_example.lz4";

/// pubsys subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a repository, or add a release to an existing one.
    ///
    /// The existing repository is loaded and verified with the trusted root (an expired one is
    /// refused unless --allow-expired-repo). The three images, any --extra-target files and a
    /// new manifest.json are written as targets first; then the metadata, timestamp.json last,
    /// so a reader never sees metadata naming a missing target and a failure never leaves the
    /// live repository half-updated.
    #[command(after_long_help = REPO_EXAMPLES)]
    Repo(RepoArgs),
    /// Download and verify every target of a repository (16 at a time).
    ValidateRepo(ValidateArgs),
    /// Show each role's expiry; exit 1 if any expires within the window.
    CheckRepoExpirations(CheckExpirationsArgs),
    /// Re-sign snapshot, targets and timestamp with new versions and expirations; nothing else
    /// changes (root is never touched).
    RefreshRepo(RefreshArgs),
    /// Pull a bad release back: lower max_version (hosts above it move down to the newest good
    /// version) or remove the release's entry. Signed like a release.
    Yank(YankArgs),
    /// Edit a manifest.json file (Bottlerocket's `updata`).
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Write man pages and shell completions.
    #[command(hide = true)]
    GenerateDocs {
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Signing options.
#[derive(Debug, Args)]
pub struct SigningArgs {
    /// Trusted root.json of the repository (for a new repository: the root to publish).
    #[arg(long, visible_alias = "trusted-root")]
    pub root_role_path: PathBuf,
    /// Signing key: a file path or file:///path (ed25519/ECDSA PKCS#8 DER, RSA PEM), a PKCS#11
    /// URI (pkcs11:token=T;object=K?pin-source=/path/pin[&module-path=/lib.so]) or an AWS KMS key
    /// (aws-kms://[PROFILE]/KEY-ID, aws-kms:///alias/NAME). Repeat for threshold signing.
    /// (Required unless Infra.toml's signing_keys names one.)
    #[arg(long = "key", visible_alias = "default-key-path")]
    pub keys: Vec<KeySpec>,
    /// Expiration policy file (snapshot_expiration, targets_expiration, timestamp_expiration);
    /// default 2 weeks / 2 weeks / 1 week.
    #[arg(long, visible_alias = "repo-expiration-policy-path")]
    pub expiration_policy: Option<PathBuf>,
}

/// Where the repository is.
#[derive(Debug, Args, Clone)]
pub struct LocationArgs {
    /// Repository directory, updated in place (DIR/metadata/<variant>/<arch>/, DIR/targets/);
    /// or a bucket, s3://BUCKET/PREFIX, with the same layout under PREFIX (endpoint, region
    /// and credentials from the AWS environment or profile; see README "Object storage").
    #[arg(long)]
    pub repo_dir: Option<PathBuf>,
    /// Read the existing repository from this metadata URL (…/<variant>/<arch>/; file://,
    /// http(s):// or s3://) instead of the repository directory.
    #[arg(long, requires = "targets_url")]
    pub metadata_url: Option<Url>,
    /// Targets URL of the existing repository.
    #[arg(long, requires = "metadata_url")]
    pub targets_url: Option<Url>,
    /// Load the repository even if its metadata has expired.
    #[arg(long)]
    pub allow_expired_repo: bool,
    /// Persistent TUF datastore directory (detects rolled-back metadata across runs).
    #[arg(long)]
    pub datastore: Option<PathBuf>,
}

/// `pubsys repo`.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// Signing.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Location.
    #[command(flatten)]
    pub location: LocationArgs,
    /// Write the result into this directory instead of in place (Bottlerocket's layout:
    /// OUTDIR/<variant>/<arch>/ and OUTDIR/targets/; the metadata directory must not exist).
    /// The existing repository, if any, is read from --metadata-url/--targets-url or --repo-dir.
    #[arg(long)]
    pub outdir: Option<PathBuf>,
    /// os-image's build description JSON (variant, arch, version and image paths).
    #[arg(long, conflicts_with_all = ["variant", "arch", "version", "boot", "root", "hash"])]
    pub build_description: Option<PathBuf>,
    /// Variant (without --build-description).
    #[arg(long)]
    pub variant: Option<Variant>,
    /// Architecture (x86_64 or aarch64).
    #[arg(long)]
    pub arch: Option<Arch>,
    /// Version (semver; a leading v is accepted).
    #[arg(long, value_parser = parse_version)]
    pub version: Option<Version>,
    /// BOOT image file.
    #[arg(long, visible_alias = "boot-image")]
    pub boot: Option<PathBuf>,
    /// ROOT image file.
    #[arg(long, visible_alias = "root-image")]
    pub root: Option<PathBuf>,
    /// HASH (dm-verity) image file.
    #[arg(long, visible_alias = "hash-image")]
    pub hash: Option<PathBuf>,
    /// Release.toml whose migrations replace the manifest's.
    #[arg(long, visible_alias = "release-config-path")]
    pub release_file: Option<PathBuf>,
    /// Extra file to publish as a target (migrations, kits), copied into the repository;
    /// repeatable. (`--copy-target` is Bottlerocket's name.)
    #[arg(long = "extra-target", visible_alias = "copy-target")]
    pub extra_targets: Vec<PathBuf>,
    /// Extra file to publish as a target, linked into the repository instead of copied (a
    /// hard link; a copy when the repository is on another filesystem): Bottlerocket's
    /// `--link-target`, for big files such as kits and disk images; repeatable.
    #[arg(long = "link-target")]
    pub link_targets_extra: Vec<PathBuf>,
    /// A release yanked with `pubsys yank --max-version` stays pulled back: without this flag,
    /// a new release keeps the lowered max_version (and says so). With it, max_version is
    /// raised to the newest release as usual, offering the withheld releases again.
    #[arg(long)]
    pub reinstate_yanked: bool,
    /// Wave policy file for the new update (none: offered to every host at once).
    #[arg(long, visible_alias = "wave-policy-path")]
    pub wave_policy: Option<PathBuf>,
    /// When the rollout starts: RFC3339 or "in N hours|days|weeks" (default now).
    #[arg(long)]
    pub release_start_time: Option<String>,
    /// Hard-link images into the targets directory when on the same filesystem (default: copy).
    #[arg(long)]
    pub link_targets: bool,
    /// Also publish the root image's chunked form for delta updates (abos-chunked, see
    /// delta/README.md): targets `<root target>.chunks` and `<root target>.index` next to the
    /// full artifact, which stays. Hosts that do not know the format ignore them.
    #[arg(long)]
    pub delta: bool,
}

/// `pubsys validate-repo`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Trusted root.json.
    #[arg(long, visible_alias = "trusted-root")]
    pub root_role_path: PathBuf,
    /// Location.
    #[command(flatten)]
    pub location: LocationArgs,
    /// Variant (with --repo-dir).
    #[arg(long)]
    pub variant: Option<Variant>,
    /// Architecture (with --repo-dir).
    #[arg(long)]
    pub arch: Option<Arch>,
    /// Download and verify every target (Bottlerocket's flag; pubsys always does, so this
    /// changes nothing and is accepted for twoliter's command line).
    #[arg(long)]
    pub validate_targets: bool,
}

/// `pubsys check-repo-expirations`.
#[derive(Debug, Args)]
pub struct CheckExpirationsArgs {
    /// Trusted root.json.
    #[arg(long, visible_alias = "trusted-root")]
    pub root_role_path: PathBuf,
    /// Location.
    #[command(flatten)]
    pub location: LocationArgs,
    /// Variant (with --repo-dir).
    #[arg(long)]
    pub variant: Option<Variant>,
    /// Architecture (with --repo-dir).
    #[arg(long)]
    pub arch: Option<Arch>,
    /// Window: "[in] N hours|days|weeks" from now, or an RFC3339 time (Bottlerocket's default
    /// is 3 days).
    #[arg(long, visible_alias = "expiration-limit", default_value = "3 days")]
    pub within: String,
}

/// `pubsys refresh-repo`.
#[derive(Debug, Args)]
pub struct RefreshArgs {
    /// Signing.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Location.
    #[command(flatten)]
    pub location: LocationArgs,
    /// Write the refreshed metadata into this new directory instead of in place
    /// (OUTDIR/<variant>/<arch>/; must not exist); the repository is read from
    /// --metadata-url/--targets-url or --repo-dir.
    #[arg(long)]
    pub outdir: Option<PathBuf>,
    /// Move the repository to this new root (version N+1, signed by root N's root keys and its
    /// own, e.g. made with repo-tools): re-sign with the keys it names for snapshot, targets
    /// and timestamp. --key must then be those new keys.
    #[arg(long)]
    pub new_root: Option<PathBuf>,
    /// Variant.
    #[arg(long)]
    pub variant: Variant,
    /// Architecture.
    #[arg(long)]
    pub arch: Arch,
    /// Refresh even if the repository's metadata has already expired (Bottlerocket's name for
    /// --allow-expired-repo here).
    #[arg(long)]
    pub unsafe_refresh: bool,
}

/// `pubsys yank`.
#[derive(Debug, Args)]
pub struct YankArgs {
    /// Signing.
    #[command(flatten)]
    pub signing: SigningArgs,
    /// Location.
    #[command(flatten)]
    pub location: LocationArgs,
    /// Variant.
    #[arg(long)]
    pub variant: Variant,
    /// Architecture.
    #[arg(long)]
    pub arch: Arch,
    /// Lower max_version to this version: newer releases are withheld and hosts above it move
    /// down to the newest version at or below it.
    #[arg(long, value_parser = parse_version, required_unless_present = "remove", conflicts_with = "remove")]
    pub max_version: Option<Version>,
    /// Remove this version's entry (max_version drops to the newest remaining version).
    #[arg(long, value_parser = parse_version)]
    pub remove: Option<Version>,
}

/// Variant/arch/version of one update entry.
#[derive(Debug, Args, Clone)]
pub struct EntryArgs {
    /// Variant.
    #[arg(long)]
    pub variant: Variant,
    /// Architecture.
    #[arg(long)]
    pub arch: Arch,
    /// Version.
    #[arg(long, value_parser = parse_version)]
    pub version: Version,
}

/// `pubsys manifest …`.
#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Write an empty manifest.
    Init {
        /// Manifest file.
        file: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Add an update entry; max_version follows Bottlerocket's rule unless given.
    AddUpdate {
        /// Manifest file.
        file: PathBuf,
        /// Entry.
        #[command(flatten)]
        entry: EntryArgs,
        /// max_version (default: the greater of this version and the current max_version).
        #[arg(long, value_parser = parse_version)]
        max_version: Option<Version>,
        /// Boot image target name.
        #[arg(long)]
        boot: TargetName,
        /// Root image target name.
        #[arg(long)]
        root: TargetName,
        /// Hash image target name.
        #[arg(long)]
        hash: TargetName,
        /// Add empty migration lists between this version and its neighbours where the
        /// migration chain would otherwise break (the release has no migrations).
        #[arg(long)]
        assume_no_migrations: bool,
    },
    /// Remove an update entry.
    RemoveUpdate {
        /// Manifest file.
        file: PathBuf,
        /// Entry.
        #[command(flatten)]
        entry: EntryArgs,
    },
    /// Set an entry's waves from a wave policy and a start time.
    SetWaves {
        /// Manifest file.
        file: PathBuf,
        /// Entry.
        #[command(flatten)]
        entry: EntryArgs,
        /// Wave policy file.
        #[arg(long, visible_alias = "wave-file")]
        wave_policy: PathBuf,
        /// Rollout start: RFC3339 or "in N units" (default now).
        #[arg(long, visible_alias = "start-at")]
        start: Option<String>,
    },
    /// Set max_version on every entry, or only one arch and/or variant.
    SetMaxVersion {
        /// Manifest file.
        file: PathBuf,
        /// The new max_version.
        #[arg(long, value_parser = parse_version)]
        max_version: Version,
        /// Only this architecture.
        #[arg(long)]
        arch: Option<Arch>,
        /// Only this variant.
        #[arg(long)]
        variant: Option<Variant>,
    },
    /// Replace the migrations with those of a Release.toml.
    SetMigrations {
        /// Manifest file.
        file: PathBuf,
        /// Release.toml.
        #[arg(long)]
        release_file: PathBuf,
    },
    /// Parse and validate.
    Validate {
        /// Manifest file.
        file: PathBuf,
    },
    /// Print the manifest.
    Show {
        /// Manifest file.
        file: PathBuf,
    },
}

/// Parses a version, accepting a leading `v`.
pub fn parse_version(s: &str) -> Result<Version, String> {
    s.strip_prefix('v')
        .unwrap_or(s)
        .parse()
        .map_err(|e| format!("'{s}' is not a semver version: {e}"))
}

#[cfg(test)]
mod test {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_debug_assert() {
        Cli::command().debug_assert();
    }

    #[test]
    fn versions_accept_a_leading_v() {
        assert_eq!(parse_version("v1.2.3").unwrap(), Version::new(1, 2, 3));
        assert!(parse_version("1.2").is_err());
    }
}
