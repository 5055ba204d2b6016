//! Turns parsed arguments into library calls, and outcomes into text or JSON.

use crate::Reporter;
use crate::cli::{Cli, Command, LocationArgs, ManifestCommand, SigningArgs};
use crate::error::{self, ExitStatus, Result};
use crate::expirations::{self, ExpirationReport, ExpiryState};
use crate::infra::{InfraConfig, RepoConfig};
use crate::keys::KeySpec;
use crate::manifest_edit::{self, ManifestOp, ManifestOutcome};
use crate::policy::{self, ExpirationPolicy};
use crate::refresh::{self, RefreshOutcome, RefreshRequest};
use crate::release::{self, PublishOutcome, PublishRequest, ReleaseInputs};
use crate::repo::{self, Expiry, LoadOptions, RepoSource};
use crate::store::s3::S3Store;
use crate::store::{LocalStore, RepoStore, TargetMode};
use crate::validate::{self, ValidateReport};
use crate::yank::{self, YankAction, YankOutcome, YankRequest};
use jiff::Timestamp;
use repo_store::S3Url;
use snafu::{OptionExt, ResultExt, ensure};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use update_metadata::{Arch, Variant};

/// The real environment a command runs in.
#[derive(Clone)]
pub struct Env {
    /// The current time.
    pub now: Timestamp,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What a command produced.
#[derive(Debug, serde::Serialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Outcome {
    /// `repo`.
    Repo(PublishOutcome),
    /// `validate-repo`.
    ValidateRepo(ValidateReport),
    /// `check-repo-expirations`.
    CheckRepoExpirations(ExpirationReport),
    /// `refresh-repo`.
    RefreshRepo(RefreshOutcome),
    /// `yank`.
    Yank(YankOutcome),
    /// `manifest …`.
    Manifest(ManifestOutcome),
    /// `generate-docs`.
    GenerateDocs {
        /// Files written.
        files: Vec<PathBuf>,
    },
}

