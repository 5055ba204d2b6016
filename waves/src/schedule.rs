//! The manifest's `waves` map and host eligibility.
//!
//! # Wire format (identical to Bottlerocket)
//! A JSON object whose keys are decimal seed bounds and whose values are RFC3339 UTC times:
//! `{"0": "2025-08-25T18:00:00Z", "20": "2025-08-25T21:00:00Z", …}`. Entry `(k_i, t_i)` opens
//! wave *i* at `t_i`; it holds the seeds after `k_i` up to and including `k_{i+1}`. Keys above
//! 2048 are kept on rewrite but, as in Bottlerocket, never select a wave.
//!
//! # Eligibility (our rules; Bottlerocket's three quirks fixed)
//! With the keys `k_0 < … < k_n` (those ≤ 2048) and their times `t_0 < … < t_n`:
//! - no waves: every seed is eligible at once (as Bottlerocket);
//! - a seed `s ≤ k_0` (normally just seed 0) opens at `t_0`. Bottlerocket lets it update
//!   immediately, before the first wave opens;
//! - a seed with `k_i < s ≤ k_{i+1}` opens at `t_i + (t_{i+1} − t_i) × (s − k_i) / (k_{i+1} − k_i)`:
//!   spread linearly by its offset *inside* the wave, so the wave's last seed opens exactly at
//!   `t_{i+1}`. Bottlerocket multiplies by the absolute seed `s`, so after the first wave most
//!   hosts wait until the wave's end;
//! - a seed after the last key (`s > k_n`) is in the last wave, which is spread too, over the
//!   **same duration as the wave before it** (`t_n − t_{n−1}`), so seed 2047 opens at
//!   `t_n + (t_n − t_{n−1})`. With a single wave there is no duration to copy and the whole last
//!   wave opens at `t_n`. Bottlerocket opens the whole last wave at once at `t_n`.
//!
//! Opening times are rounded up to whole seconds (never past the wave's end). A larger seed
//! never opens earlier than a smaller one, and every seed is open by [`WaveSchedule::end`].

use std::collections::BTreeMap;
use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use snafu::ensure;

use crate::error::{self, Result};
use crate::seed::{MAX_SEED, Seed};
use crate::time::{format_timestamp, parse_timestamp};

/// The manifest's `waves` map: seed bound → the time the wave stored under it opens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaveSchedule(BTreeMap<u32, Timestamp>);

/// Whether a host may take an update now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Eligibility {
    /// The host's wave is open for it.
    Eligible,
    /// Not yet; the host becomes eligible at `opens_at`.
    NotYet {
        /// The first instant at which the host is eligible.
        opens_at: Timestamp,
    },
}

/// One wave of a schedule as a host sees it (for tables and charts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct WaveSpan {
    /// Zero-based wave index.
    pub index: usize,
    /// First seed in this wave.
    pub first_seed: u32,
    /// Last seed in this wave (inclusive).
    pub last_seed: u32,
    /// When the wave's first seed opens (the wave's key time for all but seed 0's wave).
    pub opens: Timestamp,
    /// When the wave's last seed opens.
    pub closes: Timestamp,
}

impl WaveSpan {
    /// Number of seeds in this wave.
    pub fn seeds(&self) -> u32 {
        self.last_seed + 1 - self.first_seed
    }
}

fn to_nanos(t: Timestamp) -> i128 {
    t.as_nanosecond()
}

fn from_nanos(n: i128) -> Timestamp {
    Timestamp::from_nanosecond(n).unwrap_or(if n < 0 {
        Timestamp::MIN
    } else {
        Timestamp::MAX
    })
}

