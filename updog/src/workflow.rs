//! The commands: plan, then act in the safe order.
//!
//! `update` / `update-image`: lock → config, os-release → load TUF (persistent datastore) →
//! select (update-metadata's pure function) → clear the inactive set (durable) → fetch and cache
//! migrations with manifest.json → stream root, boot, hash into the inactive partitions (resumable)
//! → verify root against hash with the boot partition's root hash → mark the set valid → (update
//! only) make it the next to boot → optional reboot.

use crate::config::{Config, HostPaths};
use crate::error::{self, Error, Result};
use crate::exit::ExitStatus;
use crate::fsutil;
use crate::host::OsRelease;
use crate::image::{self, ImagePlan, ImageResult, WriteSettings};
use crate::lock::UpdateLock;
use crate::repo::{self, LoadedRepo};
use crate::reporter::{ImageKind, ProgressEvent, Reporter, Step};
use crate::transport::{DEFAULT_RETRY_DEADLINE, HttpClient, QueryParams};
use crate::verity;
use jiff::Timestamp;
use serde::Serialize;
use signpost::{Disk, SetName, Signpost};
use snafu::{IntoError, ResultExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tracing::info;
use update_metadata::{Arch, Policy, Selection, Update, Version};

/// Act on a disk image instead of the running system.
#[derive(Debug, Clone)]
pub struct DiskOverride {
    /// The whole-disk image (or device).
    pub path: PathBuf,
    /// Which set is running.
    pub active: SetName,
}

/// Everything a command needs from its surroundings.
#[derive(Clone)]
pub struct Env {
    /// Host root (`/` on a real host).
    pub paths: HostPaths,
    /// A disk image to act on, else the running system's disk is discovered.
    pub disk: Option<DiskOverride>,
    /// Architecture override.
    pub arch: Option<Arch>,
    /// Variant override (else os-release's `VARIANT_ID`).
    pub variant: Option<update_metadata::Variant>,
    /// "Now" for wave decisions.
    pub now: Timestamp,
    /// Progress sink.
    pub reporter: Arc<dyn Reporter>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("paths", &self.paths)
            .field("disk", &self.disk)
            .field("arch", &self.arch)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Whether an update is activated after it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Activation {
    /// `update`: make the new set the next to boot.
    Activate,
    /// `update-image`: leave it staged (valid, not next).
    StageOnly,
}

/// Whether to reboot afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reboot {
    /// Run the configured reboot command.
    Reboot,
    /// Do not.
    NoReboot,
}

/// Wave handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waves {
    /// Respect the wave schedule (unless the config says `ignore_waves`).
    Respect,
    /// `--now` / `--ignore-waves`.
    Ignore,
}

/// A command.
#[derive(Debug, Clone)]
pub enum Command {
    /// Is there an update for this host?
    CheckUpdate {
        /// List every applicable update instead.
        all: bool,
        /// `--image`.
        image: Option<Version>,
        /// Waves.
        waves: Waves,
    },
    /// Download, write, verify and (optionally) activate.
    Update {
        /// `--image`.
        image: Option<Version>,
        /// Waves.
        waves: Waves,
        /// Activate or stage.
        activation: Activation,
        /// Reboot afterwards.
        reboot: Reboot,
    },
    /// Make a staged set the next to boot.
    UpdateApply {
        /// Reboot afterwards.
        reboot: Reboot,
    },
    /// Undo `update-apply`.
    UpdateRevert,
}

/// Why there is no update to act on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum NoUpdate {
    /// Nothing newer than the running version.
    NothingNewer {
        /// Running version.
        running: Version,
    },
    /// Not in this host's wave yet.
    NotInWaveYet {
        /// The version waiting.
        version: Version,
        /// When this host's wave opens.
        opens_at: Timestamp,
    },
    /// `version_lock` holds.
    Locked {
        /// The lock.
        lock: Version,
    },
    /// No entry for this variant/arch.
    NoUpdateForHost {
        /// Variant.
        variant: String,
        /// Arch.
        arch: String,
    },
    /// `--image` version not offered.
    ImageNotFound {
        /// Requested.
        version: Version,
    },
}

