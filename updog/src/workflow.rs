//! The commands: plan, then act in the safe order.
//!
//! `update` / `update-image`: lock → config, os-release → load TUF (persistent datastore) →
//! select (update-metadata's pure function) → clear the inactive set (durable) → fetch and cache
//! migrations with manifest.json → stream boot, hash, root into the inactive partitions
//! (resumable), root checked against hash with the boot partition's root hash as it is written →
//! mark the set valid → (update
//! only) make it the next to boot → optional reboot.

use crate::apply::{self, ApplyContext};
use crate::config::{Config, HostPaths};
use crate::coord;
use crate::error::{self, Error, Result};
use crate::exit::ExitStatus;
use crate::health;
use crate::host::OsRelease;
use crate::image::ImageResult;
use crate::lock::UpdateLock;
use crate::plan::UpdatePlan;
use crate::repo::{self, LoadedRepo};
use crate::reporter::{ProgressEvent, Reporter, Step};
use crate::status::{self, Failure, State, Status};
use crate::transport::{DEFAULT_RETRY_DEADLINE, HttpClient, QueryParams};
use crate::window::{self, WindowState};
use jiff::Timestamp;
use serde::Serialize;
use signpost::{Disk, SetName, Signpost};
use snafu::ResultExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, info};
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
    /// Report the persisted update state.
    Status,
    /// After a boot into a new set: run the health checks, then mark the boot successful or
    /// roll back (per `health_failure_action`).
    HealthCheck {
        /// Per-check timeout (else `health_check_timeout_secs`).
        timeout: Option<Duration>,
    },
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
    /// The chosen version failed its health check on this host; taken again only with `--image`.
    HealthFailed {
        /// The version.
        version: Version,
    },
    /// A newer update is already staged; an older one never replaces it without `--image`.
    StagedIsNewer {
        /// The staged version.
        staged: Version,
        /// The version the repository offers now.
        offered: Version,
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
            NoUpdate::StagedIsNewer { .. } => ExitStatus::NothingNewer,
            NoUpdate::HealthFailed { .. } => ExitStatus::ReleaseHalted,
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
            NoUpdate::HealthFailed { version } => write!(
                f,
                "No update: {version} failed its health check on this host and was rolled back \
                 (see `updog status`); use --image {version} to take it anyway"
            ),
            NoUpdate::StagedIsNewer { staged, offered } => write!(
                f,
                "No update: {staged} is staged and newer than {offered}, the version offered now \
                 (use --image {offered} to replace it)"
            ),
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
        /// What `update` would do with it (absent when the disk could not be read).
        plan: Option<Box<UpdatePlan>>,
        /// The delta for its root image, when one is published (planned bytes, or why it is
        /// not used).
        #[serde(skip_serializing_if = "Option::is_none")]
        delta: Option<crate::delta_update::DeltaAvailability>,
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
        /// How the root image was written (delta or full, and why).
        #[serde(skip_serializing_if = "Option::is_none")]
        root_update: Option<crate::delta_update::DeltaReport>,
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
    /// The chosen update was already staged and verified: nothing was downloaded.
    AlreadyStaged {
        /// The manifest entry.
        update: Update,
        /// Activate or stage.
        activation: Activation,
        /// The set holding it.
        set: String,
        /// Whether the reboot command ran.
        rebooting: bool,
    },
    /// `update` outside the maintenance window: staged, not activated, no reboot.
    StagedOutsideWindow {
        /// The manifest entry.
        update: Update,
        /// The set holding it.
        set: String,
        /// When the window opens for this host.
        opens_at: Timestamp,
        /// Whether anything was downloaded (false: it was already staged).
        downloaded: bool,
    },
    /// `status`.
    Status(Box<StatusReport>),
    /// `health-check`.
    Health(HealthReport),
}

/// What `updog status` reports: the status file, checked against who holds the lock and what
/// the partition table says.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    /// The persisted status.
    #[serde(flatten)]
    pub status: Status,
    /// The state is `staging` or `verifying-health` but no updog runs: the run that wrote it was
    /// killed (the next command records this and carries on).
    pub stale: bool,
    /// The updog process named by `pid` is running right now.
    pub busy: bool,
    /// The running set, if the disk could be read.
    pub active_set: Option<String>,
    /// The set the bootloader picks next, if the disk could be read.
    pub next_boot: Option<String>,
}

