//! One function per command: arguments in, a serialisable [`Outcome`] out.

use crate::archive::{self, Existing, ExportReport, ImportOptions, ImportReport};
use crate::check::{self, TreeReport};
use crate::cli::{
    Command, DownloadArgs, ExportArgs, ImportArgs, MirrorArgs, RootCommand, VerifyMirrorArgs,
};
use crate::clock::Clock;
use crate::download::{self, DownloadOptions, DownloadReport};
use crate::error::{self, ExitStatus, Result};
use crate::filter::Filter;
use crate::keys::{self, KeyType};
use crate::mirror::{self, MirrorOptions, MirrorReport};
use crate::reporter::Reporter;
use crate::root::{
    self, MergeReport, SignReport, SnapshotNaming, ThresholdPolicy, TopRole, VerifyReport,
};
use crate::source::Expiry;
use serde::Serialize;
use std::path::{Path, PathBuf};
use tough::Transport;

/// The environment commands run in (built by the binary; tests build their own).
#[derive(Debug)]
pub struct Env {
    /// "Now".
    pub clock: Box<dyn Clock>,
    /// Transport for fetching repositories.
    pub transport: Box<dyn Transport>,
}

impl Env {
    /// The real environment: system clock, tough's default transport (file:// and http(s)://).
    pub fn system() -> Self {
        Self {
            clock: Box::new(crate::clock::SystemClock),
            // s3:// through the S3 API; file:// and http(s):// as tough's default transport.
            transport: Box::new(repo_store::S3Transport::new()),
        }
    }
}

/// What a command produced.
#[derive(Debug, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// A root file was created or edited.
    RootEdited {
        /// The file.
        path: PathBuf,
        /// What was done.
        action: String,
        /// Root version now.
        version: u64,
        /// Key IDs involved.
        key_ids: Vec<String>,
        /// Signatures the edit invalidated and removed.
        signatures_cleared: usize,
    },
    /// A root was signed.
    RootSigned {
        /// The file.
        path: PathBuf,
        /// Details.
        report: SignReport,
    },
    /// Signatures were merged.
    RootMerged {
        /// The output file.
        path: PathBuf,
        /// Details.
        report: MergeReport,
    },
    /// A root was verified.
    RootVerified {
        /// The file.
        path: PathBuf,
        /// Details.
        report: VerifyReport,
    },
    /// A key was generated.
    KeyGenerated {
        /// Private key file.
        path: PathBuf,
        /// Public key file.
        public_path: PathBuf,
        /// Type.
        key_type: KeyType,
        /// Key ID.
        key_id: String,
        /// Roles it was added to.
        roles: Vec<TopRole>,
        /// Root it was added to.
        root: Option<PathBuf>,
    },
    /// A mirror run finished.
    Mirrored(MirrorReport),
    /// A mirror verified.
    MirrorVerified(TreeReport),
    /// Targets downloaded.
    Downloaded(DownloadReport),
    /// An archive was written.
    Exported(ExportReport),
    /// An archive was imported.
    Imported(ImportReport),
    /// Docs were written.
    DocsWritten {
        /// Files written.
        files: Vec<PathBuf>,
    },
}

impl Outcome {
    /// The exit status this outcome maps to (a failed `root verify` is a negative answer).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::RootVerified { report, .. } if !report.ok() => ExitStatus::Negative,
            _ => ExitStatus::Success,
        }
    }
}