/// `start + (end − start) × num / den`, rounded up to a whole second, never past `end`.
/// If `end ≤ start` the answer is `end.max(start)`.
fn spread(start: Timestamp, end: Timestamp, num: u32, den: u32) -> Timestamp {
    if end <= start || den == 0 {
        return end.max(start);
    }
    let (s, e) = (to_nanos(start), to_nanos(end));
    let add = ((e - s) * i128::from(num) + i128::from(den) - 1) / i128::from(den);
    let t = s + add;
    let sec = 1_000_000_000i128;
    let rounded = (t + sec - 1).div_euclid(sec) * sec;
    from_nanos(rounded.min(e))
}

impl WaveSchedule {
    /// An empty schedule (every host is eligible at once).
    pub fn new() -> WaveSchedule {
        WaveSchedule(BTreeMap::new())
    }

    /// True if there are no waves.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Number of stored keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Stores wave `key` opening at `at`; returns the previous time for that key.
    pub fn insert(&mut self, key: u32, at: Timestamp) -> Option<Timestamp> {
        self.0.insert(key, at)
    }

    /// The time stored under `key`.
    pub fn get(&self, key: u32) -> Option<Timestamp> {
        self.0.get(&key).copied()
    }

    /// Removes every wave.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// `(key, time)` pairs in ascending key order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (u32, Timestamp)> + '_ {
        self.0.iter().map(|(k, v)| (*k, *v))
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<u32, Timestamp> {
        &self.0
    }

    /// Checks Bottlerocket's rule: in ascending key order, times increase strictly.
    pub fn validate(&self) -> Result<()> {
        let mut prev: Option<(u32, Timestamp)> = None;
        for (key, at) in self.iter() {
            if let Some((previous_key, previous)) = prev {
                ensure!(
                    at > previous,
                    error::WavesUnorderedSnafu {
                        key,
                        at,
                        previous_key,
                        previous
                    }
                );
            }
            prev = Some((key, at));
        }
        Ok(())
    }

    /// The keys that select waves (≤ 2048), with their times.
    fn effective(&self) -> Vec<(u32, Timestamp)> {
        self.0.range(..=MAX_SEED).map(|(k, v)| (*k, *v)).collect()
    }

    /// Duration of the last wave: the same as the wave before it (zero with one wave).
    fn last_duration(e: &[(u32, Timestamp)]) -> SignedDuration {
        match e {
            [.., (_, a), (_, b)] if b > a => b.duration_since(*a),
            _ => SignedDuration::ZERO,
        }
    }

    /// When `seed` becomes eligible; `None` if there are no waves (eligible at once).
    pub fn opens_at(&self, seed: Seed) -> Option<Timestamp> {
        let e = self.effective();
        let s = u32::from(seed.get());
        let (k0, t0) = *e.first()?;
        if s <= k0 {
            return Some(t0);
        }
        // The wave holding s: the last key strictly below s.
        let i = e.partition_point(|(k, _)| *k < s) - 1;
        let (ki, ti) = e[i];
        match e.get(i + 1) {
            Some(&(kn, tn)) => Some(spread(ti, tn, s - ki, kn - ki)),
            None => {
                let end = ti
                    .checked_add(Self::last_duration(&e))
                    .unwrap_or(Timestamp::MAX);
                Some(spread(ti, end, s - ki, (MAX_SEED - 1) - ki))
            }
        }
    }

    /// Whether `seed` may update at `now`.
    pub fn eligibility(&self, seed: Seed, now: Timestamp) -> Eligibility {
        match self.opens_at(seed) {
            Some(opens_at) if now < opens_at => Eligibility::NotYet { opens_at },
            _ => Eligibility::Eligible,
        }
    }

    /// When the rollout is complete: every seed is eligible from this time on.
    pub fn end(&self) -> Option<Timestamp> {
        let e = self.effective();
        let &(kn, tn) = e.last()?;
        if kn >= MAX_SEED - 1 {
            return Some(tn);
        }
        Some(
            tn.checked_add(Self::last_duration(&e))
                .unwrap_or(Timestamp::MAX),
        )
    }