/// What `updog health-check` did.
#[derive(Debug, Clone, Serialize)]
pub struct HealthReport {
    /// `passed`, `failed` or `not-needed` (the running set is already marked successful).
    pub result: &'static str,
    /// Each check run, in order (stops at the first failure).
    pub checks: Vec<health::CheckResult>,
    /// What was done on failure (`rollback-and-reboot`, `rollback`, `report`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action: Option<&'static str>,
    /// The set that boots next afterwards.
    pub next_boot: Option<String>,
    /// Whether the reboot command ran.
    pub rebooting: bool,
}

impl Outcome {
    /// The documented exit status.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::NoUpdate(n) => n.exit_status(),
            Outcome::Health(h) if h.result == "failed" => ExitStatus::HealthCheckFailed,
            Outcome::StagedOutsideWindow { .. } => ExitStatus::OutsideWindow,
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
        .with_deadline(
            config
                .network
                .retry_deadline
                .unwrap_or(DEFAULT_RETRY_DEADLINE),
        );
    Ok(Prepared {
        config,
        os,
        host,
        http,
    })
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

/// Records the last step reported, so a failure names the step it happened in.
struct StepTracker {
    inner: Arc<dyn Reporter>,
    last: std::sync::Mutex<Option<Step>>,
}

impl Reporter for StepTracker {
    fn report(&self, event: ProgressEvent) {
        if let ProgressEvent::Step { step } = &event
            && let Ok(mut last) = self.last.lock()
        {
            *last = Some(*step);
        }
        self.inner.report(event);
    }
}

fn step_name(step: Option<Step>, default: &str) -> String {
    step.and_then(|s| serde_json::to_value(s).ok())
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| default.to_owned())
}

/// Async body of [`run`].
pub async fn run_async(command: Command, env: &Env) -> Result<Outcome> {
    // A wrong --disk is an argument error, found before anything else is done.
    if let Some(d) = &env.disk
        && std::fs::symlink_metadata(&d.path).is_err()
    {
        return error::DiskMissingSnafu { path: &d.path }.fail();
    }
    if let Command::Status = command {
        return status_report(env);
    }
    let _lock = UpdateLock::acquire(&env.paths.lock_file())?;
    // Holding the lock, a transient state left in the file belongs to a run that was killed.
    let mut st = status::load_or_repair(&env.paths)?;
    if st.state.is_transient() {
        let (state, step) = match st.state {
            State::VerifyingHealth => (State::Failed, "health-check"),
            _ => (State::Failed, "staging"),
        };
        tracing::warn!(
            "the last run (pid {}) stopped while {}; recording the interruption",
            st.pid
                .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
            st.state
        );
        st.last_failure = Some(Failure {
            step: step.to_owned(),
            reason: format!(
                "interrupted: updog (pid {}) stopped while {} and no longer runs",
                st.pid
                    .map_or_else(|| "unknown".to_owned(), |p| p.to_string()),
                st.state
            ),
            at: env.now,
            check: None,
            output: None,
        });
        st.state = state;
        st.pid = None;
        st.staged_version = None;
        st.staged_set = None;
        status::store(&env.paths, &mut st, env.now)?;
    }
    let tracker = Arc::new(StepTracker {
        inner: env.reporter.clone(),
        last: std::sync::Mutex::new(None),
    });
    let tracked = Env {
        reporter: tracker.clone(),
        ..env.clone()
    };
    let kind = match &command {
        Command::CheckUpdate { .. } => "check",
        Command::Update { .. } => "update",
        Command::UpdateApply { .. } => "activate",
        Command::UpdateRevert => "revert",
        Command::HealthCheck { .. } => "health-check",
        Command::Status => "status",
    };
    let result = dispatch(command, &tracked, &mut st).await;
    if let Err(e) = &result {
        // The error is the answer; the status file records it as well as it can.
        let step = step_name(tracker.last.lock().ok().and_then(|l| *l), kind);
        if !matches!(st.state, State::Staged | State::RebootPending) || st.pid.is_some() {
            st.state = State::Failed;
        }
        if st.state == State::Failed {
            st.staged_version = None;
            st.staged_set = None;
        }
        st.pid = None;
        st.last_failure = Some(Failure {
            step,
            reason: crate::render::error_text(e),
            at: env.now,
            check: None,
            output: None,
        });
        if let Err(store_error) = status::store(&env.paths, &mut st, env.now) {
            tracing::warn!("could not record the failure in the status file: {store_error}");
        }
    }
    result
}

