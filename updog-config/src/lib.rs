//! `/etc/updog.toml`: the schema and its strict parser, shared by updog (which runs with it) and
//! os-image (which refuses to bake a file updog could not use).
//!
//! Bottlerocket's keys (same names, same meaning): `metadata_base_url`, `targets_base_url`,
//! `seed`, `version_lock`, `ignore_waves`, `https_proxy`, `no_proxy`. Ours, all optional:
//! `reboot_command`, `retries`, `retry_backoff_ms`, `retry_backoff_max_ms`, `retry_deadline_secs`,
//! `connect_timeout_secs`, `read_timeout_secs`, `checkpoint_mib`, `arch`, and
//! `maintenance_window` (accepted and kept as written; not enforced yet),
//! `health_check_timeout_secs`, `health_failure_action`, `update_window`,
//! `activation_delay_max_secs`, `fleet` (tables, strict inside too), `health_units` and `delta`.
//!
//! Strict: a key not in [`KNOWN_KEYS`] is refused with the file, its line and the nearest valid
//! key (`seeed = 5` → "did you mean `seed`?"), so a typo never silently leaves a default in
//! place. The repository URLs accept only `https`, `http` and `file`. Every error names the file,
//! and every error about a value names its key and line.
//!
//! ```
//! use std::path::Path;
//! let text = "metadata_base_url = \"https://r.example/metadata/\"\n\
//!             targets_base_url = \"https://r.example/targets/\"\nseeed = 5\n";
//! let e = updog_config::Config::from_toml(text, Path::new("/etc/updog.toml")).unwrap_err();
//! assert_eq!(e.to_string(), "/etc/updog.toml:3: unknown key `seeed`; did you mean `seed`?");
//! ```
#![deny(missing_docs)]

mod error;
mod suggest;

pub use error::{Error, Result};

use serde::Deserialize;
use serde::de::IgnoredAny;
use snafu::ResultExt;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;
use update_metadata::{Arch, VersionLock};
use url::Url;
use waves::Seed;

/// Every key `updog.toml` may hold.
pub const KNOWN_KEYS: &[&str] = &[
    "metadata_base_url",
    "targets_base_url",
    "seed",
    "version_lock",
    "ignore_waves",
    "https_proxy",
    "no_proxy",
    "reboot_command",
    "retries",
    "retry_backoff_ms",
    "retry_backoff_max_ms",
    "retry_deadline_secs",
    "connect_timeout_secs",
    "read_timeout_secs",
    "checkpoint_mib",
    "arch",
    "maintenance_window",
    "health_check_timeout_secs",
    "health_failure_action",
    "update_window",
    "activation_delay_max_secs",
    "fleet",
    "health_units",
    "delta",
];

/// Keys without a default.
const REQUIRED: &[&str] = &["metadata_base_url", "targets_base_url", "seed"];

/// The file as written on disk (typed, before validation). `deny_unknown_fields` backs up the
/// key check, so this struct and [`KNOWN_KEYS`] cannot drift apart unnoticed (a test sets every
/// known key).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    metadata_base_url: String,
    targets_base_url: String,
    seed: u32,
    #[serde(default = "latest")]
    version_lock: String,
    #[serde(default)]
    ignore_waves: bool,
    #[serde(default)]
    https_proxy: Option<String>,
    #[serde(default)]
    no_proxy: Option<Vec<String>>,
    // --- ours ---
    #[serde(default)]
    reboot_command: Option<Vec<String>>,
    #[serde(default)]
    retries: Option<u32>,
    #[serde(default)]
    retry_backoff_ms: Option<u64>,
    #[serde(default)]
    retry_backoff_max_ms: Option<u64>,
    #[serde(default)]
    retry_deadline_secs: Option<u64>,
    #[serde(default)]
    connect_timeout_secs: Option<u64>,
    #[serde(default)]
    read_timeout_secs: Option<u64>,
    #[serde(default)]
    checkpoint_mib: Option<u64>,
    #[serde(default)]
    arch: Option<String>,
    #[serde(default)]
    maintenance_window: Option<toml::Value>,
    #[serde(default)]
    health_check_timeout_secs: Option<u64>,
    #[serde(default)]
    health_failure_action: Option<String>,
    #[serde(default)]
    update_window: Option<RawWindow>,
    #[serde(default)]
    activation_delay_max_secs: Option<u64>,
    #[serde(default)]
    fleet: Option<RawFleet>,
    #[serde(default)]
    health_units: Option<Vec<String>>,
    #[serde(default)]
    delta: Option<bool>,
}

