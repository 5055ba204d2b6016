//! Expiry times: RFC 3339 or "in N units", always whole seconds.
//!
//! Fractional seconds in `expires` make other TUF clients (python-tuf) refuse the metadata, so
//! every time this crate writes is truncated to the second.

use crate::error::{self, Result};
use jiff::Timestamp;
use snafu::{OptionExt, ensure};

/// Truncates a timestamp to whole seconds.
pub fn whole_seconds(t: Timestamp) -> Timestamp {
    // `from_second(as_second())` cannot fail for a value that came from a valid timestamp.
    Timestamp::from_second(t.as_second()).unwrap_or(t)
}

/// Parses `RFC3339` or `[in] N second(s)|minute(s)|hour(s)|day(s)|week(s)` relative to `now`
/// (the workspace's one duration grammar, [`waves::parse_offset`]; negative counts are refused),
/// and truncates the result to whole seconds.
pub fn parse_time(text: &str, now: Timestamp) -> Result<Timestamp> {
    let parsed = waves::parse_offset(text.trim())
        .ok()
        .context(error::TimeParseSnafu { text })?;
    if let waves::StartAfter::Offset(d) = parsed {
        ensure!(!d.is_negative(), error::TimeParseSnafu { text });
    }
    let t = parsed
        .resolve(now)
        .context(error::TimeParseSnafu { text })?;
    Ok(whole_seconds(t))
}

/// A timestamp that must already be whole seconds.
pub(crate) fn ensure_whole_seconds(t: Timestamp, what: &str) -> Result<()> {
    ensure!(
        t.subsec_nanosecond() == 0,
        error::FractionalExpirySnafu {
            what: what.to_owned(),
            expires: t
        }
    );
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn now() -> Timestamp {
        "2030-01-01T00:00:00.750Z".parse().unwrap()
    }

    #[test]
    fn relative_units_are_whole_seconds() {
        let t = parse_time("in 7 days", now()).unwrap();
        assert_eq!(t.to_string(), "2030-01-08T00:00:00Z");
        assert_eq!(t.subsec_nanosecond(), 0);
        assert_eq!(
            parse_time("2 weeks", now()).unwrap().to_string(),
            "2030-01-15T00:00:00Z"
        );
        assert_eq!(
            parse_time("in 1 hour", now()).unwrap().to_string(),
            "2030-01-01T01:00:00Z"
        );
        assert_eq!(
            parse_time("in 90 minutes", now()).unwrap().to_string(),
            "2030-01-01T01:30:00Z"
        );
        // The same grammar as pubsys and wave policies: seconds, "In", surrounding spaces.
        assert_eq!(
            parse_time(" In 30 seconds ", now()).unwrap().to_string(),
            "2030-01-01T00:00:30Z"
        );
        for text in ["in 7 days", "2 weeks", "in 90 minutes", "in 30 seconds"] {
            let via_waves = waves::parse_offset(text).unwrap().resolve(now()).unwrap();
            assert_eq!(
                parse_time(text, now()).unwrap(),
                whole_seconds(via_waves),
                "{text}"
            );
        }
    }

    #[test]
    fn rfc3339_is_truncated() {
        let t = parse_time("2031-05-06T07:08:09.999Z", now()).unwrap();
        assert_eq!(t.to_string(), "2031-05-06T07:08:09Z");
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "in",
            "in x days",
            "in 3 fortnights",
            "tomorrow",
            "in -1 days",
        ] {
            let err = parse_time(bad, now()).unwrap_err();
            assert!(err.to_string().contains("time"), "{bad}: {err}");
        }
    }
}
