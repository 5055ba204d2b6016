//! Timestamps in manifests and policies: strict output, lenient input.
//!
//! Bottlerocket parses manifest times with chrono, which accepts months and days without a
//! leading zero (`2019-8-06T15:00:00Z`, used by its own test data). We accept that too, and
//! always write canonical RFC3339 UTC (`YYYY-MM-DDTHH:MM:SSZ`, with a fraction only if the time
//! has one).

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::Offset;

use crate::error::{self, Result};

/// Parses an RFC3339 timestamp, also accepting one-digit month, day, hour, minute and second
/// fields (as chrono does).
pub fn parse_timestamp(input: &str) -> Result<Timestamp> {
    if let Ok(ts) = input.parse::<Timestamp>() {
        return Ok(ts);
    }
    lenient(input).ok_or_else(|| error::BadTimestampSnafu { input }.build())
}

/// Writes a timestamp as canonical RFC3339 UTC.
pub fn format_timestamp(ts: Timestamp) -> String {
    ts.to_string()
}

fn number(s: &str, min_len: usize, max_len: usize) -> Option<i64> {
    if s.len() < min_len || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn lenient(input: &str) -> Option<Timestamp> {
    let split = input.find(['T', 't', ' '])?;
    let (date, rest) = (&input[..split], &input[split + 1..]);
    let mut d = date.split('-');
    let year = number(d.next()?, 4, 4)?;
    let month = number(d.next()?, 1, 2)?;
    let day = number(d.next()?, 1, 2)?;
    if d.next().is_some() {
        return None;
    }
    // Offset: "Z"/"z" or "+HH:MM"/"-HH:MM" at the end.
    let (time, offset_secs) = if let Some(t) = rest.strip_suffix(['Z', 'z']) {
        (t, 0i32)
    } else {
        let pos = rest.rfind(['+', '-'])?;
        let (t, off) = (&rest[..pos], &rest[pos..]);
        let sign = if off.starts_with('-') { -1 } else { 1 };
        let (h, m) = off[1..].split_once(':')?;
        let h = number(h, 2, 2)?;
        let m = number(m, 2, 2)?;
        if h > 23 || m > 59 {
            return None;
        }
        (t, sign * (h * 3600 + m * 60) as i32)
    };
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut t = hms.split(':');
    let hour = number(t.next()?, 1, 2)?;
    let minute = number(t.next()?, 1, 2)?;
    let second = number(t.next()?, 1, 2)?;
    if t.next().is_some() {
        return None;
    }
    let nanos = match frac {
        None => 0,
        Some(f) => {
            let digits = number(f, 1, 9)?;
            digits * 10i64.pow(9 - f.len() as u32)
        }
    };
    let dt = DateTime::new(
        i16::try_from(year).ok()?,
        i8::try_from(month).ok()?,
        i8::try_from(day).ok()?,
        i8::try_from(hour).ok()?,
        i8::try_from(minute).ok()?,
        i8::try_from(second).ok()?,
        i32::try_from(nanos).ok()?,
    )
    .ok()?;
    let offset = Offset::from_seconds(offset_secs).ok()?;
    offset.to_timestamp(dt).ok()
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("2019-10-06T15:00:00Z", Some("2019-10-06T15:00:00Z")),
            ("2019-8-06T15:00:00Z", Some("2019-08-06T15:00:00Z")),
            ("2019-8-31T15:00:00Z", Some("2019-08-31T15:00:00Z")),
            ("2019-08-6T15:00:00Z", Some("2019-08-06T15:00:00Z")),
            ("2019-8-6t5:0:0z", Some("2019-08-06T05:00:00Z")),
            ("2019-08-06T15:00:00+02:00", Some("2019-08-06T13:00:00Z")),
            ("2019-8-06T15:00:00-01:30", Some("2019-08-06T16:30:00Z")),
            ("2019-8-06T15:00:00.5Z", Some("2019-08-06T15:00:00.5Z")),
            ("2019-8-06 15:00:00Z", Some("2019-08-06T15:00:00Z")),
            ("2019-8-06T15:00:00", None),
            ("2019-13-06T15:00:00Z", None),
            ("2019-2-30T15:00:00Z", None),
            ("19-8-06T15:00:00Z", None),
            ("2019-8-06T15:00Z", None),
            ("2019-8-06T15:00:00+2:00", None),
            ("2019-8-06T25:00:00Z", None),
            ("tomorrow", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = parse_timestamp(input).ok().map(format_timestamp);
            assert_eq!(got.as_deref(), want, "{input}");
        }
    }

    #[test]
    fn error_names_value() {
        let err = parse_timestamp("2019-x").unwrap_err().to_string();
        assert!(err.contains("\"2019-x\""), "{err}");
    }
}