/// `[fleet]`: reboot coordination on etcd.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFleet {
    endpoints: Vec<String>,
    #[serde(default)]
    group: Option<String>,
    #[serde(default)]
    host: Option<String>,
    #[serde(default)]
    slot_ttl_secs: Option<u64>,
    #[serde(default)]
    acquire_deadline_secs: Option<u64>,
    #[serde(default)]
    poll_ms: Option<u64>,
}

/// `[fleet]`: `updog update` takes a reboot slot of its group on these etcd endpoints before it
/// activates and reboots, and `updog health-check` releases it (or halts the release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetSettings {
    /// etcd client URLs (`http://` or `https://`).
    pub endpoints: Vec<Url>,
    /// The host's group (default `default`).
    pub group: String,
    /// The host's name in the fleet (default: `/etc/hostname`).
    pub host: Option<String>,
    /// Lease time to live of a slot; must cover a reboot and the health checks (default 900 s).
    pub slot_ttl: Duration,
    /// How long `update` waits for a slot before it gives up, staged (default 3600 s).
    pub acquire_deadline: Duration,
    /// Pause between two looks while the slots are full (default 5000 ms).
    pub poll: Duration,
}

/// `update_window = { days = [...], start = "HH:MM", end = "HH:MM", time_zone = "Area/City" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWindow {
    days: Vec<String>,
    start: String,
    end: String,
    #[serde(default)]
    time_zone: Option<String>,
}

/// The maintenance window in which `updog update` may activate an update and reboot
/// (`update_window`). Outside it, updog stages only.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateWindow {
    /// The days (in `time_zone`) on which the window opens.
    pub days: Vec<jiff::civil::Weekday>,
    /// Local opening time.
    pub start: jiff::civil::Time,
    /// Local closing time; at or before `start` means the window runs past midnight.
    pub end: jiff::civil::Time,
    /// The IANA time zone name as written (default `UTC`).
    pub time_zone_name: String,
    /// The time zone.
    pub time_zone: jiff::tz::TimeZone,
}

fn latest() -> String {
    "latest".to_owned()
}

/// Network tuning: retries, backoff and timeouts.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    /// Extra attempts after a failed request (0 = try once).
    pub retries: u32,
    /// First backoff delay; doubles after each failure up to `backoff_max`.
    pub backoff: Duration,
    /// Largest backoff delay.
    pub backoff_max: Duration,
    /// `retry_deadline_secs`: the total time one request may take over all its attempts, if set.
    pub retry_deadline: Option<Duration>,
    /// TCP/TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence allowed while reading a response.
    pub read_timeout: Duration,
    /// `https_proxy` from the config, if set and non-empty.
    pub https_proxy: Option<String>,
    /// `no_proxy` entries (used only with `https_proxy`, like Bottlerocket).
    pub no_proxy: Vec<String>,
}

