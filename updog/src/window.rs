//! Maintenance-window math (pure: the clock is a parameter).
//!
//! A window opens on each listed day at `start` local time (in its IANA time zone) and closes at
//! `end`; an `end` at or before `start` closes the next day (a window across midnight), and
//! `end == start` is a whole day. Local times are turned into instants with jiff's "compatible"
//! rule: a time skipped by a DST change moves forward by the gap, a repeated time takes its first
//! occurrence, so a window always opens on its day. A host's own opening is delayed by a part of
//! `activation_delay_max_secs` proportional to its seed (0..=2047), which spreads a fleet over
//! the start of the window the way waves spread it over days.

use jiff::{Timestamp, ToSpan, civil::Date};
use std::time::Duration;
use updog_config::UpdateWindow;
use waves::Seed;

/// Whether activation may happen now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Inside the window (after this host's delay) until `closes_at`.
    Open {
        /// When this window closes.
        closes_at: Timestamp,
    },
    /// Outside; this host may next activate at `opens_at`.
    Closed {
        /// When the window next opens for this host (its delay included).
        opens_at: Timestamp,
    },
}

/// This host's delay after a window opens: `max × seed / 2048`, whole seconds.
pub fn host_delay(seed: Seed, max: Duration) -> Duration {
    Duration::from_secs(max.as_secs() * u64::from(seed.get()) / 2048)
}

fn instant(w: &UpdateWindow, date: Date, time: jiff::civil::Time) -> Option<Timestamp> {
    w.time_zone
        .to_ambiguous_zoned(date.to_datetime(time))
        .compatible()
        .ok()
        .map(|z| z.timestamp())
}

/// The window's state at `now` for a host whose delay is `delay`.
pub fn state(w: &UpdateWindow, delay: Duration, now: Timestamp) -> WindowState {
    let today = now.to_zoned(w.time_zone.clone()).date();
    let delay = jiff::SignedDuration::try_from(delay).unwrap_or(jiff::SignedDuration::MAX);
    let mut next_open: Option<Timestamp> = None;
    // Yesterday's window may still be open (across midnight); a week ahead holds every day.
    for offset in -1i64..=8 {
        let Ok(date) = today.checked_add(offset.days()) else {
            continue;
        };
        if !w.days.contains(&date.weekday()) {
            continue;
        }
        let end_date = if w.end <= w.start {
            date.tomorrow().unwrap_or(date)
        } else {
            date
        };
        let (Some(start), Some(end)) = (instant(w, date, w.start), instant(w, end_date, w.end))
        else {
            continue;
        };
        let opens = start.checked_add(delay).unwrap_or(start);
        if opens <= now && now < end {
            return WindowState::Open { closes_at: end };
        }
        if opens > now && opens < end && next_open.is_none_or(|n| opens < n) {
            next_open = Some(opens);
        }
    }
    WindowState::Closed {
        // Unreachable with at least one day listed; a week ahead is a safe answer.
        opens_at: next_open.unwrap_or_else(|| now.checked_add(7.days()).unwrap_or(now)),
    }
}

#[cfg(test)]
mod test {
    use super::*;
    use jiff::civil::{Time, Weekday};

    fn window(days: &[Weekday], start: (i8, i8), end: (i8, i8), tz: &str) -> UpdateWindow {
        UpdateWindow {
            days: days.to_vec(),
            start: Time::new(start.0, start.1, 0, 0).unwrap(),
            end: Time::new(end.0, end.1, 0, 0).unwrap(),
            time_zone_name: tz.to_owned(),
            time_zone: jiff::tz::TimeZone::get(tz).unwrap(),
        }
    }

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn opens(state: WindowState) -> Timestamp {
        match state {
            WindowState::Closed { opens_at } => opens_at,
            other => panic!("open: {other:?}"),
        }
    }

    fn closes(state: WindowState) -> Timestamp {
        match state {
            WindowState::Open { closes_at } => closes_at,
            other => panic!("closed: {other:?}"),
        }
    }