    /// The waves as hosts see them, seed ranges and opening times, in order. Empty waves
    /// (two equal keys cannot happen; a key ≥ 2047 at the end) are left out.
    pub fn spans(&self) -> Vec<WaveSpan> {
        let e = self.effective();
        let mut spans = Vec::new();
        // Seeds 0..=k0 open at t0: they are reported as part of the first wave.
        let mut first_seed = 0u32;
        for (i, &(_, ti)) in e.iter().enumerate() {
            let last_seed = match e.get(i + 1) {
                Some(&(kn, _)) => kn.min(MAX_SEED - 1),
                None => MAX_SEED - 1,
            };
            if last_seed < first_seed {
                continue;
            }
            let seed = |n: u32| Seed::new(n).expect("in range");
            let opens = self.opens_at(seed(first_seed)).unwrap_or(ti);
            let closes = self.opens_at(seed(last_seed)).unwrap_or(ti);
            spans.push(WaveSpan {
                index: spans.len(),
                first_seed,
                last_seed,
                opens,
                closes,
            });
            first_seed = last_seed + 1;
            if first_seed >= MAX_SEED {
                break;
            }
        }
        spans
    }

    /// Number of seeds eligible at `now` (0–2048).
    pub fn eligible_count(&self, now: Timestamp) -> u32 {
        Seed::all()
            .filter(|s| self.eligibility(*s, now) == Eligibility::Eligible)
            .count() as u32
    }
}

/// When Bottlerocket's updog would let a seed update under this schedule (its rules, quirks
/// included: seed 0 at once, in-wave position by absolute seed, last wave unspread); for
/// comparison charts and tests. `None`: at once (before any wave time).
pub fn bottlerocket_opens_at(schedule: &WaveSchedule, seed: Seed) -> Option<Timestamp> {
    let s = u32::from(seed.get());
    let prev = schedule.0.range(..s).next_back().map(|(k, v)| (*k, *v));
    let next = schedule.0.range(s..=MAX_SEED).next().map(|(k, v)| (*k, *v));
    match (prev, next) {
        (None, _) => None,
        (Some((_, start)), None) => Some(start),
        (Some((ks, start)), Some((ke, end))) => {
            if end <= start {
                return Some(end.max(start));
            }
            let per_seed = (to_nanos(end) - to_nanos(start)) / i128::from(ke - ks);
            let target = from_nanos(to_nanos(start) + per_seed * i128::from(s));
            Some(target.min(end))
        }
    }
}

impl From<BTreeMap<u32, Timestamp>> for WaveSchedule {
    fn from(map: BTreeMap<u32, Timestamp>) -> WaveSchedule {
        WaveSchedule(map)
    }
}

impl FromIterator<(u32, Timestamp)> for WaveSchedule {
    fn from_iter<I: IntoIterator<Item = (u32, Timestamp)>>(iter: I) -> WaveSchedule {
        WaveSchedule(iter.into_iter().collect())
    }
}

impl Serialize for WaveSchedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(&k.to_string(), &format_timestamp(*v))?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for WaveSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = WaveSchedule;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of seed bound (decimal string) to RFC3339 time")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<WaveSchedule, A::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    let bound = (!key.is_empty() && key.bytes().all(|b| b.is_ascii_digit()))
                        .then(|| key.parse::<u32>().ok())
                        .flatten()
                        .ok_or_else(|| {
                            de::Error::custom(format_args!(
                                "bad wave bound key {key:?}: keys must be decimal seed numbers (0 to 4294967295)"
                            ))
                        })?;
                    let value: String = access.next_value()?;
                    let at = parse_timestamp(&value).map_err(|_| {
                        de::Error::custom(format_args!(
                            "wave {key:?}: bad time {value:?}: expected RFC3339, e.g. 2025-08-25T17:00:00Z"
                        ))
                    })?;
                    if map.insert(bound, at).is_some() {
                        return Err(de::Error::custom(format_args!(
                            "duplicate wave bound key {key:?}"
                        )));
                    }
                }
                Ok(WaveSchedule(map))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod test;