/// Whether `pid` is a running updog (read-only: `status` never takes the update lock, so polling
/// it cannot make an update fail with "another updog is running").
fn updog_runs(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end().starts_with("updog"))
}

fn status_report(env: &Env) -> Result<Outcome> {
    let mut st = status::load(&env.paths)?;
    let busy = st.state.is_transient() && st.pid.is_some_and(updog_runs);
    if st.running_version.is_none()
        && let Ok(os) = OsRelease::load(&env.paths.os_release())
    {
        st.running_version = Some(os.version);
    }
    let (active_set, next_boot) = match open_signpost(env) {
        Ok(sp) => (
            Some(sp.active().to_string()),
            sp.next_boot().map(|s| s.to_string()),
        ),
        Err(e) => {
            tracing::debug!("status: partition table not read: {e}");
            (None, None)
        }
    };
    Ok(Outcome::Status(Box::new(StatusReport {
        stale: !busy && st.state.is_transient(),
        busy,
        status: st,
        active_set,
        next_boot,
    })))
}

/// The version staged in the inactive set, if the status file says so and the partition flags
/// agree (written, verified and valid: `tries_left` > 0, not yet booted successfully).
fn staged_on_disk(sp: &Signpost, st: &Status) -> Option<(Version, SetName)> {
    if !matches!(st.state, State::Staged | State::RebootPending) {
        return None;
    }
    let inactive = sp.inactive().ok()?;
    let flags = sp.disk().flags(inactive).ok()?;
    let version = st.staged_version.clone()?;
    (st.staged_set.as_deref() == Some(inactive.to_string().as_str())
        && flags.tries_left > 0
        && !flags.successful)
        .then_some((version, inactive))
}

