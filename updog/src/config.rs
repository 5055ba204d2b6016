//! `/etc/updog.toml`: Bottlerocket's keys plus a few optional tuning keys of ours.
//!
//! Bottlerocket keys (same names, same meaning): `metadata_base_url`, `targets_base_url`, `seed`,
//! `version_lock`, `ignore_waves`, `https_proxy`, `no_proxy`. Ours, all optional: `reboot_command`,
//! `retries`, `retry_backoff_ms`, `retry_backoff_max_ms`, `connect_timeout_secs`,
//! `read_timeout_secs`, `checkpoint_mib`, `arch`.

use crate::error::{self, Result};
use serde::Deserialize;
use snafu::{OptionExt, ResultExt};
use std::path::{Path, PathBuf};
use std::time::Duration;
use update_metadata::{Arch, VersionLock};
use url::Url;
use waves::Seed;

/// The file as written on disk (raw, before validation).
#[derive(Debug, Deserialize)]
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
    connect_timeout_secs: Option<u64>,
    #[serde(default)]
    read_timeout_secs: Option<u64>,
    #[serde(default)]
    checkpoint_mib: Option<u64>,
    #[serde(default)]
    arch: Option<String>,
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
}

/// Default distance between durable resume checkpoints.
pub const DEFAULT_CHECKPOINT_BYTES: u64 = 32 << 20;

impl Config {
    /// Parses the text of an `updog.toml`; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config> {
        let raw: RawConfig =
            toml::from_str(text).context(error::ConfigParseSnafu { path: origin })?;
        let url = |field: &'static str, value: &str| -> Result<Url> {
            let mut url = Url::parse(value).context(error::ConfigUrlSnafu {
                path: origin,
                field,
                value,
            })?;
            // Base URLs are directories: make `join` append instead of replacing the last segment.
            if !url.path().ends_with('/') {
                url.set_path(&format!("{}/", url.path()));
            }
            Ok(url)
        };
        let seed = Seed::new(raw.seed).ok().context(error::ConfigValueSnafu {
            path: origin,
            field: "seed",
            value: raw.seed.to_string(),
            expected: "an integer 0..=2047",
        })?;
        let version_lock: VersionLock =
            raw.version_lock
                .parse()
                .ok()
                .context(error::ConfigValueSnafu {
                    path: origin,
                    field: "version_lock",
                    value: raw.version_lock.clone(),
                    expected: "\"latest\" or a version like \"1.2.3\" or \"v1.2.3\"",
                })?;
        let arch = match raw.arch {
            None => None,
            Some(a) => Some(a.parse().ok().context(error::ConfigValueSnafu {
                path: origin,
                field: "arch",
                value: a.clone(),
                expected: "x86_64 or aarch64",
            })?),
        };
        let defaults = NetworkSettings::default();
        let https_proxy = raw.https_proxy.filter(|p| !p.trim().is_empty());
        let reboot_command = raw
            .reboot_command
            .unwrap_or_else(|| vec!["shutdown".into(), "-r".into(), "now".into()]);
        if reboot_command.is_empty() {
            return error::ConfigValueSnafu {
                path: origin,
                field: "reboot_command",
                value: "[]",
                expected: "a non-empty array of strings",
            }
            .fail();
        }
        Ok(Config {
            metadata_base_url: url("metadata_base_url", &raw.metadata_base_url)?,
            targets_base_url: url("targets_base_url", &raw.targets_base_url)?,
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
        })
    }

    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path).context(error::ConfigReadSnafu { path })?;
        Self::from_toml(&text, path)
    }
}

/// Where a host keeps updog's files, all below one root directory (`/` on a real host).
#[derive(Debug, Clone)]
pub struct HostPaths {
    /// The host root (`--host-root`).
    pub root: PathBuf,
}