impl NoUpdate {
    fn exit_status(&self) -> ExitStatus {
        match self {
            NoUpdate::NothingNewer { .. } => ExitStatus::NothingNewer,
            NoUpdate::NotInWaveYet { .. } => ExitStatus::NotInWaveYet,
            NoUpdate::Locked { .. } => ExitStatus::VersionLocked,
            NoUpdate::NoUpdateForHost { .. } => ExitStatus::NoUpdateForHost,
            NoUpdate::ImageNotFound { .. } => ExitStatus::ImageNotFound,
        }
    }
}

impl std::fmt::Display for NoUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoUpdate::NothingNewer { running } => write!(
                f,
                "No update available: {running} is the newest version offered"
            ),
            NoUpdate::NotInWaveYet { version, opens_at } => {
                write!(
                    f,
                    "Update {version} is not yet available to this host: its wave opens at {opens_at}"
                )
            }
            NoUpdate::Locked { lock } => write!(
                f,
                "No update: version_lock pins {lock} and nothing else is applied"
            ),
            NoUpdate::NoUpdateForHost { variant, arch } => {
                write!(f, "No updates exist for variant {variant} on {arch}")
            }
            NoUpdate::ImageNotFound { version } => {
                write!(f, "Version {version} is not offered to this host")
            }
        }
    }
}

/// What a command did.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Outcome {
    /// `check-update`: this update would be chosen.
    Available {
        /// The manifest entry.
        update: Update,
    },
    /// `check-update --all`.
    All {
        /// Applicable updates, newest first.
        updates: Vec<Update>,
    },
    /// Nothing to do.
    NoUpdate(NoUpdate),
    /// An update was written (and activated unless staged).
    Updated {
        /// The manifest entry.
        update: Update,
        /// Activate or stage.
        activation: Activation,
        /// Which set now holds it.
        set: String,
        /// Per-image figures.
        images: Vec<ImageResult>,
        /// Whether the reboot command ran.
        rebooting: bool,
    },
    /// `update-apply` done.
    Applied {
        /// The set that boots next.
        next: String,
        /// Whether the reboot command ran.
        rebooting: bool,
    },
    /// `update-revert` done.
    Reverted {
        /// The set that boots next.
        next: String,
    },
}

impl Outcome {
    /// The documented exit status.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::NoUpdate(n) => n.exit_status(),
            _ => ExitStatus::Success,
        }
    }
}

/// Runs a command on a fresh current-thread runtime (what the binary calls).
pub fn run(command: Command, env: &Env) -> Result<Outcome> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context(error::RuntimeSnafu)?;
    rt.block_on(run_async(command, env))
}

struct Prepared {
    config: Config,
    os: OsRelease,
    host: update_metadata::Host,
    http: HttpClient,
}

fn prepare(env: &Env) -> Result<Prepared> {
    let config = Config::load(&env.paths.config())?;
    let os = OsRelease::load(&env.paths.os_release())?;
    let mut host = os.host(env.arch.or(config.arch))?;
    if let Some(v) = &env.variant {
        host.variant = v.clone();
    }
    let params = QueryParams::default();
    params.set("version", os.version.to_string());
    params.set("seed", config.seed.get().to_string());
    let http = HttpClient::new(config.network.clone(), params, env.reporter.clone())?
        .with_deadline(retry_deadline(&env.paths.config())?);
    Ok(Prepared {
        config,
        os,
        host,
        http,
    })
}

/// `retry_deadline_secs` from updog.toml (default [`DEFAULT_RETRY_DEADLINE`]).
///
/// Read here rather than in `config.rs` while that module moves to a shared crate; it belongs in
/// `NetworkSettings` afterwards.
fn retry_deadline(path: &Path) -> Result<Duration> {
    const KEY: &str = "retry_deadline_secs";
    let text = std::fs::read_to_string(path).context(error::ConfigReadSnafu { path })?;
    let table: toml::Table = toml::from_str(&text).context(error::ConfigParseSnafu { path })?;
    match table.get(KEY) {
        None => Ok(DEFAULT_RETRY_DEADLINE),
        Some(toml::Value::Integer(n)) if *n > 0 => Ok(Duration::from_secs(n.unsigned_abs())),
        Some(v) => error::ConfigValueSnafu {
            path,
            field: KEY,
            value: v.to_string(),
            expected: "a whole number of seconds greater than 0",
        }
        .fail(),
    }
}

