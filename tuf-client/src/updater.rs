//! The client workflow (§5) with its I/O: downloads with length limits, the datastore, the root
//! chain, the delegation search and target downloads. Every check on the bytes is in
//! [`crate::trusted`].

use crate::datastore::{DEFAULT_CLOCK_FILE, Datastore};
use crate::error::{self, Error, Result};
use crate::schema;
use crate::target::{self, TargetInfo, TargetStream};
use crate::transport::{Transport, TransportErrorKind};
use crate::trusted::{self, TimestampChange, TrustedSet};
use futures::StreamExt;
use snafu::ResultExt;
use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Duration;
use tough::schema::RoleType;
use tracing::debug;
use url::Url;

/// Download limits and search bounds. The defaults follow python-tuf's `UpdaterConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest `N.root.json` accepted (§5.3.3 "W"). Default 512 KiB.
    pub root: u64,
    /// Largest `timestamp.json` accepted (§5.4.1 "X"). Default 16 KiB.
    pub timestamp: u64,
    /// Largest snapshot accepted when the timestamp gives no length (§5.5.1 "Y"). Default 2 MiB.
    pub snapshot: u64,
    /// Largest targets role accepted when the snapshot gives no length (§5.6.1 "Z"). Default
    /// 5 MiB.
    pub targets: u64,
    /// Most new root versions accepted in one cycle (§5.3.3 "Y"). Default 32.
    pub max_root_rotations: u32,
    /// Most delegated roles visited in one search (§5.6.7.1), after the top-level targets.
    /// Default 32.
    pub max_delegations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            root: 512 * 1024,
            timestamp: 16 * 1024,
            snapshot: 2 * 1024 * 1024,
            targets: 5 * 1024 * 1024,
            max_root_rotations: 32,
            max_delegations: 32,
        }
    }
}

/// Default tolerance of the clock-went-backwards check: 5 minutes.
pub const DEFAULT_CLOCK_TOLERANCE: Duration = Duration::from_secs(300);

/// Where the repository is, where trusted metadata lives, and the limits.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Base URL of the metadata (`…/metadata/`; a missing trailing `/` is added).
    pub metadata_base_url: Url,
    /// Base URL of the targets (`…/targets/`; a missing trailing `/` is added).
    pub targets_base_url: Url,
    /// The datastore directory (created if missing).
    pub datastore_dir: PathBuf,
    /// The root shipped with the client (out of band, §5.2). A newer verified root in the
    /// datastore is used instead when there is one.
    pub trusted_root: Vec<u8>,
    /// Download limits and search bounds.
    pub limits: Limits,
    /// `key=value` query parameters appended to every request (Bottlerocket's `seed`,
    /// `version`, …), in this order.
    pub query: Vec<(String, String)>,
    /// How far the clock may be behind the last recorded cycle start before a cycle is refused.
    pub clock_tolerance: Duration,
    /// Name of the datastore file recording the last cycle start (default
    /// [`DEFAULT_CLOCK_FILE`], `last-cycle-time`). A name ending in `.json` is written as a JSON
    /// string, the form tough used for `latest_known_time.json`, so a client taking over a tough
    /// datastore keeps its clock record.
    pub clock_file: String,
}

impl Config {
    /// A configuration with default limits, no query parameters and the default clock
    /// tolerance.
    pub fn new(
        metadata_base_url: Url,
        targets_base_url: Url,
        datastore_dir: impl Into<PathBuf>,
        trusted_root: Vec<u8>,
    ) -> Self {
        Self {
            metadata_base_url,
            targets_base_url,
            datastore_dir: datastore_dir.into(),
            trusted_root,
            limits: Limits::default(),
            query: Vec::new(),
            clock_tolerance: DEFAULT_CLOCK_TOLERANCE,
            clock_file: DEFAULT_CLOCK_FILE.to_owned(),
        }
    }
}

/// What happened to the timestamp in a refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimestampUpdate {
    /// A newer timestamp was accepted and persisted.
    Updated,
    /// The repository's timestamp is the trusted one (same version, same bytes).
    Unchanged,
    /// §5.4.3.1: the repository served a timestamp with the trusted version but different
    /// content. It was discarded without error; the trusted one stays.
    DiscardedSameVersionDifferentContent,
}

