//! Time arguments and the repository expiration policy (Bottlerocket's format).
//!
//! Durations are written `[in] N unit(s)` with units minutes, hours, days or weeks
//! (Bottlerocket's parser knows hours, days and weeks; we accept a superset). Points in time are
//! RFC3339 or such a duration counted from "now" (always passed in, never read here).
//! Every expiry time produced here is a whole second: fractional seconds break other TUF clients.

use crate::error::{self, Result};
use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use snafu::ResultExt;
use std::path::Path;

/// Parses `[in] N unit(s)` into a duration with the same parser as wave policies
/// (`waves::parse_offset`: minutes, hours, days, weeks); `what` names the setting in errors.
pub fn parse_duration(what: &str, value: &str) -> Result<SignedDuration> {
    match waves::parse_offset(value) {
        Ok(waves::StartAfter::Offset(d)) if !d.is_negative() => Ok(d),
        Ok(_) => Err(error::ParseTimeSnafu {
            what,
            value,
            reason: "expected a duration '[in] N unit(s)', e.g. '2 weeks' or 'in 3 days'",
        }
        .build()),
        Err(e) => Err(error::ParseTimeSnafu {
            what,
            value,
            reason: e.to_string(),
        }
        .build()),
    }
}

/// Parses an RFC3339 time, or `[in] N unit(s)` counted from `now`. The result is whole seconds.
pub fn parse_when(what: &str, value: &str, now: Timestamp) -> Result<Timestamp> {
    let parsed = waves::parse_offset(value).map_err(|e| {
        error::ParseTimeSnafu {
            what,
            value,
            reason: format!(
                "{e}; expected an RFC3339 time (2026-01-31T12:00:00Z) or '[in] N unit(s)'"
            ),
        }
        .build()
    })?;
    parsed.resolve(now).map(whole_seconds).ok_or_else(|| {
        error::ParseTimeSnafu {
            what,
            value,
            reason: "out of range",
        }
        .build()
    })
}

/// Drops sub-second precision (rounds down to the whole second).
pub fn whole_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

/// How long each role's metadata stays valid after it is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpirationPolicy {
    /// Lifetime of snapshot metadata.
    pub snapshot: SignedDuration,
    /// Lifetime of targets metadata.
    pub targets: SignedDuration,
    /// Lifetime of timestamp metadata.
    pub timestamp: SignedDuration,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    snapshot_expiration: String,
    targets_expiration: String,
    timestamp_expiration: String,
}

/// Absolute expiry times for one signing, in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expirations {
    /// Snapshot expiry.
    pub snapshot: Timestamp,
    /// Targets expiry.
    pub targets: Timestamp,
    /// Timestamp expiry.
    pub timestamp: Timestamp,
}

impl Default for ExpirationPolicy {
    /// Bottlerocket's shipped policy `2w-2w-1w.toml`.
    fn default() -> Self {
        ExpirationPolicy {
            snapshot: SignedDuration::from_hours(14 * 24),
            targets: SignedDuration::from_hours(14 * 24),
            timestamp: SignedDuration::from_hours(7 * 24),
        }
    }
}

impl ExpirationPolicy {
    /// Parses a policy file's text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self> {
        let file: PolicyFile =
            toml::from_str(text).context(error::ParseExpirationPolicySnafu { path: origin })?;
        Ok(ExpirationPolicy {
            snapshot: parse_duration("snapshot_expiration", &file.snapshot_expiration)?,
            targets: parse_duration("targets_expiration", &file.targets_expiration)?,
            timestamp: parse_duration("timestamp_expiration", &file.timestamp_expiration)?,
        })
    }

    /// Reads and parses a policy file.
    pub fn from_path(path: &Path) -> Result<Self> {
        let text =
            std::fs::read_to_string(path).context(error::ReadExpirationPolicySnafu { path })?;
        Self::from_toml(&text, path)
    }

    /// Expiry times for metadata signed at `start`.
    pub fn expirations(&self, start: Timestamp) -> Result<Expirations> {
        let at = |role: &str, d: SignedDuration| {
            start
                .checked_add(d)
                .map(whole_seconds)
                .context(error::ExpiryRangeSnafu { role })
        };
        Ok(Expirations {
            snapshot: at("snapshot", self.snapshot)?,
            targets: at("targets", self.targets)?,
            timestamp: at("timestamp", self.timestamp)?,
        })
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn bottlerocket_policy_file_parses() {
        let p = Path::new("2w-2w-1w.toml");
        let text = "snapshot_expiration = '2 weeks'\ntargets_expiration = '2 weeks'\ntimestamp_expiration = '1 week'\n";
        let policy = ExpirationPolicy::from_toml(text, p).unwrap();
        assert_eq!(policy, ExpirationPolicy::default());
    }

    #[test]
    fn unknown_policy_field_is_an_error_naming_the_file() {
        let p = Path::new("bad.toml");
        let text = "snapshot_expiration = '2 weeks'\ntargets_expiration = '2 weeks'\ntimestamp_expiration = '1 week'\nroot_expiration='1 week'\n";
        let err = ExpirationPolicy::from_toml(text, p).unwrap_err();
        assert!(err.to_string().contains("bad.toml"), "{err}");
    }

    #[test]
    fn durations_table() {
        for (text, secs) in [
            ("2 weeks", 1_209_600),
            ("in 3 days", 259_200),
            ("1 hour", 3600),
            ("30 minutes", 1800),
            ("0 minutes", 0),
        ] {
            assert_eq!(parse_duration("x", text).unwrap().as_secs(), secs, "{text}");
        }
        for bad in [
            "",
            "2",
            "two weeks",
            "2 fortnights",
            "in",
            "-1 days",
            "1 2 days",
        ] {
            let err = parse_duration("x", bad).unwrap_err();
            assert!(err.to_string().contains(&format!("'{bad}'")), "{err}");
        }
    }

    #[test]
    fn when_accepts_rfc3339_and_offsets_in_whole_seconds() {
        let now: Timestamp = "2026-01-01T00:00:00.750Z".parse().unwrap();
        assert_eq!(
            parse_when("t", "in 1 hour", now).unwrap().to_string(),
            "2026-01-01T01:00:00Z"
        );
        assert_eq!(
            parse_when("t", "2026-02-03T04:05:06.5Z", now)
                .unwrap()
                .to_string(),
            "2026-02-03T04:05:06Z"
        );
        assert!(parse_when("t", "tomorrow", now).is_err());
    }

    #[test]
    fn expirations_are_whole_seconds() {
        let now: Timestamp = "2026-01-01T00:00:00.123456Z".parse().unwrap();
        let e = ExpirationPolicy::default().expirations(now).unwrap();
        assert_eq!(e.timestamp.to_string(), "2026-01-08T00:00:00Z");
        assert_eq!(e.targets.subsec_nanosecond(), 0);
    }
}