fn open_signpost(env: &Env) -> Result<Signpost> {
    match &env.disk {
        Some(d) => {
            let disk = Disk::open(&d.path).context(error::DiskOverrideSnafu {
                op: "open the partition table",
                path: &d.path,
            })?;
            Signpost::new(disk, d.active).context(error::DiskOverrideSnafu {
                op: "read the A/B partition sets",
                path: &d.path,
            })
        }
        None => {
            Signpost::discover(&env.paths.sysfs(), &env.paths.dev()).context(error::SignpostSnafu {
                op: "discover the OS disk",
            })
        }
    }
}

/// Async body of [`run`].
pub async fn run_async(command: Command, env: &Env) -> Result<Outcome> {
    // A wrong --disk is an argument error, found before anything else is done.
    if let Some(d) = &env.disk
        && std::fs::symlink_metadata(&d.path).is_err()
    {
        return error::DiskMissingSnafu { path: &d.path }.fail();
    }
    let _lock = UpdateLock::acquire(&env.paths.lock_file())?;
    match command {
        Command::CheckUpdate { all, image, waves } => {
            let p = prepare(env)?;
            env.reporter.report(ProgressEvent::Step {
                step: Step::LoadMetadata,
            });
            let loaded = repo::load(&env.paths, &p.config, &p.http).await?;
            loaded.check_host(&p.host)?;
            if all {
                // Bottlerocket's applicable list includes the wave check (fact sheet §1.6): with
                // the host's wave still closed, a release is not listed (unless --now or
                // ignore_waves), so `thar-be-updates refresh` sees what the host may take.
                let ignore_waves = waves == Waves::Ignore || p.config.ignore_waves;
                let updates = update_metadata::applicable(&loaded.manifest, &p.host)
                    .into_iter()
                    .filter(|u| {
                        ignore_waves
                            || u.waves.eligibility(p.config.seed, env.now)
                                == waves::Eligibility::Eligible
                    })
                    .cloned()
                    .collect();
                return Ok(Outcome::All { updates });
            }
            Ok(match choose(&loaded, &p, env, image, waves) {
                Ok(update) => Outcome::Available {
                    update: update.clone(),
                },
                Err(no) => Outcome::NoUpdate(no),
            })
        }
        Command::Update {
            image,
            waves,
            activation,
            reboot,
        } => {
            let p = prepare(env)?;
            env.reporter.report(ProgressEvent::Step {
                step: Step::LoadMetadata,
            });
            let loaded = repo::load(&env.paths, &p.config, &p.http).await?;
            loaded.check_host(&p.host)?;
            let update = match choose(&loaded, &p, env, image, waves) {
                Ok(u) => u.clone(),
                Err(no) => return Ok(Outcome::NoUpdate(no)),
            };
            update_to(env, &p, &loaded, update, activation, reboot).await
        }
        Command::UpdateApply { reboot } => {
            let config = Config::load(&env.paths.config())?;
            let mut sp = open_signpost(env)?;
            sp.upgrade_to_inactive().context(error::SignpostSnafu {
                op: "activate the staged set",
            })?;
            let next = sp.next_boot().map(|s| s.to_string()).unwrap_or_default();
            let rebooting = maybe_reboot(&config, reboot, env)?;
            Ok(Outcome::Applied { next, rebooting })
        }
        Command::UpdateRevert => {
            let mut sp = open_signpost(env)?;
            let inactive = sp.inactive().context(error::SignpostSnafu {
                op: "find the inactive set",
            })?;
            // Only an applied update (the other set boots next) can be reverted; otherwise the
            // table is left exactly as it is.
            if sp.next_boot() != Some(inactive) {
                return error::NothingToRevertSnafu {
                    next: sp
                        .next_boot()
                        .map_or_else(|| "none".to_owned(), |s| s.to_string()),
                }
                .fail();
            }
            sp.cancel_upgrade().context(error::SignpostSnafu {
                op: "cancel the upgrade",
            })?;
            let next = sp.next_boot().map(|s| s.to_string()).unwrap_or_default();
            Ok(Outcome::Reverted { next })
        }
    }
}

