//! `/etc/updog.toml` and the host's file layout.
//!
//! The file's schema and its strict parser live in the `updog-config` crate (shared with
//! os-image, which refuses to bake a file updog could not use); they are re-exported here so
//! `updog::config::Config` keeps working.

use std::path::PathBuf;

pub use updog_config::{
    Config, DEFAULT_CHECKPOINT_BYTES, Error as ConfigError, HealthFailureAction, KNOWN_KEYS,
    NetworkSettings,
};

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
    /// Health checks run by `updog health-check` (`/etc/updog/health.d`).
    pub fn health_dir(&self) -> PathBuf {
        self.join("etc/updog/health.d")
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
    use std::path::Path;

    const EXAMPLE: &str = r#"
metadata_base_url = "https://updates.bottlerocket.aws/2020-07-07/aws-k8s-1.28/x86_64"
targets_base_url = "https://updates.bottlerocket.aws/targets/"
seed = 492
version_lock = "latest"
ignore_waves = true
no_proxy = ["testing"]
"#;

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
    fn config_errors_are_usage_errors() {
        let text = format!("{EXAMPLE}seeed = 5\n");
        let e: crate::Error = Config::from_toml(&text, Path::new("/etc/updog.toml"))
            .unwrap_err()
            .into();
        assert_eq!(e.exit_code(), crate::ExitStatus::Usage);
        assert_eq!(
            e.to_string(),
            "/etc/updog.toml:8: unknown key `seeed`; did you mean `seed`?"
        );
    }
}