impl Default for NetworkSettings {
    fn default() -> Self {
        Self {
            retries: 4,
            backoff: Duration::from_millis(250),
            backoff_max: Duration::from_secs(8),
            retry_deadline: None,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            https_proxy: None,
            no_proxy: Vec::new(),
        }
    }
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `timestamp.json` and friends live.
    pub metadata_base_url: Url,
    /// Where targets live (`<sha256>.<name>`).
    pub targets_base_url: Url,
    /// This host's wave seed, 0..=2047.
    pub seed: Seed,
    /// `latest` or a pinned version.
    pub version_lock: VersionLock,
    /// Ignore the wave schedule.
    pub ignore_waves: bool,
    /// Command run by `--reboot` (default `shutdown -r now`).
    pub reboot_command: Vec<String>,
    /// Network settings.
    pub network: NetworkSettings,
    /// Persist resume progress after about this many bytes written.
    pub checkpoint_bytes: u64,
    /// Architecture override (else os-release or the compile-time architecture).
    pub arch: Option<Arch>,
    /// `maintenance_window` exactly as written (accepted so existing files keep working; updog
    /// does not enforce windows yet).
    pub maintenance_window: Option<toml::Value>,
    /// `health_check_timeout_secs`: how long each health check may run (default 60 s).
    pub health_check_timeout: Duration,
    /// `health_failure_action`: what a failed health check leads to.
    pub health_failure_action: HealthFailureAction,
    /// `update_window`, if set.
    pub update_window: Option<UpdateWindow>,
    /// `activation_delay_max_secs`: the longest per-host delay after the window opens (the
    /// host's own delay is derived from its seed).
    pub activation_delay_max: Duration,
    /// `[fleet]`, if set (else the host is stand-alone).
    pub fleet: Option<FleetSettings>,
    /// `health_units`: systemd units that must be active (`systemctl is-active`) for a new
    /// boot to be marked successful; checked before the executables in `/etc/updog/health.d`.
    pub health_units: Vec<String>,
    /// `delta` (default true): use a published abos-chunked index of the root image to download
    /// only the blocks the host does not already have (falls back to the full image).
    pub delta: bool,
}

/// What `updog health-check` does when a check fails (`health_failure_action`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealthFailureAction {
    /// `rollback-and-reboot` (default): the previous set boots next, and the reboot command runs.
    #[default]
    RollbackAndReboot,
    /// `rollback`: the previous set boots next; the reboot is left to someone else.
    Rollback,
    /// `report`: record the failure only (the boot is not marked successful, nothing changes).
    Report,
}

impl HealthFailureAction {
    /// The spelling in updog.toml.
    pub fn as_str(self) -> &'static str {
        match self {
            HealthFailureAction::RollbackAndReboot => "rollback-and-reboot",
            HealthFailureAction::Rollback => "rollback",
            HealthFailureAction::Report => "report",
        }
    }
}

fn parse_window(w: RawWindow) -> std::result::Result<UpdateWindow, (String, &'static str)> {
    use jiff::civil::Weekday;
    let mut days = Vec::new();
    for d in &w.days {
        let day = match d.to_ascii_lowercase().as_str() {
            "mon" | "monday" => Weekday::Monday,
            "tue" | "tuesday" => Weekday::Tuesday,
            "wed" | "wednesday" => Weekday::Wednesday,
            "thu" | "thursday" => Weekday::Thursday,
            "fri" | "friday" => Weekday::Friday,
            "sat" | "saturday" => Weekday::Saturday,
            "sun" | "sunday" => Weekday::Sunday,
            _ => {
                return Err((
                    format!("{{ days = [.., {d:?}, ..] }}"),
                    "days spelt mon, tue, wed, thu, fri, sat, sun (or in full)",
                ));
            }
        };
        if !days.contains(&day) {
            days.push(day);
        }
    }
    if days.is_empty() {
        return Err(("{ days = [] }".to_owned(), "at least one day of the week"));
    }
    let time =
        |key: &str, t: &str| -> std::result::Result<jiff::civil::Time, (String, &'static str)> {
            let bad = || {
                (
                    format!("{{ {key} = {t:?} }}"),
                    "a local time \"HH:MM\" (24-hour)",
                )
            };
            let (h, m) = t.split_once(':').ok_or_else(bad)?;
            if h.len() != 2 || m.len() != 2 {
                return Err(bad());
            }
            let h: i8 = h.parse().map_err(|_| bad())?;
            let m: i8 = m.parse().map_err(|_| bad())?;
            jiff::civil::Time::new(h, m, 0, 0).map_err(|_| bad())
        };
    let start = time("start", &w.start)?;
    let end = time("end", &w.end)?;
    let time_zone_name = w.time_zone.unwrap_or_else(|| "UTC".to_owned());
    let time_zone = jiff::tz::TimeZone::get(&time_zone_name).map_err(|_| {
        (
            format!("{{ time_zone = {time_zone_name:?} }}"),
            "an IANA time zone known to this system (e.g. \"Europe/Berlin\", \"UTC\")",
        )
    })?;
    Ok(UpdateWindow {
        days,
        start,
        end,
        time_zone_name,
        time_zone,
    })
}