fn choose<'a>(
    loaded: &'a LoadedRepo,
    p: &Prepared,
    env: &Env,
    image: Option<Version>,
    waves: Waves,
) -> Result<&'a Update, NoUpdate> {
    let policy = Policy {
        version_lock: p.config.version_lock.clone(),
        ignore_waves: waves == Waves::Ignore || p.config.ignore_waves,
        seed: p.config.seed,
        now: env.now,
        forced: image,
    };
    match update_metadata::select(&loaded.manifest, &p.host, &policy) {
        Selection::Update(u) => Ok(u),
        Selection::NothingNewer => Err(NoUpdate::NothingNewer {
            running: p.os.version.clone(),
        }),
        Selection::Locked { lock } => Err(NoUpdate::Locked { lock }),
        Selection::NotInWaveYet { version, opens_at } => {
            Err(NoUpdate::NotInWaveYet { version, opens_at })
        }
        Selection::NoUpdateForHost => Err(NoUpdate::NoUpdateForHost {
            variant: p.host.variant.to_string(),
            arch: p.host.arch.to_string(),
        }),
        Selection::ForcedNotFound { version } => Err(NoUpdate::ImageNotFound { version }),
        #[allow(unreachable_patterns)]
        _ => Err(NoUpdate::NothingNewer {
            running: p.os.version.clone(),
        }),
    }
}