impl HostPaths {
    /// Paths below `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn join(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// `/etc/updog.toml`.
    pub fn config(&self) -> PathBuf {
        self.join("etc/updog.toml")
    }
    /// `/etc/os-release`.
    pub fn os_release(&self) -> PathBuf {
        self.join("etc/os-release")
    }
    /// `/usr/share/updog/root.json` (the trusted root shipped in the OS image).
    pub fn trusted_root(&self) -> PathBuf {
        self.join("usr/share/updog/root.json")
    }
    /// `/var/lib/updog` (persistent state).
    pub fn state_dir(&self) -> PathBuf {
        self.join("var/lib/updog")
    }
    /// TUF datastore (trusted metadata kept across runs).
    pub fn datastore(&self) -> PathBuf {
        self.state_dir().join("tuf")
    }
    /// Verified, version- or hash-named metadata files kept to skip re-downloads.
    pub fn metadata_cache(&self) -> PathBuf {
        self.state_dir().join("metadata-cache")
    }
    /// Resume records of an unfinished image write.
    pub fn resume_dir(&self) -> PathBuf {
        self.state_dir().join("resume")
    }
    /// The update lock file.
    pub fn lock_file(&self) -> PathBuf {
        self.state_dir().join("lock")
    }
    /// Migration targets cache (`/var/lib/bottlerocket-migrations`).
    pub fn migrations_dir(&self) -> PathBuf {
        self.join("var/lib/bottlerocket-migrations")
    }
    /// Metadata cache for the migrator (`/var/cache/bottlerocket-metadata`).
    pub fn migrations_metadata_dir(&self) -> PathBuf {
        self.join("var/cache/bottlerocket-metadata")
    }
    /// `/sys` (for disk discovery).
    pub fn sysfs(&self) -> PathBuf {
        self.join("sys")
    }
    /// `/dev` (for disk discovery).
    pub fn dev(&self) -> PathBuf {
        self.join("dev")
    }
}

#[cfg(test)]
mod test {
    use super::*;

    const EXAMPLE: &str = r#"
metadata_base_url = "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64"
targets_base_url = "https://updates.bottlerocket.aws/targets/"
seed = 492
version_lock = "latest"
ignore_waves = true
no_proxy = ["testing"]
"#;

    #[test]
    fn bottlerocket_example_parses() {
        let c = Config::from_toml(EXAMPLE, Path::new("updog.toml")).unwrap();
        assert_eq!(c.seed.get(), 492);
        assert!(c.ignore_waves);
        assert_eq!(
            c.metadata_base_url.as_str(),
            "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64/"
        );
        // no_proxy is ignored without https_proxy, like Bottlerocket.
        assert!(c.network.no_proxy.is_empty());
        assert_eq!(c.reboot_command, ["shutdown", "-r", "now"]);
    }

    #[test]
    fn proxy_and_lock() {
        let text = format!("{EXAMPLE}\nhttps_proxy = \"proxy:3128\"\n")
            .replace("version_lock = \"latest\"", "version_lock = \"v1.2.3\"");
        let c = Config::from_toml(&text, Path::new("u.toml")).unwrap();
        assert_eq!(c.network.https_proxy.as_deref(), Some("proxy:3128"));
        assert_eq!(c.network.no_proxy, ["testing"]);
        assert!(matches!(c.version_lock, VersionLock::Locked(ref v) if v.to_string() == "1.2.3"));
    }

    #[test]
    fn proxy_settings_build_a_client() {
        let text = format!("{EXAMPLE}\nhttps_proxy = \"http://proxy.example:3128\"\n");
        let c = Config::from_toml(&text, Path::new("u.toml")).unwrap();
        let params = crate::transport::QueryParams::default();
        crate::transport::HttpClient::new(
            c.network,
            params,
            std::sync::Arc::new(crate::NullReporter),
        )
        .unwrap();
    }

    #[test]
    fn bad_values_name_the_field() {
        let text = EXAMPLE.replace("seed = 492", "seed = 4096");
        let e = Config::from_toml(&text, Path::new("/etc/updog.toml")).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("seed") && msg.contains("4096") && msg.contains("/etc/updog.toml"),
            "{msg}"
        );
        let text = EXAMPLE.replace("\"latest\"", "\"newest\"");
        let msg = Config::from_toml(&text, Path::new("u"))
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("version_lock") && msg.contains("newest"),
            "{msg}"
        );
    }
}