impl Outcome {
    /// Exit status for a successful run (negative answers are not errors).
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::ValidateRepo(r) if !r.ok() => ExitStatus::Negative,
            Outcome::CheckRepoExpirations(r) if r.attention_needed() => ExitStatus::Negative,
            _ => ExitStatus::Success,
        }
    }

    /// JSON rendering.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Human rendering.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        match self {
            Outcome::Repo(o) => {
                let _ = writeln!(
                    s,
                    "{} {} {} {} ({} targets, metadata version {})",
                    if o.new_repository {
                        "Created repository with"
                    } else {
                        "Added release"
                    },
                    o.variant,
                    o.arch,
                    o.version,
                    o.targets.len(),
                    o.committed.version
                );
                for t in &o.targets {
                    let _ = writeln!(s, "  {}  {:>12}  {}", &t.sha256[..16], t.length, t.name);
                }
                if !o.kept_pulled_back.is_empty() {
                    let _ = writeln!(
                        s,
                        "Note: {} pulled back with `pubsys yank --max-version` stay{} withheld \
                         (max_version {}{}); pass --reinstate-yanked to offer {} again, or \
                         `pubsys yank --remove` {}.",
                        o.kept_pulled_back.join(", "),
                        if o.kept_pulled_back.len() == 1 {
                            "s"
                        } else {
                            ""
                        },
                        o.max_version,
                        if o.version_withheld() {
                            format!(", so {} is withheld too", o.version)
                        } else {
                            String::new()
                        },
                        if o.kept_pulled_back.len() == 1 {
                            "it"
                        } else {
                            "them"
                        },
                        if o.kept_pulled_back.len() == 1 {
                            "it"
                        } else {
                            "them"
                        },
                    );
                }
                let _ = writeln!(s, "Wrote {}", o.store);
            }
            Outcome::ValidateRepo(r) => {
                let _ = writeln!(
                    s,
                    "{}: {} targets, {} bytes verified, {} failed",
                    r.metadata_url, r.targets, r.bytes, r.failed
                );
                for f in &r.failures {
                    let _ = writeln!(s, "  FAILED {}: {}", f.name, f.error);
                }
            }
            Outcome::CheckRepoExpirations(r) => {
                let _ = writeln!(
                    s,
                    "{:<10} {:>12} {:<22} state",
                    "role", "version", "expires"
                );
                for row in &r.roles {
                    let state = match row.state {
                        ExpiryState::Ok => "ok".to_string(),
                        ExpiryState::ExpiresWithin => {
                            format!("EXPIRES in {}", friendly(row.expires.duration_since(r.now)))
                        }
                        ExpiryState::Expired => "EXPIRED".to_string(),
                    };
                    let _ = writeln!(
                        s,
                        "{:<10} {:>12} {:<22} {state}",
                        row.role, row.version, row.expires
                    );
                }
                if r.attention_needed() {
                    let _ = writeln!(
                        s,
                        "Some metadata expires before {}: run `pubsys refresh-repo`.",
                        r.window_end
                    );
                }
            }
            Outcome::RefreshRepo(o) => {
                let _ = writeln!(
                    s,
                    "Refreshed: version {} -> {}; timestamp expires {}, snapshot {}, targets {}",
                    o.previous_version,
                    o.version,
                    o.timestamp_expires,
                    o.snapshot_expires,
                    o.targets_expires
                );
            }
            Outcome::Yank(o) => {
                let _ = writeln!(
                    s,
                    "Yanked {} {}: max_version now {}; removed [{}]; withheld [{}] (metadata version {})",
                    o.variant,
                    o.arch,
                    o.max_version.as_deref().unwrap_or("-"),
                    o.removed.join(", "),
                    o.withheld.join(", "),
                    o.committed.version
                );
            }
            Outcome::Manifest(o) => {
                if o.operation == "show" {
                    let _ = writeln!(
                        s,
                        "{}",
                        serde_json::to_string_pretty(&o.manifest).unwrap_or_default()
                    );
                } else {
                    let _ = writeln!(
                        s,
                        "{} {}: {} entr{} {}",
                        o.operation,
                        o.path.display(),
                        o.changed,
                        if o.changed == 1 { "y" } else { "ies" },
                        if o.written { "(written)" } else { "(valid)" }
                    );
                }
            }
            Outcome::GenerateDocs { files } => {
                let _ = writeln!(s, "Wrote {} files", files.len());
            }
        }
        s
    }
}

fn friendly(d: jiff::SignedDuration) -> String {
    let secs = d.as_secs();
    if secs >= 86_400 {
        format!("{}d {}h", secs / 86_400, (secs % 86_400) / 3600)
    } else {
        format!("{}h {}m", secs / 3600, (secs % 3600) / 60)
    }
}

fn expired(loc: &LocationArgs) -> Expiry {
    Expiry::from_allow_flag(loc.allow_expired_repo)
}

/// The existing repository's URLs: from the command line, else from Infra.toml's
/// `metadata_base_url` (+ `<variant>/<arch>/`) and `targets_url`.
fn explicit_source(
    loc: &LocationArgs,
    infra: &RepoConfig,
    variant: Option<&Variant>,
    arch: Option<Arch>,
) -> Result<Option<RepoSource>> {
    if let (Some(m), Some(t)) = (&loc.metadata_url, &loc.targets_url) {
        return Ok(Some(RepoSource::new(m.clone(), t.clone())));
    }
    if let (Some(v), Some(a)) = (variant, arch)
        && let Some((m, t)) = infra.urls(v, a)?
    {
        return Ok(Some(RepoSource::new(m, t)));
    }
    Ok(None)
}

/// Signing keys: `--key`, else Infra.toml's `signing_keys`.
fn signing_keys(signing: &SigningArgs, infra: &RepoConfig) -> Result<Vec<KeySpec>> {
    if !signing.keys.is_empty() {
        return Ok(signing.keys.clone());
    }
    match &infra.signing_keys {
        Some(k) => Ok(vec![k.key_spec()?]),
        None => error::NoKeysSnafu.fail(),
    }
}