async fn update_to(
    env: &Env,
    p: &Prepared,
    loaded: &LoadedRepo,
    update: Update,
    activation: Activation,
    reboot: Reboot,
) -> Result<Outcome> {
    info!("Starting update to {}", update.version);
    let params = p.http.params();
    params.set("target", update.version.to_string());

    // Resolve every signed target before touching the disk.
    let images = [
        (ImageKind::Root, update.images.root.to_string()),
        (ImageKind::Boot, update.images.boot.to_string()),
        (ImageKind::Hash, update.images.hash.to_string()),
    ];
    let infos = images
        .iter()
        .map(|(k, n)| loaded.target(n).map(|i| (*k, i)))
        .collect::<Result<Vec<_>>>()?;
    let (from, to) = if p.os.version <= update.version {
        (&p.os.version, &update.version)
    } else {
        (&update.version, &p.os.version)
    };
    let mut migrations: Vec<String> = loaded
        .manifest
        .find_migrations(from, to)
        .map_err(|source| {
            error::MigrationPathSnafu {
                from: from.to_string(),
                to: to.to_string(),
            }
            .into_error(source)
        })?
        .into_iter()
        .map(|t| t.to_string())
        .collect();
    migrations.push("manifest.json".to_owned());

    // The state directories this update writes into are checked before the disk is touched.
    let resume_dir = env.paths.resume_dir();
    fsutil::ensure_state_dir(&env.paths.state_dir(), &resume_dir)?;
    fsutil::check_entries(&resume_dir)?;
    for dir in [
        env.paths.migrations_dir(),
        env.paths.migrations_metadata_dir(),
    ] {
        fsutil::ensure_state_dir(&dir, &dir)?;
        fsutil::check_entries(&dir)?;
    }

    // 1. The inactive set becomes unbootable, durably, before anything is written to it.
    let mut sp = open_signpost(env)?;
    env.reporter.report(ProgressEvent::Step {
        step: Step::ClearInactive,
    });
    let inactive = sp.inactive().context(error::SignpostSnafu {
        op: "find the inactive set",
    })?;
    sp.clear_inactive().context(error::SignpostSnafu {
        op: "clear the inactive set",
    })?;
    let set = sp.disk().set(inactive).context(error::SignpostSnafu {
        op: "read the inactive set",
    })?;
    let disk_path = sp.disk().path().to_path_buf();

    // 2. Migrations and manifest.json, through TUF, for the migrator after reboot.
    env.reporter.report(ProgressEvent::Step {
        step: Step::FetchMigrations,
    });
    params.set("migrations", migrations.join(","));
    loaded.cache_migrations(&env.paths, &migrations).await?;

    // 3. Images: root, boot, hash.
    env.reporter.report(ProgressEvent::Step {
        step: Step::WriteImages,
    });
    let settings = WriteSettings {
        resume_dir,
        checkpoint_bytes: p.config.checkpoint_bytes,
        reporter: env.reporter.clone(),
    };
    let mut results = Vec::new();
    for (kind, info) in infos {
        let partition = match kind {
            ImageKind::Root => set.root.clone(),
            ImageKind::Boot => set.boot.clone(),
            ImageKind::Hash => set.hash.clone(),
        };
        let plan = ImagePlan {
            kind,
            target: info.name,
            url: info.url,
            length: info.length,
            sha256: info.sha256,
            disk: disk_path.clone(),
            partition,
        };
        results.push(image::write_image(&p.http, &plan, &settings).await?);
    }

    // 4. Verify what is on the disk now, before anything may boot it.
    env.reporter
        .report(ProgressEvent::Step { step: Step::Verify });
    let boot_written = results
        .iter()
        .find(|r| r.kind == ImageKind::Boot)
        .map_or(0, |r| r.written);
    let started = std::time::Instant::now();
    let verified = verify_set(&disk_path, &set, boot_written);
    info!(
        "verified set {inactive} in {:.2?}: {}",
        started.elapsed(),
        if verified.is_ok() { "ok" } else { "FAILED" }
    );
    if let Err(e) = verified {
        // What is there cannot be trusted: the next run starts over.
        let _ = image::clear_records(&env.paths.resume_dir());
        return Err(e);
    }

    // 5. Valid (tries_left = 1), then next-to-boot for `update`.
    env.reporter.report(ProgressEvent::Step {
        step: Step::MarkValid,
    });
    sp.mark_inactive_valid().context(error::SignpostSnafu {
        op: "mark the inactive set valid",
    })?;
    if activation == Activation::Activate {
        env.reporter.report(ProgressEvent::Step {
            step: Step::Activate,
        });
        sp.upgrade_to_inactive().context(error::SignpostSnafu {
            op: "make the new set the next to boot",
        })?;
    }
    image::clear_records(&env.paths.resume_dir())?;
    drop(sp);
    let rebooting = if activation == Activation::Activate {
        maybe_reboot(&p.config, reboot, env)?
    } else {
        false
    };
    Ok(Outcome::Updated {
        update,
        activation,
        set: inactive.to_string(),
        images: results,
        rebooting,
    })
}

fn verify_set(
    disk: &std::path::Path,
    set: &signpost::PartitionSet,
    boot_written: u64,
) -> Result<()> {
    let file = std::fs::File::open(disk).context(error::DiskOpenSnafu { path: disk })?;
    let params = verity::boot_params_from_partition(
        &file,
        set.boot.first_byte,
        boot_written.min(set.boot.len_bytes),
    )?;
    verity::verify(
        disk,
        set.root.first_byte,
        set.root.len_bytes,
        set.hash.first_byte,
        set.hash.len_bytes,
        &params,
    )
}

fn maybe_reboot(config: &Config, reboot: Reboot, env: &Env) -> Result<bool> {
    if reboot == Reboot::NoReboot {
        return Ok(false);
    }
    env.reporter
        .report(ProgressEvent::Step { step: Step::Reboot });
    let cmd = &config.reboot_command;
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .map_err(|source| Error::Reboot {
            command: cmd.clone(),
            source,
        })?;
    if !status.success() {
        return error::RebootStatusSnafu {
            command: cmd.clone(),
            status,
        }
        .fail();
    }
    Ok(true)
}