    #[test]
    fn inside_and_outside_a_daytime_window() {
        // Saturdays 02:00-04:00 UTC; 2030-01-05 is a Saturday.
        let w = window(&[Weekday::Saturday], (2, 0), (4, 0), "UTC");
        let z = Duration::ZERO;
        assert_eq!(
            closes(state(&w, z, at("2030-01-05T03:00:00Z"))),
            at("2030-01-05T04:00:00Z")
        );
        assert_eq!(
            closes(state(&w, z, at("2030-01-05T02:00:00Z"))),
            at("2030-01-05T04:00:00Z")
        );
        // The end is exclusive; the next opening is a week later.
        assert_eq!(
            opens(state(&w, z, at("2030-01-05T04:00:00Z"))),
            at("2030-01-12T02:00:00Z")
        );
        assert_eq!(
            opens(state(&w, z, at("2030-01-02T12:00:00Z"))),
            at("2030-01-05T02:00:00Z")
        );
    }

    #[test]
    fn across_midnight() {
        // Fridays 22:00 until Saturday 03:00 in Berlin (UTC+1 in January).
        let w = window(&[Weekday::Friday], (22, 0), (3, 0), "Europe/Berlin");
        let z = Duration::ZERO;
        // Saturday 01:30 local is still Friday's window.
        assert_eq!(
            closes(state(&w, z, at("2030-01-05T00:30:00Z"))),
            at("2030-01-05T02:00:00Z")
        );
        assert_eq!(
            opens(state(&w, z, at("2030-01-05T02:00:00Z"))),
            at("2030-01-11T21:00:00Z")
        );
        // Friday 21:59 local: not yet.
        assert_eq!(
            opens(state(&w, z, at("2030-01-04T20:59:00Z"))),
            at("2030-01-04T21:00:00Z")
        );
    }

    #[test]
    fn time_zone_changes_move_the_instant_not_the_local_time() {
        // Sundays 01:30-04:00 America/New_York. 2030-03-10: clocks jump 02:00 → 03:00 (EST→EDT);
        // 2030-11-03: 02:00 → 01:00 (EDT→EST).
        let w = window(&[Weekday::Sunday], (1, 30), (4, 0), "America/New_York");
        let z = Duration::ZERO;
        // Before the change: 01:30 EST = 06:30Z; 04:00 EDT = 08:00Z (the window is 1.5 h long).
        assert_eq!(
            opens(state(&w, z, at("2030-03-09T12:00:00Z"))),
            at("2030-03-10T06:30:00Z")
        );
        assert_eq!(
            closes(state(&w, z, at("2030-03-10T07:59:00Z"))),
            at("2030-03-10T08:00:00Z")
        );
        // Back to standard time: 01:30 happens twice; the window opens at the first (EDT, 05:30Z)
        // and closes at 04:00 EST (09:00Z), 3.5 h later.
        assert_eq!(
            opens(state(&w, z, at("2030-11-02T12:00:00Z"))),
            at("2030-11-03T05:30:00Z")
        );
        assert_eq!(
            closes(state(&w, z, at("2030-11-03T06:45:00Z"))),
            at("2030-11-03T09:00:00Z")
        );
        // A start inside the skipped hour (02:30 on 2030-03-10) moves forward by the gap.
        let gap = window(&[Weekday::Sunday], (2, 30), (5, 0), "America/New_York");
        assert_eq!(
            opens(state(&gap, z, at("2030-03-10T00:00:00Z"))),
            at("2030-03-10T07:30:00Z")
        );
    }

    #[test]
    fn per_host_delay_comes_from_the_seed() {
        let max = Duration::from_secs(2048);
        assert_eq!(host_delay(Seed::new(0).unwrap(), max), Duration::ZERO);
        assert_eq!(
            host_delay(Seed::new(1024).unwrap(), max),
            Duration::from_secs(1024)
        );
        assert_eq!(
            host_delay(Seed::new(2047).unwrap(), Duration::from_secs(600)),
            Duration::from_secs(599)
        );
        let w = window(&[Weekday::Saturday], (2, 0), (4, 0), "UTC");
        let d = Duration::from_secs(1800);
        // Window open, but this host's turn comes 30 min in.
        assert_eq!(
            opens(state(&w, d, at("2030-01-05T02:10:00Z"))),
            at("2030-01-05T02:30:00Z")
        );
        assert_eq!(
            closes(state(&w, d, at("2030-01-05T02:30:00Z"))),
            at("2030-01-05T04:00:00Z")
        );
    }

    #[test]
    fn a_whole_day_window_and_every_day() {
        let all = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Saturday,
            Weekday::Sunday,
        ];
        let w = window(&all, (0, 0), (0, 0), "UTC");
        assert!(matches!(
            state(&w, Duration::ZERO, at("2030-06-01T13:00:00Z")),
            WindowState::Open { .. }
        ));
    }
}