fn expiration_policy(path: Option<&Path>) -> Result<ExpirationPolicy> {
    path.map_or_else(
        || Ok(ExpirationPolicy::default()),
        ExpirationPolicy::from_path,
    )
}

/// Where to read from, for read-only commands.
fn read_source(
    loc: &LocationArgs,
    infra: &RepoConfig,
    variant: Option<&Variant>,
    arch: Option<Arch>,
) -> Result<RepoSource> {
    if let Some(s) = explicit_source(loc, infra, variant, arch)? {
        return Ok(s);
    }
    match (&loc.repo_dir, variant, arch) {
        (Some(dir), Some(v), Some(a)) => match bucket_location(dir)? {
            Some(base) => {
                let (metadata, targets) = crate::store::s3::repo_locations(&base, v, a);
                Ok(RepoSource::new(metadata.dir_url(), targets.dir_url()))
            }
            None => repo::source_of_store(&LocalStore::repo_dir(dir, v, a)),
        },
        _ => error::LocationSnafu {
            reason: "give --metadata-url and --targets-url, or --repo-dir with --variant and --arch",
        }
        .fail(),
    }
}

/// `--repo-dir s3://BUCKET/PREFIX`: a repository in object storage.
fn bucket_location(dir: &Path) -> Result<Option<S3Url>> {
    let text = dir.to_string_lossy();
    if !S3Url::is_s3(&text) {
        return Ok(None);
    }
    text.parse().map(Some).context(error::ObjectStoreSnafu)
}

/// The store to write into: --repo-dir (in place, a directory or s3://BUCKET/PREFIX) or a
/// fresh --outdir.
fn write_store(
    loc: &LocationArgs,
    infra: &RepoConfig,
    outdir: Option<&Path>,
    variant: &Variant,
    arch: Arch,
) -> Result<(Box<dyn RepoStore>, Option<RepoSource>)> {
    if let Some(out) = outdir {
        ensure!(
            bucket_location(out)?.is_none(),
            error::LocationSnafu {
                reason: "--outdir is a new local directory; to write into a bucket give \
                         --repo-dir s3://BUCKET/PREFIX"
            }
        );
        let store = LocalStore::outdir(out, variant, arch);
        // Must not exist; a directory holding only a stale lock file (from a run that failed
        // before writing) counts as empty.
        let occupied = std::fs::read_dir(store.metadata_dir()).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.file_name() != crate::store::LOCK_FILE)
        });
        ensure!(
            !occupied,
            error::OutdirExistsSnafu {
                path: store.metadata_dir()
            }
        );
        // The existing repository (if any) comes from the URLs or the repository directory;
        // with neither, a new repository is created.
        let source = match (
            explicit_source(loc, infra, Some(variant), Some(arch))?,
            &loc.repo_dir,
        ) {
            (Some(s), _) => Some(s),
            (None, Some(dir)) => Some(match bucket_location(dir)? {
                Some(base) => {
                    let (metadata, targets) =
                        crate::store::s3::repo_locations(&base, variant, arch);
                    RepoSource::new(metadata.dir_url(), targets.dir_url())
                }
                None => repo::source_of_store(&LocalStore::repo_dir(dir, variant, arch))?,
            }),
            (None, None) => None,
        };
        return Ok((Box::new(store), source));
    }
    let dir = loc.repo_dir.as_ref().context(error::LocationSnafu {
        reason: "give --repo-dir DIR (or --outdir DIR)",
    })?;
    let store: Box<dyn RepoStore> = match bucket_location(dir)? {
        Some(base) => Box::new(S3Store::repo_dir(&base, variant, arch)?),
        None => Box::new(LocalStore::repo_dir(dir, variant, arch)),
    };
    Ok((
        store,
        explicit_source(loc, infra, Some(variant), Some(arch))?,
    ))
}