/// Runs one command.
pub async fn run(command: Command, env: &Env, reporter: &dyn Reporter) -> Result<Outcome> {
    match command {
        Command::Root(cmd) => run_root(cmd, env).await,
        Command::Mirror(args) => run_mirror(args, env, reporter).await,
        Command::VerifyMirror(VerifyMirrorArgs {
            dir,
            root,
            allow_expired,
        }) => Ok(Outcome::MirrorVerified(
            check::verify_tree(&dir, &root, expiration(allow_expired), reporter).await?,
        )),
        Command::Download(DownloadArgs {
            outdir,
            root,
            metadata_url,
            targets_url,
            targets,
            allow_expired,
            jobs,
        }) => Ok(Outcome::Downloaded(
            download::download(
                DownloadOptions {
                    root,
                    metadata_url,
                    targets_url,
                    out: outdir,
                    targets,
                    expiration: expiration(allow_expired),
                    jobs,
                    transport: env.transport.clone(),
                },
                reporter,
            )
            .await?,
        )),
        Command::Export(ExportArgs { mirror, out }) => {
            Ok(Outcome::Exported(archive::export(&mirror, &out, reporter)?))
        }
        Command::Import(ImportArgs {
            archive,
            root,
            out,
            replace,
            allow_expired,
        }) => {
            let opts = ImportOptions {
                archive,
                root,
                out,
                expiration: expiration(allow_expired),
                existing: if replace {
                    Existing::Replace
                } else {
                    Existing::Refuse
                },
            };
            Ok(Outcome::Imported(archive::import(&opts, reporter).await?))
        }
        // The binary answers generate-docs with abos-shell's docs generator before `run`.
        Command::GenerateDocs(_) => Ok(Outcome::DocsWritten { files: Vec::new() }),
    }
}

fn expiration(allow_expired: bool) -> Expiry {
    Expiry::from_allow_flag(allow_expired)
}

async fn run_mirror(args: MirrorArgs, env: &Env, reporter: &dyn Reporter) -> Result<Outcome> {
    let filter = match (&args.variant, &args.arch) {
        (Some(variant), Some(arch)) => Some(Filter {
            variant: variant.parse().map_err(|_| error::Error::BadFilter {
                what: "variant",
                text: variant.clone(),
            })?,
            arch: arch.parse().map_err(|_| error::Error::BadFilter {
                what: "arch",
                text: arch.clone(),
            })?,
            version: args
                .version
                .as_deref()
                .map(|v| {
                    v.trim_start_matches('v')
                        .parse()
                        .map_err(|_| error::Error::BadFilter {
                            what: "version",
                            text: v.to_owned(),
                        })
                })
                .transpose()?,
        }),
        _ => None,
    };
    let dest = {
        let text = args.out.to_string_lossy();
        if repo_store::S3Url::is_s3(&text) {
            Some(
                text.parse::<repo_store::S3Url>()
                    .map_err(|source| error::Error::ObjectStore { source })?,
            )
        } else {
            None
        }
    };
    let opts = MirrorOptions {
        metadata_url: args.metadata_url,
        targets_url: args.targets_url,
        root: args.root,
        out: args.out,
        metadata_subdir: args.metadata_subdir,
        filter,
        expiration: expiration(args.allow_expired),
        jobs: args.jobs,
        retry: abos_repo_core::RetryPolicy::attempts(args.attempts),
        metadata_only: args.metadata_only,
        transport: env.transport.clone(),
        now: env.clock.now(),
    };
    Ok(Outcome::Mirrored(match dest {
        Some(dest) => mirror::mirror_to_bucket(opts, &dest, reporter).await?,
        None => mirror::mirror(opts, reporter).await?,
    }))
}

fn edited(
    path: &Path,
    action: &str,
    root: &tough::schema::Signed<tough::schema::Root>,
    key_ids: Vec<String>,
    cleared: usize,
) -> Outcome {
    Outcome::RootEdited {
        path: path.to_owned(),
        action: action.to_owned(),
        version: root.signed.version.get(),
        key_ids,
        signatures_cleared: cleared,
    }
}