/// A systemd unit name `systemctl is-active` can be asked about: `name.type` with a unit type
/// systemd knows, made of the characters systemd allows (ASCII letters, digits, `:-_.\@`;
/// `-.mount`, the root mount, is valid;
/// updog passes names after `--`, so none is taken for an option).
fn is_unit_name(unit: &str) -> bool {
    const TYPES: &[&str] = &[
        "service",
        "socket",
        "device",
        "mount",
        "automount",
        "swap",
        "target",
        "path",
        "timer",
        "slice",
        "scope",
    ];
    let Some((name, kind)) = unit.rsplit_once('.') else {
        return false;
    };
    !name.is_empty()
        && unit.len() <= 255
        && TYPES.contains(&kind)
        && unit
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":-_.\\@".contains(&b))
}

/// Default time each health check may take.
pub const DEFAULT_HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Default distance between durable resume checkpoints.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 32 << 20;

/// 1-based line and column of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text.as_bytes()[..offset.min(text.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    (line, before.len() - start + 1)
}

/// Where each top-level key and its value are, in file order.
struct Layout<'a> {
    text: &'a str,
    /// (key, key span start, value span)
    keys: Vec<(String, usize, std::ops::Range<usize>)>,
}

impl Layout<'_> {
    fn key_line(&self, key: &str) -> usize {
        self.keys
            .iter()
            .find(|(k, _, _)| k == key)
            .map_or(1, |(_, at, _)| line_col(self.text, *at).0)
    }

    /// The key whose value holds byte `at`, and the line of `at`.
    fn locate(&self, at: usize) -> (Option<&str>, usize) {
        let key = self
            .keys
            .iter()
            .find(|(_, k, v)| (*k..v.end.max(*k + 1)).contains(&at))
            .map(|(k, _, _)| k.as_str());
        (key, line_col(self.text, at).0)
    }
}

impl Config {
    /// Parses the text of an `updog.toml`; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config> {
        let path = origin;
        // 1. Syntax, and where every top-level key is.
        let spans: BTreeMap<Spanned<String>, Spanned<IgnoredAny>> =
            toml::from_str(text).map_err(|e| {
                let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
                Error::Syntax {
                    path: path.to_owned(),
                    line,
                    column,
                    message: e.message().trim().to_owned(),
                }
            })?;
        let mut keys: Vec<(String, usize, std::ops::Range<usize>)> = spans
            .into_iter()
            .map(|(k, v)| (k.get_ref().clone(), k.span().start, v.span()))
            .collect();
        keys.sort_by_key(|(_, at, _)| *at);
        let layout = Layout { text, keys };

        // 2. Unknown keys, first one in the file first.
        if let Some((key, at, _)) = layout
            .keys
            .iter()
            .find(|(k, _, _)| !KNOWN_KEYS.contains(&k.as_str()))
        {
            return error::UnknownKeySnafu {
                path,
                line: line_col(text, *at).0,
                key: key.clone(),
                suggestion: suggest::nearest(key, KNOWN_KEYS),
            }
            .fail();
        }

        // 3. Required keys.
        for key in REQUIRED {
            if !layout.keys.iter().any(|(k, _, _)| k == key) {
                return error::MissingKeySnafu { path, key: *key }.fail();
            }
        }