async fn dispatch(command: Command, env: &Env, st: &mut Status) -> Result<Outcome> {
    match command {
        Command::Status => status_report(env),
        Command::CheckUpdate { all, image, waves } => {
            let p = prepare(env)?;
            st.running_version = Some(p.os.version.clone());
            env.reporter.report(ProgressEvent::Step {
                step: Step::LoadMetadata,
            });
            let loaded = repo::load(&env.paths, &p.config, &p.http).await?;
            loaded.check_host(&p.host)?;
            st.last_check = Some(env.now);
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
                status::store(&env.paths, st, env.now)?;
                return Ok(Outcome::All { updates });
            }
            st.window_opens_at = match window_now(&p.config, env) {
                Some(WindowState::Closed { opens_at }) => {
                    info!(
                        "maintenance window closed: this host may activate an update from {opens_at}"
                    );
                    Some(opens_at)
                }
                _ => None,
            };
            let outcome = match choose(&loaded, &p, env, image, waves) {
                Ok(update) => {
                    // What `update` would do now (staging only while the window is closed).
                    let activation = if st.window_opens_at.is_some() && waves == Waves::Respect {
                        Activation::StageOnly
                    } else {
                        Activation::Activate
                    };
                    let plan = check_plan(env, &p, &loaded, update, activation).await;
                    Outcome::Available {
                        update: update.clone(),
                        plan: plan.map(Box::new),
                        delta: check_delta(env, &p, &loaded, update, st.delta.as_ref()).await,
                    }
                }
                Err(no) => Outcome::NoUpdate(no),
            };
            record_check(st, &outcome);
            status::store(&env.paths, st, env.now)?;
            Ok(outcome)
        }
        Command::Update {
            image,
            waves,
            activation,
            reboot,
        } => {
            let p = prepare(env)?;
            st.running_version = Some(p.os.version.clone());
            env.reporter.report(ProgressEvent::Step {
                step: Step::LoadMetadata,
            });
            let loaded = repo::load(&env.paths, &p.config, &p.http).await?;
            loaded.check_host(&p.host)?;
            st.last_check = Some(env.now);
            let staged = {
                let sp = open_signpost(env)?;
                staged_on_disk(&sp, st)
            };
            let forced = image.is_some();
            // The staged update, if the repository still offers it (a choice made with --now is
            // kept by a later plain `update` while the host's wave is closed).
            let keep = staged
                .as_ref()
                .filter(|(s, _)| !forced && *s > p.os.version)
                .and_then(|(s, _)| {
                    update_metadata::applicable(&loaded.manifest, &p.host)
                        .into_iter()
                        .find(|u| u.version == *s)
                        .cloned()
                });
            let chosen = choose(&loaded, &p, env, image, waves);
            let update = match (chosen, staged) {
                (Ok(u), Some((s, _))) if !forced && u.version < s => match keep {
                    Some(k) => k,
                    None => {
                        let outcome = Outcome::NoUpdate(NoUpdate::StagedIsNewer {
                            staged: s,
                            offered: u.version.clone(),
                        });
                        status::store(&env.paths, st, env.now)?;
                        return Ok(outcome);
                    }
                },
                (Ok(u), _) => u.clone(),
                (Err(no), _) => match keep {
                    Some(k) if matches!(no, NoUpdate::NotInWaveYet { .. }) => k,
                    _ => {
                        let outcome = Outcome::NoUpdate(no);
                        record_check(st, &outcome);
                        status::store(&env.paths, st, env.now)?;
                        return Ok(outcome);
                    }
                },
            };
            if !forced && st.health_failed_version.as_ref() == Some(&update.version) {
                let outcome = Outcome::NoUpdate(NoUpdate::HealthFailed {
                    version: update.version.clone(),
                });
                status::store(&env.paths, st, env.now)?;
                return Ok(outcome);
            }
            // Outside the maintenance window `update` stages but neither activates nor reboots
            // (`--now` lifts the window as it lifts waves).
            let closed = match window_now(&p.config, env) {
                Some(WindowState::Closed { opens_at })
                    if activation == Activation::Activate && waves == Waves::Respect =>
                {
                    Some(opens_at)
                }
                _ => None,
            };
            let Some(opens_at) = closed else {
                st.window_opens_at = None;
                if activation == Activation::Activate
                    && let Some(fleet) = coord::connect(&p.config, &env.paths)?
                {
                    return coordinated_update(env, &p, &loaded, update, reboot, st, &fleet).await;
                }
                return update_to(env, &p, &loaded, update, activation, reboot, st).await;
            };
            info!("maintenance window closed until {opens_at}: staging only");
            let outcome = update_to(
                env,
                &p,
                &loaded,
                update,
                Activation::StageOnly,
                Reboot::NoReboot,
                st,
            )
            .await?;
            st.window_opens_at = Some(opens_at);
            status::store(&env.paths, st, env.now)?;
            Ok(match outcome {
                Outcome::Updated { update, set, .. } => Outcome::StagedOutsideWindow {
                    update,
                    set,
                    opens_at,
                    downloaded: true,
                },
                Outcome::AlreadyStaged { update, set, .. } => Outcome::StagedOutsideWindow {
                    update,
                    set,
                    opens_at,
                    downloaded: false,
                },
                other => other,
            })
        }
        Command::UpdateApply { reboot } => {
            let config = Config::load(&env.paths.config())?;
            let mut sp = open_signpost(env)?;
            sp.upgrade_to_inactive().context(error::SignpostSnafu {
                op: "activate the staged set",
            })?;
            let next = sp.next_boot().map(|s| s.to_string()).unwrap_or_default();
            drop(sp);
            st.state = State::RebootPending;
            status::store(&env.paths, st, env.now)?;
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
            if st.state == State::RebootPending {
                st.state = State::Staged;
                status::store(&env.paths, st, env.now)?;
            }
            Ok(Outcome::Reverted { next })
        }
        Command::HealthCheck { timeout } => health_check(env, st, timeout).await,
    }
}

/// The maintenance window's state now for this host (None without `update_window`).
fn window_now(config: &Config, env: &Env) -> Option<WindowState> {
    let w = config.update_window.as_ref()?;
    let delay = window::host_delay(config.seed, config.activation_delay_max);
    Some(window::state(w, delay, env.now))
}