/// The state after a successful refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshOutcome {
    /// The fixed update start time of this cycle.
    pub started_at: jiff::Timestamp,
    /// Trusted root version.
    pub root_version: u64,
    /// New root versions accepted in this cycle.
    pub root_rotations: u32,
    /// Whether the timestamp or snapshot keys changed in this cycle, so the persisted timestamp
    /// and snapshot were deleted (§5.3.11).
    pub timestamp_snapshot_keys_rotated: bool,
    /// What happened to the timestamp.
    pub timestamp: TimestampUpdate,
    /// Trusted timestamp version.
    pub timestamp_version: u64,
    /// Trusted snapshot version.
    pub snapshot_version: u64,
    /// Trusted top-level targets version.
    pub targets_version: u64,
    /// Whether the repository uses consistent snapshots.
    pub consistent_snapshot: bool,
}

/// A TUF client for one repository.
#[derive(Debug)]
pub struct Updater {
    config: Config,
    metadata_base: Url,
    targets_base: Url,
    transport: Box<dyn Transport>,
    datastore: Datastore,
    trusted: Option<TrustedSet>,
}

fn with_trailing_slash(mut url: Url) -> Result<Url> {
    if url.cannot_be_a_base() {
        return error::BaseUrlSnafu {
            url: url.to_string(),
            reason: "it cannot be a base URL",
        }
        .fail();
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

impl Updater {
    /// Checks the configuration (base URLs, the shipped root's self-signature) and opens the
    /// datastore. Nothing is downloaded.
    pub fn new(config: Config, transport: impl Transport + 'static) -> Result<Self> {
        let metadata_base = with_trailing_slash(config.metadata_base_url.clone())?;
        let targets_base = with_trailing_slash(config.targets_base_url.clone())?;
        trusted::verify_self_signed_root(&config.trusted_root, "the configuration")
            .context(error::TrustedRootSnafu)?;
        let datastore = Datastore::open(&config.datastore_dir, &config.clock_file)?;
        Ok(Self {
            config,
            metadata_base,
            targets_base,
            transport: Box::new(transport),
            datastore,
            trusted: None,
        })
    }

    /// `url` with the configured query parameters appended.
    fn with_query(&self, mut url: Url) -> Url {
        if !self.config.query.is_empty() {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &self.config.query {
                pairs.append_pair(k, v);
            }
        }
        url
    }

    fn metadata_url(&self, file: &str) -> Result<Url> {
        self.metadata_base
            .join(file)
            .map_err(|source| Error::JoinUrl {
                base: self.metadata_base.to_string(),
                name: file.to_owned(),
                source,
            })
    }

    /// Downloads `url` (with the query parameters) into memory, refusing more than `limit`
    /// bytes.
    async fn fetch_bytes(&self, url: &Url, limit: u64, what: &str) -> Result<Vec<u8>> {
        let request = self.with_query(url.clone());
        let mut stream = self
            .transport
            .fetch(&request)
            .await
            .context(error::FetchSnafu {
                what,
                url: url.as_str(),
            })?;
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.context(error::FetchSnafu {
                what,
                url: url.as_str(),
            })?;
            if out.len() as u64 + chunk.len() as u64 > limit {
                return error::TooLargeSnafu {
                    what,
                    url: url.as_str(),
                    limit,
                }
                .fail();
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }

    /// §5.1: checks the clock against the last recorded cycle start and records this one.
    fn check_clock(&self, now: jiff::Timestamp) -> Result<()> {
        let last = self.datastore.last_cycle_time()?;
        if let Some(last) = last {
            let tolerance = jiff::SignedDuration::try_from(self.config.clock_tolerance)
                .unwrap_or(jiff::SignedDuration::MAX);
            let floor = last.checked_sub(tolerance).unwrap_or(jiff::Timestamp::MIN);
            if now < floor {
                return error::ClockWentBackwardsSnafu {
                    now,
                    last,
                    tolerance_secs: self.config.clock_tolerance.as_secs(),
                }
                .fail();
            }
            if now <= last {
                return Ok(());
            }
        }
        self.datastore.set_last_cycle_time(now)
    }

    /// §5.2: the shipped root, or the newer verified root the datastore holds.
    fn initial_root(&self) -> Result<(Vec<u8>, String)> {
        let shipped = &self.config.trusted_root;
        let shipped_version = trusted::verify_self_signed_root(shipped, "the configuration")
            .context(error::TrustedRootSnafu)?
            .version
            .get();
        let path = self.datastore.path("root");
        if let Some(kept) = self.datastore.read("root")? {
            match trusted::verify_self_signed_root(&kept, &path.display().to_string()) {
                Ok(root) if root.version.get() > shipped_version => {
                    return Ok((kept, path.display().to_string()));
                }
                Ok(_) => {}
                Err(e) => debug!("ignoring the datastore's root: {e}"),
            }
        }
        Ok((shipped.clone(), "the configuration".to_owned()))
    }

    /// Runs one update cycle (§5.1–§5.6.6) with `now` as its fixed start time: the root chain,
    /// timestamp, snapshot and top-level targets. Delegated roles are fetched later, only as a
    /// target lookup needs them. On error, lookups are refused until a refresh succeeds.
    pub async fn refresh(&mut self, now: jiff::Timestamp) -> Result<RefreshOutcome> {
        self.trusted = None;
        // §5.1
        self.check_clock(now)?;
        // §5.2
        let (root_bytes, root_origin) = self.initial_root()?;
        let mut set = TrustedSet::new(&root_bytes, &root_origin, now)?;
        if self.datastore.read("root")?.as_deref() != Some(root_bytes.as_slice()) {
            self.datastore.write("root", &root_bytes)?;
        }
        let start_keys = [RoleType::Timestamp, RoleType::Snapshot]
            .map(|r| schema::role_key_set(&set.root().role, r));

        // §5.3: N+1.root.json until not found, at most max_root_rotations.
        let mut rotations = 0;
        while rotations < self.config.limits.max_root_rotations {
            let version = set.root().role.version.get() + 1;
            let url = self.metadata_url(&format!("{version}.root.json"))?;
            let bytes = match self
                .fetch_bytes(&url, self.config.limits.root, "root metadata")
                .await
            {
                Ok(b) => b,
                Err(Error::Fetch { source, .. })
                    if source.kind() == TransportErrorKind::NotFound =>
                {
                    break;
                }
                Err(e) => return Err(e),
            };
            set.update_root(&bytes, url.as_str())?;
            // §5.3.8
            self.datastore.write("root", &bytes)?;
            rotations += 1;
        }
        // §5.3.10
        set.check_final_root()?;
        // §5.3.11
        let end_keys = [RoleType::Timestamp, RoleType::Snapshot]
            .map(|r| schema::role_key_set(&set.root().role, r));
        let keys_rotated = start_keys != end_keys;
        if keys_rotated {
            debug!(
                "timestamp or snapshot keys changed: deleting the persisted timestamp and snapshot"
            );
            self.datastore.remove("timestamp")?;
            self.datastore.remove("snapshot")?;
        }

        // §5.4
        if let Some(bytes) = self.datastore.read("timestamp")? {
            let origin = self.datastore.path("timestamp").display().to_string();
            if let Err(e) = set.update_timestamp(&bytes, &origin) {
                debug!("the persisted timestamp is not valid as final: {e}");
            }
        }
        let url = self.metadata_url("timestamp.json")?;
        let bytes = self
            .fetch_bytes(&url, self.config.limits.timestamp, "timestamp metadata")
            .await?;
        let timestamp = match set.update_timestamp(&bytes, url.as_str())? {
            TimestampChange::Accepted => {
                // §5.4.5
                self.datastore.write("timestamp", &bytes)?;
                TimestampUpdate::Updated
            }
            TimestampChange::EqualVersion { same_bytes: true } => TimestampUpdate::Unchanged,
            TimestampChange::EqualVersion { same_bytes: false } => {
                debug!("discarding a timestamp with the trusted version but different content");
                TimestampUpdate::DiscardedSameVersionDifferentContent
            }
        };

        // §5.5
        let mut snapshot_done = false;
        if let Some(bytes) = self.datastore.read("snapshot")? {
            let origin = self.datastore.path("snapshot").display().to_string();
            match set.update_snapshot(&bytes, &origin, true) {
                Ok(()) => snapshot_done = true,
                Err(e) => debug!("the persisted snapshot is not valid as final: {e}"),
            }
        }
        if !snapshot_done {
            let meta = set
                .timestamp()
                .expect("timestamp loaded")
                .role
                .snapshot
                .clone();
            let file = if set.root().role.consistent_snapshot {
                format!("{}.snapshot.json", meta.version)
            } else {
                "snapshot.json".to_owned()
            };
            let url = self.metadata_url(&file)?;
            let limit = meta.length.unwrap_or(self.config.limits.snapshot);
            let bytes = self.fetch_bytes(&url, limit, "snapshot metadata").await?;
            set.update_snapshot(&bytes, url.as_str(), false)?;
            // §5.5.7
            self.datastore.write("snapshot", &bytes)?;
        }

        // §5.6
        self.load_targets(&mut set, "targets", "root").await?;

        let outcome = RefreshOutcome {
            started_at: now,
            root_version: set.root().role.version.get(),
            root_rotations: rotations,
            timestamp_snapshot_keys_rotated: keys_rotated,
            timestamp,
            timestamp_version: set.timestamp().expect("loaded").role.header.version,
            snapshot_version: set.snapshot().expect("loaded").role.header.version,
            targets_version: set.targets("targets").expect("loaded").header.version,
            consistent_snapshot: set.root().role.consistent_snapshot,
        };
        self.trusted = Some(set);
        Ok(outcome)
    }

    /// §5.6 for one targets role: the persisted copy if it still verifies against the trusted
    /// snapshot, else a download. Returns false if `role` (a delegated role) is not listed in the
    /// snapshot, so the search skips it.
    async fn load_targets(
        &self,
        set: &mut TrustedSet,
        role: &str,
        delegator: &str,
    ) -> Result<bool> {
        if set.targets(role).is_some() {
            return Ok(true);
        }
        if let Some(bytes) = self.datastore.read(role)? {
            let origin = self.datastore.path(role).display().to_string();
            match set.update_targets(&bytes, role, delegator, &origin) {
                Ok(_) => return Ok(true),
                Err(e) => debug!("the persisted {role} is not valid: {e}"),
            }
        }
        let Some(meta) = set.snapshot_meta(role).cloned() else {
            if role == "targets" {
                return error::NotInSnapshotSnafu { role }.fail();
            }
            debug!(
                "'{role}' is delegated by '{delegator}' but not listed in the snapshot: skipped"
            );
            return Ok(false);
        };
        let quoted = crate::datastore::quote(role);
        let file = if set.root().role.consistent_snapshot {
            format!("{}.{quoted}.json", meta.version)
        } else {
            format!("{quoted}.json")
        };
        let url = self.metadata_url(&file)?;
        let limit = meta.length.unwrap_or(self.config.limits.targets);
        let bytes = self
            .fetch_bytes(&url, limit, &format!("{role} metadata"))
            .await?;
        set.update_targets(&bytes, role, delegator, url.as_str())?;
        // §5.6.6
        self.datastore.write(role, &bytes)?;
        Ok(true)
    }

    /// §5.6.7: finds `name` by a pre-order depth-first search of the delegation graph from the
    /// top-level targets role, fetching only the roles the search visits. A role is visited only
    /// if its delegation's `paths` or `path_hash_prefixes` cover `name`; a terminating
    /// delegation ends the search once its subtree is searched; at most
    /// [`Limits::max_delegations`] delegated roles are visited; a delegated role that the snapshot
    /// does not list is skipped. `Ok(None)`: no trusted role lists `name`. If this future is
    /// dropped before it completes, the cycle's trusted state is dropped with it and the next
    /// lookup asks for a new `refresh`.
    pub async fn get_target_info(&mut self, name: &str) -> Result<Option<TargetInfo>> {
        let mut set = self.trusted.take().ok_or(Error::NotRefreshed)?;
        let result = self.search(&mut set, name).await;
        self.trusted = Some(set);
        result
    }

    async fn search(&self, set: &mut TrustedSet, name: &str) -> Result<Option<TargetInfo>> {
        let max = self.config.limits.max_delegations as usize;
        let mut to_visit = vec![("targets".to_owned(), "root".to_owned())];
        let mut visited: HashSet<String> = HashSet::new();
        while visited.len() <= max {
            let Some((role, delegator)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue;
            }
            let present = self.load_targets(set, &role, &delegator).await?;
            visited.insert(role.clone());
            if !present {
                continue;
            }
            let targets = set.targets(&role).expect("loaded above");
            if let Some(entry) = targets.targets.get(name) {
                return Ok(Some(TargetInfo {
                    name: name.to_owned(),
                    length: entry.length,
                    hashes: entry.hashes.clone(),
                    custom: entry.custom.clone(),
                    role,
                }));
            }
            if let Some(delegations) = &targets.delegations {
                let mut children = Vec::new();
                for child in &delegations.roles {
                    if !child.paths.matches(name) {
                        continue;
                    }
                    children.push((child.name.clone(), role.clone()));
                    if child.terminating {
                        to_visit.clear();
                        break;
                    }
                }
                to_visit.extend(children.into_iter().rev());
            }
        }
        if !to_visit.is_empty() {
            debug!(
                "{} roles left unvisited: at most {max} delegated roles are visited",
                to_visit.len()
            );
        }
        Ok(None)
    }

    /// The URL `info` is downloaded from (§5.7.3, with the query parameters).
    pub fn target_url(&self, info: &TargetInfo) -> Result<Url> {
        let set = self.trusted.as_ref().ok_or(Error::NotRefreshed)?;
        let url = target::target_url(
            &self.targets_base,
            &info.name,
            &info.hashes,
            set.root().role.consistent_snapshot,
        )?;
        Ok(self.with_query(url))
    }

    /// §5.7: opens the target as a stream that fails unless the length and every listed hash
    /// match (see [`TargetStream`]).
    pub async fn open_target(&self, info: &TargetInfo) -> Result<TargetStream> {
        let url = self.target_url(info)?;
        let stream = self
            .transport
            .fetch(&url)
            .await
            .context(error::FetchSnafu {
                what: format!("target '{}'", info.name),
                url: url.as_str(),
            })?;
        Ok(TargetStream::new(stream, info, &url))
    }

    /// §5.7: downloads the target into memory and returns it once its length and every listed
    /// hash have matched.
    pub async fn download_target(&self, info: &TargetInfo) -> Result<Vec<u8>> {
        let mut stream = self.open_target(info).await?;
        let mut out = Vec::with_capacity(usize::try_from(info.length.min(64 << 20)).unwrap_or(0));
        while let Some(chunk) = stream.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(out)
    }

    /// The exact bytes of the trusted root (to ship or mirror), once refreshed.
    pub fn trusted_root_bytes(&self) -> Option<&[u8]> {
        self.trusted.as_ref().map(|s| s.root().bytes.as_slice())
    }

    /// The exact bytes a trusted role of this cycle was verified from: `root`, `timestamp`,
    /// `snapshot`, `targets`, or a delegated targets role the search has visited. `None` before a
    /// successful refresh or for a role not loaded. For mirroring a verified repository (updog
    /// caches the metadata for Bottlerocket's migrator).
    pub fn trusted_metadata(&self, role: &str) -> Option<&[u8]> {
        let set = self.trusted.as_ref()?;
        match role {
            "root" => Some(set.root().bytes.as_slice()),
            "timestamp" => set.timestamp().map(|t| t.bytes.as_slice()),
            "snapshot" => set.snapshot().map(|s| s.bytes.as_slice()),
            other => set.targets_bytes(other),
        }
    }

    /// The file name role `role` is published under in this cycle's repository
    /// (`N.<role>.json` with consistent snapshots, `<role>.json` otherwise; `timestamp.json`;
    /// `N.root.json` for the trusted root), as a mirror must name it. `None` as for
    /// [`Updater::trusted_metadata`].
    pub fn metadata_file_name(&self, role: &str) -> Option<String> {
        let set = self.trusted.as_ref()?;
        let consistent = set.root().role.consistent_snapshot;
        Some(match role {
            "root" => format!("{}.root.json", set.root().role.version.get()),
            "timestamp" => "timestamp.json".to_owned(),
            "snapshot" => {
                let v = set.snapshot()?.role.header.version;
                if consistent {
                    format!("{v}.snapshot.json")
                } else {
                    "snapshot.json".to_owned()
                }
            }
            other => {
                set.targets_bytes(other)?;
                let v = set.snapshot_meta(other)?.version;
                let quoted = crate::datastore::quote(other);
                if consistent {
                    format!("{v}.{quoted}.json")
                } else {
                    format!("{quoted}.json")
                }
            }
        })
    }

    /// The targets roles trusted so far in this cycle: `targets`, then the delegated roles the
    /// searches have visited, sorted by name. Empty before a refresh.
    pub fn trusted_targets_roles(&self) -> Vec<String> {
        let Some(set) = self.trusted.as_ref() else {
            return Vec::new();
        };
        let mut roles = set.targets_role_names();
        roles.sort_by(|a, b| (a != "targets", a).cmp(&(b != "targets", b)));
        roles
    }

    /// Whether this cycle's trusted root uses consistent snapshots (`None` before a refresh).
    pub fn consistent_snapshot(&self) -> Option<bool> {
        self.trusted
            .as_ref()
            .map(|s| s.root().role.consistent_snapshot)
    }

    /// Downloads metadata file `file` (under the metadata base URL, with the query parameters),
    /// at most `limit` bytes, **without verifying it**. For mirroring files whose trust the
    /// reader re-establishes itself, such as the old versions of the root chain (`1.root.json`
    /// …) that a migrator walks from its own shipped root.
    pub async fn fetch_metadata_unverified(&self, file: &str, limit: u64) -> Result<Vec<u8>> {
        let url = self.metadata_url(file)?;
        self.fetch_bytes(&url, limit, file).await
    }
}
