//! `check-repo-expirations`: each top-level role's expiry against a window.
//!
//! The repository is loaded with expiry enforcement off (an expired repository must still be
//! reportable), but every signature is verified as usual.

use crate::error::Result;
use crate::repo::{self, Expiry, LoadOptions, RepoSource};
use jiff::{SignedDuration, Timestamp};

/// State of one role's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExpiryState {
    /// Valid past the window.
    Ok,
    /// Still valid now, but expires inside the window.
    ExpiresWithin,
    /// Already expired.
    Expired,
}

/// One role's row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RoleExpiry {
    /// Role name.
    pub role: String,
    /// Metadata version.
    pub version: u64,
    /// Expiry time.
    pub expires: Timestamp,
    /// State against now and the window.
    pub state: ExpiryState,
}

/// The report.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExpirationReport {
    /// Metadata URL.
    pub metadata_url: String,
    /// The "now" used.
    pub now: Timestamp,
    /// End of the window (now + within).
    pub window_end: Timestamp,
    /// Root, timestamp, snapshot, targets.
    pub roles: Vec<RoleExpiry>,
}

impl ExpirationReport {
    /// True if any role is expired or expires within the window.
    pub fn attention_needed(&self) -> bool {
        self.roles.iter().any(|r| r.state != ExpiryState::Ok)
    }
}

/// Classifies an expiry against now and the window end.
pub fn classify(expires: Timestamp, now: Timestamp, window_end: Timestamp) -> ExpiryState {
    if expires <= now {
        ExpiryState::Expired
    } else if expires <= window_end {
        ExpiryState::ExpiresWithin
    } else {
        ExpiryState::Ok
    }
}

/// Loads the repository and reports each role's expiry.
pub async fn check(
    root: &[u8],
    source: &RepoSource,
    within: SignedDuration,
    now: Timestamp,
    datastore: Option<std::path::PathBuf>,
) -> Result<ExpirationReport> {
    let opts = LoadOptions {
        expiry: Expiry::Unsafe,
        datastore,
        ..Default::default()
    };
    let repo = repo::load_existing(root, source, &opts).await?;
    let window_end = now.checked_add(within).unwrap_or(Timestamp::MAX);
    let row = |role: &str, version: u64, expires: Timestamp| RoleExpiry {
        role: role.to_string(),
        version,
        expires,
        state: classify(expires, now, window_end),
    };
    let roles = vec![
        row(
            "root",
            repo.root().signed.version.get(),
            repo.root().signed.expires,
        ),
        row(
            "timestamp",
            repo.timestamp().signed.version.get(),
            repo.timestamp().signed.expires,
        ),
        row(
            "snapshot",
            repo.snapshot().signed.version.get(),
            repo.snapshot().signed.expires,
        ),
        row(
            "targets",
            repo.targets().signed.version.get(),
            repo.targets().signed.expires,
        ),
    ];
    Ok(ExpirationReport {
        metadata_url: source.metadata_url.to_string(),
        now,
        window_end,
        roles,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn classification_table() {
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let end: Timestamp = "2026-01-13T00:00:00Z".parse().unwrap();
        for (exp, want) in [
            ("2026-01-09T00:00:00Z", ExpiryState::Expired),
            ("2026-01-10T00:00:00Z", ExpiryState::Expired),
            ("2026-01-10T00:00:01Z", ExpiryState::ExpiresWithin),
            ("2026-01-13T00:00:00Z", ExpiryState::ExpiresWithin),
            ("2026-01-13T00:00:01Z", ExpiryState::Ok),
        ] {
            assert_eq!(classify(exp.parse().unwrap(), now, end), want, "{exp}");
        }
    }
}