async fn run_root(cmd: RootCommand, env: &Env) -> Result<Outcome> {
    let now = env.clock.now();
    match cmd {
        RootCommand::Init {
            root: path,
            version,
            consistent_snapshot: _,
            no_consistent_snapshot,
            expires,
        } => {
            let naming = if no_consistent_snapshot {
                SnapshotNaming::Plain
            } else {
                SnapshotNaming::Consistent
            };
            let expires = crate::expiry::parse_time(&expires, now)?;
            let root = root::new_root(version, naming, expires);
            crate::fsio::write_new(&path, &root::to_file_bytes(&root)?, 0o644)?;
            Ok(edited(&path, "init", &root, Vec::new(), 0))
        }
        RootCommand::AddKey {
            root: path,
            keys: sources,
            roles,
        } => {
            let mut root = root::load(&path)?;
            let cleared = root.signatures.len();
            let mut ids = Vec::new();
            for source in &sources {
                let key = keys::load_public(source).await?;
                ids.push(root::add_key(&mut root, key, &roles)?);
            }
            root::save(&path, &root)?;
            Ok(edited(&path, "add-key", &root, ids, cleared))
        }
        RootCommand::RemoveKey {
            root: path,
            key_id,
            role,
        } => {
            let mut root = root::load(&path)?;
            let cleared = root.signatures.len();
            root::remove_key(&mut root, &key_id, role)?;
            root::save(&path, &root)?;
            Ok(edited(&path, "remove-key", &root, vec![key_id], cleared))
        }
        RootCommand::SetThreshold {
            root: path,
            role,
            threshold,
        } => {
            let mut root = root::load(&path)?;
            let cleared = root.signatures.len();
            root::set_threshold(&mut root, role, threshold);
            root::save(&path, &root)?;
            Ok(edited(&path, "set-threshold", &root, Vec::new(), cleared))
        }
        RootCommand::Expire { root: path, time } => {
            let expires = crate::expiry::parse_time(&time, now)?;
            let mut root = root::load(&path)?;
            let cleared = root.signatures.len();
            root::set_expires(&mut root, expires);
            root::save(&path, &root)?;
            Ok(edited(&path, "expire", &root, Vec::new(), cleared))
        }
        RootCommand::SetVersion {
            root: path,
            version,
        } => {
            let mut root = root::load(&path)?;
            let cleared = root.signatures.len();
            root::set_version(&mut root, version);
            root::save(&path, &root)?;
            Ok(edited(&path, "set-version", &root, Vec::new(), cleared))
        }
        RootCommand::BumpVersion { root: path } => {
            let mut root = root::load(&path)?;
            let cleared = root.signatures.len();
            root::bump_version(&mut root)?;
            root::save(&path, &root)?;
            Ok(edited(&path, "bump-version", &root, Vec::new(), cleared))
        }
        RootCommand::Sign {
            root: path,
            keys: key_paths,
            cross_sign,
            ignore_threshold,
        } => {
            let mut root = root::load(&path)?;
            let previous = cross_sign.as_deref().map(root::load).transpose()?;
            let mut signers = Vec::new();
            for url in &key_paths {
                signers.push(keys::load_signer_url(url).await?);
            }
            let policy = if ignore_threshold {
                ThresholdPolicy::AllowIncomplete
            } else {
                ThresholdPolicy::Enforce
            };
            let report = root::sign(&mut root, &signers, previous.as_ref(), policy, now).await?;
            root::save(&path, &root)?;
            Ok(Outcome::RootSigned { path, report })
        }
        RootCommand::MergeSignatures {
            inputs,
            out,
            previous,
        } => {
            let copies = inputs
                .iter()
                .map(|p| Ok((p.clone(), root::load(p)?)))
                .collect::<Result<Vec<_>>>()?;
            let previous = previous.as_deref().map(root::load).transpose()?;
            let (merged, report) = root::merge(&copies, previous.as_ref())?;
            root::save(&out, &merged)?;
            Ok(Outcome::RootMerged { path: out, report })
        }
        RootCommand::Verify {
            root: path,
            previous,
        } => {
            let root = root::load(&path)?;
            let previous = previous.as_deref().map(root::load).transpose()?;
            Ok(Outcome::RootVerified {
                report: root::verify(&root, previous.as_ref(), now),
                path,
            })
        }
        RootCommand::GenKey {
            out,
            key_type,
            bits,
            roles,
            root: root_path,
        } => {
            let generated = keys::generate(key_type, bits)?;
            let public_path = PathBuf::from(format!("{}.pub", out.display()));
            // Load the root first so a bad --root leaves no stray key behind.
            let mut root = root_path.as_deref().map(root::load).transpose()?;
            crate::fsio::write_new(&out, &generated.private, 0o600)?;
            let mut public = keys::public_key_text(&generated.public);
            public.push('\n');
            crate::fsio::write_new(&public_path, public.as_bytes(), 0o644)?;
            if let (Some(root), Some(path)) = (root.as_mut(), root_path.as_deref()) {
                root::add_key(root, generated.public.clone(), &roles)?;
                root::save(path, root)?;
            }
            Ok(Outcome::KeyGenerated {
                path: out,
                public_path,
                key_type,
                key_id: generated.key_id,
                roles,
                root: root_path,
            })
        }
    }
}