/// What a check (or an update that found nothing to do) says about the host's state.
fn record_check(st: &mut Status, outcome: &Outcome) {
    let settled = matches!(
        st.state,
        State::Idle | State::Available | State::Healthy | State::Failed
    );
    match outcome {
        Outcome::Available { update, delta, .. } => {
            st.delta = delta.clone();
            st.next_version = Some(update.version.clone());
            st.wave_opens_at = None;
            if settled {
                st.state = State::Available;
            }
        }
        Outcome::NoUpdate(NoUpdate::NotInWaveYet { version, opens_at }) => {
            st.next_version = Some(version.clone());
            st.wave_opens_at = Some(*opens_at);
            if settled {
                st.state = State::Idle;
            }
        }
        Outcome::NoUpdate(_) => {
            st.wave_opens_at = None;
            if settled {
                st.next_version = None;
                st.state = State::Idle;
            }
        }
        _ => {}
    }
}

/// `update` with `[fleet]`: stage, take a reboot slot of the group (waiting while the slots are
/// full, refused at once when the release is halted), then activate and reboot. Without a slot
/// the update stays staged and the host never reboots.
async fn coordinated_update(
    env: &Env,
    p: &Prepared,
    loaded: &LoadedRepo,
    update: Update,
    reboot: Reboot,
    st: &mut Status,
    fleet: &coord::Fleet,
) -> Result<Outcome> {
    use fleet::HostState;
    let staged = update_to(
        env,
        p,
        loaded,
        update.clone(),
        Activation::StageOnly,
        Reboot::NoReboot,
        st,
    )
    .await?;
    let running = p.os.version.clone();
    let report = |state| coord::Fleet::host_report(state, &running, Some(&update.version), None);
    fleet.report(report(HostState::Staged)).await;
    env.reporter.report(ProgressEvent::Step {
        step: Step::AcquireSlot,
    });
    let observer = coord::StatusObserver::new(&env.paths, st, fleet.options.deadline);
    let slot = fleet
        .coordinator
        .acquire_reboot_slot(
            &fleet.group,
            &fleet.host,
            &update.version,
            &fleet.options,
            &observer,
        )
        .await
        .context(error::FleetSnafu {
            op: "take a reboot slot",
        })?;
    info!(
        "reboot slot of group {} taken (lease {})",
        fleet.group, slot.lease
    );
    st.fleet_slot = Some(slot.clone());
    status::store(&env.paths, st, env.now)?;
    env.reporter.report(ProgressEvent::Step {
        step: Step::Activate,
    });
    let activated = (|| {
        let mut sp = open_signpost(env)?;
        let inactive = sp.inactive().context(error::SignpostSnafu {
            op: "find the inactive set",
        })?;
        if sp.next_boot() != Some(inactive) {
            sp.upgrade_to_inactive().context(error::SignpostSnafu {
                op: "make the new set the next to boot",
            })?;
        }
        Ok(())
    })();
    if let Err(e) = activated {
        // Not rebooting after all: the slot goes back at once.
        if let Err(r) = fleet.coordinator.release(&slot).await {
            tracing::warn!("could not release the reboot slot: {r}");
        }
        st.fleet_slot = None;
        return Err(e);
    }
    st.state = State::RebootPending;
    status::store(&env.paths, st, env.now)?;
    fleet.report(report(HostState::RebootPending)).await;
    let rebooting = maybe_reboot(&p.config, reboot, env)?;
    Ok(match staged {
        Outcome::Updated {
            update,
            set,
            images,
            root_update,
            ..
        } => Outcome::Updated {
            update,
            activation: Activation::Activate,
            set,
            images,
            root_update,
            rebooting,
        },
        Outcome::AlreadyStaged { update, set, .. } => Outcome::AlreadyStaged {
            update,
            activation: Activation::Activate,
            set,
            rebooting,
        },
        other => other,
    })
}