/// Runs one parsed command line.
pub async fn run(cli: Cli, env: &Env) -> Result<Outcome> {
    let infra = match &cli.infra_config_path {
        Some(path) => InfraConfig::from_path(path)?.repo(&cli.repo),
        None => RepoConfig::default(),
    };
    match cli.command {
        Command::Repo(a) => {
            let inputs = match &a.build_description {
                Some(path) => ReleaseInputs::from_build_description(path)?,
                None => match (&a.variant, a.arch, &a.version, &a.boot, &a.root, &a.hash) {
                    (
                        Some(variant),
                        Some(arch),
                        Some(version),
                        Some(boot),
                        Some(root),
                        Some(hash),
                    ) => ReleaseInputs {
                        variant: variant.clone(),
                        arch,
                        version: version.clone(),
                        images: release::ImagePaths {
                            boot: boot.clone(),
                            root: root.clone(),
                            hash: hash.clone(),
                        },
                        expected: None,
                    },
                    _ => return error::ReleaseInputsSnafu.fail(),
                },
            };
            let release_start = match &a.release_start_time {
                Some(t) => policy::parse_when("--release-start-time", t, env.now)?,
                None => policy::whole_seconds(env.now),
            };
            infra.check_root(&a.signing.root_role_path)?;
            let (store, source) = write_store(
                &a.location,
                &infra,
                a.outdir.as_deref(),
                &inputs.variant,
                inputs.arch,
            )?;
            let mut extra_targets = a.extra_targets;
            let delta = match a.delta {
                true => Some(crate::delta::chunk_root(&inputs.images.root)?),
                false => None,
            };
            if let Some(d) = &delta {
                extra_targets.extend([d.chunks.clone(), d.index.clone()]);
            }
            let req = PublishRequest {
                trusted_root: a.signing.root_role_path.clone(),
                keys: signing_keys(&a.signing, &infra)?,
                source,
                inputs,
                release_file: a.release_file,
                extra_targets,
                link_targets: a.link_targets_extra,
                reinstate_yanked: a.reinstate_yanked,
                wave_policy: a.wave_policy,
                release_start,
                expiration: expiration_policy(a.signing.expiration_policy.as_deref())?,
                expired: expired(&a.location),
                target_mode: if a.link_targets {
                    TargetMode::Hardlink
                } else {
                    TargetMode::Copy
                },
                datastore: a.location.datastore.clone(),
                now: env.now,
            };
            Ok(Outcome::Repo(
                release::publish(&req, store.as_ref(), env.reporter.clone()).await?,
            ))
        }
        Command::ValidateRepo(a) => {
            infra.check_root(&a.root_role_path)?;
            let (root, _) = crate::repo::read_root(&a.root_role_path)?;
            let source = read_source(&a.location, &infra, a.variant.as_ref(), a.arch)?;
            let opts = LoadOptions {
                expiry: expired(&a.location),
                datastore: a.location.datastore.clone(),
                ..Default::default()
            };
            Ok(Outcome::ValidateRepo(
                validate::validate(&root, &source, &opts, env.reporter.as_ref()).await?,
            ))
        }
        Command::CheckRepoExpirations(a) => {
            infra.check_root(&a.root_role_path)?;
            let (root, _) = crate::repo::read_root(&a.root_role_path)?;
            let source = read_source(&a.location, &infra, a.variant.as_ref(), a.arch)?;
            // A duration ("3 days") or, as Bottlerocket's --expiration-limit, a point in time.
            let within = policy::parse_when("--within", &a.within, env.now)?
                .duration_since(policy::whole_seconds(env.now));
            Ok(Outcome::CheckRepoExpirations(
                expirations::check(
                    &root,
                    &source,
                    within,
                    env.now,
                    a.location.datastore.clone(),
                )
                .await?,
            ))
        }
        Command::RefreshRepo(a) => {
            let (store, source) =
                write_store(&a.location, &infra, a.outdir.as_deref(), &a.variant, a.arch)?;
            infra.check_root(&a.signing.root_role_path)?;
            let req = RefreshRequest {
                trusted_root: a.signing.root_role_path.clone(),
                keys: signing_keys(&a.signing, &infra)?,
                source,
                expiration: expiration_policy(a.signing.expiration_policy.as_deref())?,
                expired: Expiry::from_allow_flag(a.unsafe_refresh || a.location.allow_expired_repo),
                datastore: a.location.datastore.clone(),
                new_root: a.new_root,
                now: env.now,
            };
            Ok(Outcome::RefreshRepo(
                refresh::refresh(&req, store.as_ref(), env.reporter.as_ref()).await?,
            ))
        }
        Command::Yank(a) => {
            let (store, source) = write_store(&a.location, &infra, None, &a.variant, a.arch)?;
            infra.check_root(&a.signing.root_role_path)?;
            let action = match (a.max_version, a.remove) {
                (Some(v), None) => YankAction::LowerMaxVersion(v),
                (None, Some(v)) => YankAction::Remove(v),
                _ => {
                    return error::NothingToYankSnafu {
                        reason: "give --max-version or --remove",
                    }
                    .fail();
                }
            };
            let req = YankRequest {
                trusted_root: a.signing.root_role_path.clone(),
                keys: signing_keys(&a.signing, &infra)?,
                source,
                variant: a.variant,
                arch: a.arch,
                action,
                expiration: expiration_policy(a.signing.expiration_policy.as_deref())?,
                expired: expired(&a.location),
                datastore: a.location.datastore.clone(),
                now: env.now,
            };
            Ok(Outcome::Yank(
                yank::yank(&req, store.as_ref(), env.reporter.as_ref()).await?,
            ))
        }
        Command::Manifest(m) => {
            let (file, op) = manifest_op(m, env.now)?;
            Ok(Outcome::Manifest(manifest_edit::apply(&file, &op)?))
        }
        // The binary answers generate-docs with abos-shell's docs generator before `run`.
        Command::GenerateDocs { .. } => Ok(Outcome::GenerateDocs { files: Vec::new() }),
    }
}