        // 4. Types.
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let (key, line) = layout.locate(e.span().map_or(0, |s| s.start));
            Error::Type {
                path: path.to_owned(),
                line,
                key: key.unwrap_or("?").to_owned(),
                message: e.message().trim().to_owned(),
            }
        })?;

        // 5. Values.
        let value_error = |key: &'static str, value: String, expected: &'static str| Error::Value {
            path: path.to_owned(),
            line: layout.key_line(key),
            key,
            value,
            expected,
        };
        let url = |key: &'static str, value: &str| -> Result<Url> {
            let line = layout.key_line(key);
            let mut url = Url::parse(value).context(error::UrlSnafu {
                path,
                line,
                key,
                value,
            })?;
            match url.scheme() {
                "https" | "http" | "file" => {}
                other => {
                    return error::UrlSchemeSnafu {
                        path,
                        line,
                        key,
                        value,
                        scheme: other,
                    }
                    .fail();
                }
            }
            // Base URLs are directories: make `join` append instead of replacing the last segment.
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            Ok(url)
        };
        let metadata_base_url = url("metadata_base_url", &raw.metadata_base_url)?;
        let targets_base_url = url("targets_base_url", &raw.targets_base_url)?;
        let seed = Seed::new(raw.seed)
            .map_err(|_| value_error("seed", raw.seed.to_string(), "an integer 0..=2047"))?;
        let version_lock: VersionLock = raw.version_lock.parse().map_err(|_| {
            value_error(
                "version_lock",
                format!("{:?}", raw.version_lock),
                "\"latest\" or a version like \"1.2.3\" or \"v1.2.3\"",
            )
        })?;
        let arch =
            match &raw.arch {
                None => None,
                Some(a) => Some(a.parse().map_err(|_| {
                    value_error("arch", format!("{a:?}"), "\"x86_64\" or \"aarch64\"")
                })?),
            };
        let reboot_command = raw
            .reboot_command
            .unwrap_or_else(|| vec!["shutdown".into(), "-r".into(), "now".into()]);
        if reboot_command.is_empty() {
            return Err(value_error(
                "reboot_command",
                "[]".into(),
                "a non-empty array of strings",
            ));
        }
        let retry_deadline = match raw.retry_deadline_secs {
            None => None,
            Some(0) => {
                return Err(value_error(
                    "retry_deadline_secs",
                    "0".into(),
                    "a whole number of seconds greater than 0",
                ));
            }
            Some(n) => Some(Duration::from_secs(n)),
        };
        let health_check_timeout = match raw.health_check_timeout_secs {
            None => DEFAULT_HEALTH_CHECK_TIMEOUT,
            Some(0) => {
                return Err(value_error(
                    "health_check_timeout_secs",
                    "0".into(),
                    "a whole number of seconds greater than 0",
                ));
            }
            Some(n) => Duration::from_secs(n),
        };
        let health_failure_action = match raw.health_failure_action.as_deref() {
            None | Some("rollback-and-reboot") => HealthFailureAction::RollbackAndReboot,
            Some("rollback") => HealthFailureAction::Rollback,
            Some("report") => HealthFailureAction::Report,
            Some(other) => {
                return Err(value_error(
                    "health_failure_action",
                    format!("{other:?}"),
                    "\"rollback-and-reboot\", \"rollback\" or \"report\"",
                ));
            }
        };
        let update_window = match raw.update_window {
            None => None,
            Some(w) => Some(
                parse_window(w)
                    .map_err(|(value, expected)| value_error("update_window", value, expected))?,
            ),
        };
        let activation_delay_max = match raw.activation_delay_max_secs {
            None => Duration::ZERO,
            Some(_) if update_window.is_none() => {
                return Err(value_error(
                    "activation_delay_max_secs",
                    raw.activation_delay_max_secs
                        .unwrap_or_default()
                        .to_string(),
                    "to be set together with `update_window` (the delay counts from its opening)",
                ));
            }
            Some(n) => Duration::from_secs(n),
        };
        let fleet = match raw.fleet {
            None => None,
            Some(f) => {
                let mut endpoints = Vec::new();
                for e in &f.endpoints {
                    let url = Url::parse(e)
                        .ok()
                        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
                    let Some(url) = url else {
                        return Err(value_error(
                            "fleet",
                            format!("{{ endpoints = [.., {e:?}, ..] }}"),
                            "etcd client URLs such as \"http://10.0.0.1:2379\"",
                        ));
                    };
                    endpoints.push(url);
                }
                if endpoints.is_empty() {
                    return Err(value_error(
                        "fleet",
                        "{ endpoints = [] }".to_owned(),
                        "at least one etcd endpoint",
                    ));
                }
                let secs = |v: Option<u64>, default: u64, what: &'static str| match v {
                    Some(0) => Err(value_error(
                        "fleet",
                        format!("{{ {what} = 0 }}"),
                        "a value greater than 0",
                    )),
                    v => Ok(v.unwrap_or(default)),
                };
                Some(FleetSettings {
                    endpoints,
                    group: f.group.unwrap_or_else(|| "default".to_owned()),
                    host: f.host,
                    slot_ttl: Duration::from_secs(secs(f.slot_ttl_secs, 900, "slot_ttl_secs")?),
                    acquire_deadline: Duration::from_secs(secs(
                        f.acquire_deadline_secs,
                        3600,
                        "acquire_deadline_secs",
                    )?),
                    poll: Duration::from_millis(secs(f.poll_ms, 5000, "poll_ms")?),
                })
            }
        };
        let mut health_units = Vec::new();
        for unit in raw.health_units.unwrap_or_default() {
            if !is_unit_name(&unit) {
                return Err(value_error(
                    "health_units",
                    format!("[.., {unit:?}, ..]"),
                    "systemd unit names such as \"kubelet.service\" (name.type, no path or spaces)",
                ));
            }
            health_units.push(unit);
        }
        let defaults = NetworkSettings::default();
        let https_proxy = raw.https_proxy.filter(|p| !p.trim().is_empty());
        Ok(Config {
            metadata_base_url,
            targets_base_url,
            seed,
            version_lock,
            ignore_waves: raw.ignore_waves,
            reboot_command,
            network: NetworkSettings {
                retries: raw.retries.unwrap_or(defaults.retries),
                backoff: raw
                    .retry_backoff_ms
                    .map_or(defaults.backoff, Duration::from_millis),
                backoff_max: raw
                    .retry_backoff_max_ms
                    .map_or(defaults.backoff_max, Duration::from_millis),
                retry_deadline,
                connect_timeout: raw
                    .connect_timeout_secs
                    .map_or(defaults.connect_timeout, Duration::from_secs),
                read_timeout: raw
                    .read_timeout_secs
                    .map_or(defaults.read_timeout, Duration::from_secs),
                no_proxy: if https_proxy.is_some() {
                    raw.no_proxy.unwrap_or_default()
                } else {
                    Vec::new()
                },
                https_proxy,
            },
            checkpoint_bytes: raw
                .checkpoint_mib
                .map_or(DEFAULT_CHECKPOINT_BYTES, |m| m.max(1) << 20),
            arch,
            maintenance_window: raw.maintenance_window,
            health_check_timeout,
            health_failure_action,
            update_window,
            activation_delay_max,
            fleet,
            health_units,
            delta: raw.delta.unwrap_or(true),
        })
    }

    /// Parses the bytes of an `updog.toml` (refusing anything that is not UTF-8, as updog does);
    /// `origin` names the file in errors.
    pub fn from_slice(bytes: &[u8], origin: &Path) -> Result<Config> {
        let text = std::str::from_utf8(bytes).map_err(|e| Error::NotUtf8 {
            path: origin.to_owned(),
            line: bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count()
                + 1,
        })?;
        Self::from_toml(text, origin)
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let bytes = std::fs::read(path).context(error::ReadSnafu { path })?;
        Self::from_slice(&bytes, path)
    }
}

#[cfg(test)]
mod test;
