//! Rollout waves: policies, the manifest `waves` map, and host eligibility.
//!
//! A [`WavePolicy`] (a TOML file of `[[waves]]` with `start_after` and cumulative
//! `fleet_percentage`) becomes a [`WaveSchedule`] for a release start time exactly as
//! Bottlerocket's `set_waves` does: wave *i* is stored under the seed bound
//! `trunc(p_{i−1} / 100 × 2048)` of the wave before it. A host with a [`Seed`] asks
//! [`WaveSchedule::eligibility`] whether it may update now, or when it may. The eligibility rules
//! fix three Bottlerocket quirks; see [`schedule`] for the exact rules.
//!
//! Everything here is pure: "now" is always a parameter.
//!
//! # Compatibility with Bottlerocket
//! Same policy format and the same manifest keys and times. Deliberate differences:
//! - `start_after` also accepts minutes and RFC3339 times (Bottlerocket's `ohno.toml`, written in
//!   minutes, fails there; it works here);
//! - a policy must be non-empty, use only `start_after` and `fleet_percentage`, have strictly
//!   increasing percentages and offsets, and end at 100 % (Bottlerocket silently rolls the last
//!   wave out to everyone whatever its percentage);
//! - the release start is truncated to whole seconds;
//! - eligibility: seed 0 waits for the first wave, hosts are spread by their offset inside their
//!   wave, and the last wave is spread over the previous wave's duration (see [`schedule`]).
//!
//! ```
//! use waves::{Eligibility, Seed, WavePolicy};
//! let policy = WavePolicy::builtin("default").unwrap();
//! let start: jiff::Timestamp = "2025-08-25T17:00:00Z".parse().unwrap();
//! let schedule = policy.schedule(start).unwrap();
//! let keys: Vec<u32> = schedule.iter().map(|(k, _)| k).collect();
//! assert_eq!(keys, [0, 20, 102, 307, 819, 1228, 1843]);
//! let seed = Seed::new(10).unwrap();
//! let at_start = schedule.eligibility(seed, start);
//! assert!(matches!(at_start, Eligibility::NotYet { .. }));
//! assert_eq!(schedule.eligibility(seed, "2025-08-26T00:00:00Z".parse().unwrap()), Eligibility::Eligible);
//! ```
#![deny(missing_docs)]

pub mod chart;
mod error;
mod offset;
mod policy;
pub mod schedule;
mod seed;
mod time;

pub use error::{Error, ExitStatus, Result};
pub use offset::{StartAfter, human_duration, parse_offset};
pub use policy::{BUILTIN_POLICIES, Wave, WavePolicy, seed_bound};
pub use schedule::{Eligibility, WaveSchedule, WaveSpan};
pub use seed::{MAX_SEED, Seed};
pub use time::{format_timestamp, parse_timestamp};