fn manifest_op(m: ManifestCommand, now: Timestamp) -> Result<(PathBuf, ManifestOp)> {
    Ok(match m {
        ManifestCommand::Init { file, force } => (file, ManifestOp::Init { force }),
        ManifestCommand::AddUpdate {
            file,
            entry,
            max_version,
            boot,
            root,
            hash,
            assume_no_migrations,
        } => (
            file,
            ManifestOp::AddUpdate {
                variant: entry.variant,
                arch: entry.arch,
                version: entry.version,
                max_version,
                boot,
                root,
                hash,
                assume_no_migrations,
            },
        ),
        ManifestCommand::RemoveUpdate { file, entry } => (
            file,
            ManifestOp::RemoveUpdate {
                variant: entry.variant,
                arch: entry.arch,
                version: entry.version,
            },
        ),
        ManifestCommand::SetWaves {
            file,
            entry,
            wave_policy,
            start,
        } => {
            let start = match start {
                Some(s) => policy::parse_when("--start", &s, now)?,
                None => policy::whole_seconds(now),
            };
            (
                file,
                ManifestOp::SetWaves {
                    variant: entry.variant,
                    arch: entry.arch,
                    version: entry.version,
                    wave_file: wave_policy,
                    start,
                },
            )
        }
        ManifestCommand::SetMaxVersion {
            file,
            max_version,
            arch,
            variant,
        } => (
            file,
            ManifestOp::SetMaxVersion {
                max_version,
                arch,
                variant,
            },
        ),
        ManifestCommand::SetMigrations { file, release_file } => {
            (file, ManifestOp::SetMigrations { release_file })
        }
        ManifestCommand::Validate { file } => (file, ManifestOp::Validate),
        ManifestCommand::Show { file } => (file, ManifestOp::Show),
    })
}