/// After health checks with `[fleet]`: report, halt the release on failure, give the slot back.
async fn fleet_after_health(
    config: &Config,
    env: &Env,
    st: &mut Status,
    failure: Option<String>,
) -> Result<()> {
    use fleet::HostState;
    let Some(fleet) = coord::connect(config, &env.paths)? else {
        return Ok(());
    };
    let slot = st.fleet_slot.take();
    let running = st
        .running_version
        .clone()
        .unwrap_or_else(|| Version::new(0, 0, 0));
    match &failure {
        None => {
            fleet
                .report(coord::Fleet::host_report(
                    HostState::Healthy,
                    &running,
                    None,
                    None,
                ))
                .await;
        }
        Some(reason) => {
            let version = slot
                .as_ref()
                .map_or_else(|| running.clone(), |s| s.version.clone());
            match fleet
                .coordinator
                .halt(&fleet.group, &version, reason, fleet.host.as_str())
                .await
            {
                Ok(h) => info!("release {} halted for group {}", h.version, fleet.group),
                Err(e) => tracing::error!("could not halt release {version}: {e}"),
            }
            fleet
                .report(coord::Fleet::host_report(
                    HostState::RolledBack,
                    &running,
                    Some(&version),
                    Some(reason.clone()),
                ))
                .await;
        }
    }
    if let Some(slot) = slot
        && let Err(e) = fleet.coordinator.release(&slot).await
    {
        tracing::warn!(
            "could not release the reboot slot (it frees itself when its lease expires): {e}"
        );
    }
    Ok(())
}

async fn health_check(env: &Env, st: &mut Status, timeout: Option<Duration>) -> Result<Outcome> {
    let config = Config::load(&env.paths.config())?;
    let timeout = timeout.unwrap_or(config.health_check_timeout);
    let mut sp = open_signpost(env)?;
    let active = sp.active();
    let flags = sp.disk().flags(active).context(error::SignpostSnafu {
        op: "read the running set's flags",
    })?;
    if let Ok(os) = OsRelease::load(&env.paths.os_release()) {
        st.running_version = Some(os.version);
    }
    if flags.successful {
        return Ok(Outcome::Health(HealthReport {
            result: "not-needed",
            checks: Vec::new(),
            action: None,
            next_boot: sp.next_boot().map(|s| s.to_string()),
            rebooting: false,
        }));
    }
    st.state = State::VerifyingHealth;
    st.pid = Some(std::process::id());
    status::store(&env.paths, st, env.now)?;

    let (checks, failed) = health::run_all(
        &config.health_units,
        &env.paths.health_dir(),
        timeout,
        &env.paths.root,
    )?;
    st.pid = None;
    let Some(failed) = failed else {
        sp.mark_successful_boot().context(error::SignpostSnafu {
            op: "mark the boot successful",
        })?;
        fleet_after_health(&config, env, st, None).await?;
        if st.health_failed_version == st.running_version {
            st.health_failed_version = None;
        }
        st.state = State::Healthy;
        st.staged_version = None;
        st.staged_set = None;
        st.next_version = None;
        status::store(&env.paths, st, Timestamp::now().max(env.now))?;
        return Ok(Outcome::Health(HealthReport {
            result: "passed",
            checks,
            action: None,
            next_boot: sp.next_boot().map(|s| s.to_string()),
            rebooting: false,
        }));
    };
    let action = config.health_failure_action;
    st.last_failure = Some(Failure {
        step: "health-check".to_owned(),
        reason: failed.reason(timeout),
        at: env.now,
        check: Some(failed.name.clone()),
        output: failed.output.clone(),
    });
    st.state = State::Failed;
    st.health_failed_version = st.running_version.clone();
    status::store(&env.paths, st, env.now)?;
    let detail = format!(
        "{}{}",
        failed.reason(timeout),
        failed
            .output
            .as_deref()
            .map(|o| format!(": {}", o.trim_end()))
            .unwrap_or_default()
    );
    fleet_after_health(&config, env, st, Some(detail)).await?;
    if action != updog_config::HealthFailureAction::Report {
        sp.rollback_to_inactive().context(error::SignpostSnafu {
            op: "roll back to the previous set",
        })?;
        st.state = State::RolledBack;
        st.staged_version = None;
        st.staged_set = None;
        status::store(&env.paths, st, env.now)?;
    }
    let next_boot = sp.next_boot().map(|s| s.to_string());
    drop(sp);
    let rebooting = if action == updog_config::HealthFailureAction::RollbackAndReboot {
        maybe_reboot(&config, Reboot::Reboot, env)?
    } else {
        false
    };
    Ok(Outcome::Health(HealthReport {
        result: "failed",
        checks,
        action: Some(action.as_str()),
        next_boot,
        rebooting,
    }))
}

