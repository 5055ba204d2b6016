//! `start_after` values: an offset from the release start, or a fixed time.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use crate::error::{self, Result};
use crate::time::{format_timestamp, parse_timestamp};

/// When a wave opens: an offset from the release start time, or a fixed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAfter {
    /// Relative to the start time given when the policy is applied.
    Offset(SignedDuration),
    /// A fixed time.
    At(Timestamp),
}

impl StartAfter {
    /// The time this wave opens for a release starting at `start`; `None` on overflow.
    pub fn resolve(&self, start: Timestamp) -> Option<Timestamp> {
        match self {
            StartAfter::Offset(d) => start.checked_add(*d).ok(),
            StartAfter::At(t) => Some(*t),
        }
    }
}

impl fmt::Display for StartAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StartAfter::Offset(d) => write!(f, "{}", human_duration(*d)),
            StartAfter::At(t) => f.write_str(&format_timestamp(*t)),
        }
    }
}

impl Serialize for StartAfter {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Renders a duration the way policy files write it (largest whole unit).
pub fn human_duration(d: SignedDuration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs % 60 != 0 {
        return format!("{secs} seconds");
    }
    let mins = secs / 60;
    let (n, unit) = if mins % (7 * 24 * 60) == 0 && mins != 0 {
        (mins / (7 * 24 * 60), "week")
    } else if mins % (24 * 60) == 0 && mins != 0 {
        (mins / (24 * 60), "day")
    } else if mins % 60 == 0 && mins != 0 {
        (mins / 60, "hour")
    } else {
        (mins, "minute")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// Parses the workspace's one duration grammar: `"[in] N second(s)|minute(s)|hour(s)|day(s)|week(s)"`,
/// or an RFC3339 time (wave `start_after`, pubsys expirations and release times, repo-tools
/// expiry times all use it).
///
/// Bottlerocket accepts only hours, days and weeks; we add seconds, minutes (so its `ohno.toml`
/// works) and RFC3339 (as its README promises). Days and weeks are fixed lengths (24 h,
/// 7 × 24 h): times are UTC.
pub fn parse_offset(s: &str) -> Result<StartAfter> {
    let bad = |reason: &str| error::BadOffsetSnafu { input: s, reason }.build();
    let tokens: Vec<&str> = s.split_whitespace().collect();
    match tokens.as_slice() {
        [] => Err(bad("it is empty")),
        [one] => parse_timestamp(one)
            .map(StartAfter::At)
            .map_err(|_| bad("it is not a number with a unit, nor an RFC3339 time")),
        [n, unit] | [_, n, unit] => {
            if tokens.len() == 3 && !tokens[0].eq_ignore_ascii_case("in") {
                return Err(bad("three words must start with \"in\""));
            }
            if !n.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("the count must be a whole non-negative number"));
            }
            let n: u32 = n.parse().map_err(|_| bad("the count is too large"))?;
            let seconds_per: i64 = match unit.to_ascii_lowercase().as_str() {
                "second" | "seconds" => 1,
                "minute" | "minutes" => 60,
                "hour" | "hours" => 60 * 60,
                "day" | "days" => 24 * 60 * 60,
                "week" | "weeks" => 7 * 24 * 60 * 60,
                _ => {
                    return Err(bad(
                        "the unit must be seconds, minutes, hours, days or weeks",
                    ));
                }
            };
            Ok(StartAfter::Offset(SignedDuration::from_secs(
                i64::from(n) * seconds_per,
            )))
        }
        _ => Err(bad("too many words")),
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn mins(m: i64) -> StartAfter {
        StartAfter::Offset(SignedDuration::from_mins(m))
    }

    #[test]
    fn table() {
        let ok = [
            ("1 hour", mins(60)),
            ("4 hours", mins(240)),
            ("in 2 days", mins(2 * 1440)),
            ("In 1 week", mins(7 * 1440)),
            ("3 weeks", mins(21 * 1440)),
            ("30 minutes", mins(30)),
            ("1 minute", mins(1)),
            ("0 hours", mins(0)),
            ("  12   hours ", mins(720)),
            ("180 minutes", mins(180)),
            (
                "in 90 seconds",
                StartAfter::Offset(SignedDuration::from_secs(90)),
            ),
            ("1 second", StartAfter::Offset(SignedDuration::from_secs(1))),
            (
                "2025-08-25T17:00:00Z",
                StartAfter::At("2025-08-25T17:00:00Z".parse().unwrap()),
            ),
        ];
        for (input, want) in ok {
            assert_eq!(parse_offset(input).unwrap(), want, "{input}");
        }
        let bad = [
            ("", "empty"),
            ("hours", "RFC3339"),
            ("1", "RFC3339"),
            ("1 fortnight", "unit"),
            ("-1 hours", "whole"),
            ("1.5 hours", "whole"),
            ("at 1 hour", "\"in\""),
            ("in 1 hour ago", "too many"),
            ("99999999999 hours", "too large"),
            ("2025-08-25", "RFC3339"),
        ];
        for (input, want) in bad {
            let err = parse_offset(input).unwrap_err().to_string();
            assert!(err.contains(want), "{input}: {err}");
            assert!(err.contains(&format!("{input:?}")), "{input}: {err}");
        }
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "1 hour",
            "4 hours",
            "1 day",
            "2 days",
            "1 week",
            "30 minutes",
            "90 minutes",
            "45 seconds",
        ] {
            let parsed = parse_offset(s).unwrap();
            assert_eq!(parsed.to_string(), s);
            assert_eq!(parse_offset(&parsed.to_string()).unwrap(), parsed);
        }
    }
}