/// The plan `update` would follow for `update`, for `check-update`. A disk that cannot be
/// read (or a target that cannot be resolved) does not fail the check: it is logged and the
/// plan left out.
async fn check_plan(
    env: &Env,
    p: &Prepared,
    loaded: &LoadedRepo,
    update: &Update,
    activation: Activation,
) -> Option<UpdatePlan> {
    let planned = match open_signpost(env) {
        Ok(sp) => UpdatePlan::build(loaded, &p.os.version, update.clone(), activation, &sp).await,
        Err(e) => Err(e),
    };
    match planned {
        Ok(plan) => Some(plan),
        Err(e) => {
            let mut why = e.to_string();
            for cause in abos_shell::error::causes(&e) {
                why.push_str(": ");
                why.push_str(&cause);
            }
            info!("no update plan: {why}");
            None
        }
    }
}

/// `check-update`: the delta for `update`'s root image, when one is published (this downloads
/// the index and scans the running root; nothing is written).
async fn check_delta(
    env: &Env,
    p: &Prepared,
    loaded: &LoadedRepo,
    update: &Update,
    cached: Option<&crate::delta_update::DeltaAvailability>,
) -> Option<crate::delta_update::DeltaAvailability> {
    let disk = open_signpost(env).and_then(|sp| crate::delta_update::delta_disk(&sp));
    let mut d = crate::delta_update::availability(
        &p.http,
        loaded,
        &update.images.root.to_string(),
        disk,
        p.config.delta,
        cached,
    )
    .await?;
    d.version = Some(update.version.to_string());
    Some(d)
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
        // Exhaustive on purpose: a new selection result must be mapped here, not silently
        // read as "nothing newer".
        Selection::ForcedNotFound { version } => Err(NoUpdate::ImageNotFound { version }),
    }
}

async fn update_to(
    env: &Env,
    p: &Prepared,
    loaded: &LoadedRepo,
    update: Update,
    activation: Activation,
    reboot: Reboot,
    st: &mut Status,
) -> Result<Outcome> {
    // Already staged and verified in the inactive set: download nothing.
    {
        let mut sp = open_signpost(env)?;
        if let Some((version, set)) = staged_on_disk(&sp, st)
            && version == update.version
        {
            info!("{version} is already staged and verified in set {set}; nothing to download");
            st.next_version = Some(version);
            if activation == Activation::Activate {
                if sp.next_boot() != Some(set) {
                    env.reporter.report(ProgressEvent::Step {
                        step: Step::Activate,
                    });
                    sp.upgrade_to_inactive().context(error::SignpostSnafu {
                        op: "make the new set the next to boot",
                    })?;
                }
                st.state = State::RebootPending;
            }
            status::store(&env.paths, st, env.now)?;
            drop(sp);
            let rebooting = if activation == Activation::Activate {
                maybe_reboot(&p.config, reboot, env)?
            } else {
                false
            };
            return Ok(Outcome::AlreadyStaged {
                update,
                activation,
                set: set.to_string(),
                rebooting,
            });
        }
    }
    info!("Starting update to {}", update.version);
    p.http.params().set("target", update.version.to_string());
    let mut sp = open_signpost(env)?;
    let plan = UpdatePlan::build(loaded, &p.os.version, update, activation, &sp).await?;
    debug!(
        "update plan: {}",
        serde_json::to_string(&plan).unwrap_or_default()
    );
    let cx = ApplyContext {
        paths: &env.paths,
        now: env.now,
        reporter: env.reporter.clone(),
        http: &p.http,
        loaded,
        checkpoint_bytes: p.config.checkpoint_bytes,
        delta: p.config.delta,
    };
    st.delta = None;
    let (images, root_update) = apply::apply(&cx, &plan, &mut sp, st).await?;
    drop(sp);
    let rebooting = if activation == Activation::Activate {
        maybe_reboot(&p.config, reboot, env)?
    } else {
        false
    };
    Ok(Outcome::Updated {
        set: plan.inactive.name.to_string(),
        update: plan.update,
        activation,
        images,
        root_update,
        rebooting,
    })
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
