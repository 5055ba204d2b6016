//! Wave policy files (`[[waves]] start_after = "…" fleet_percentage = N`).

use std::path::Path;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use snafu::{IntoError, OptionExt, ResultExt, ensure};

use crate::error::{self, Result};
use crate::offset::{StartAfter, parse_offset};
use crate::schedule::WaveSchedule;
use crate::seed::MAX_SEED;

/// One wave of a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Wave {
    /// When the wave opens.
    pub start_after: StartAfter,
    /// Cumulative share of the fleet (1–100) updated by the end of this wave.
    pub fleet_percentage: u8,
}

/// A rollout policy: waves in order, with strictly increasing cumulative fleet percentages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WavePolicy {
    /// The waves, in the order they open.
    pub waves: Vec<Wave>,
}

/// The policies shipped with this crate (Bottlerocket's four, with Bottlerocket's values).
pub const BUILTIN_POLICIES: &[(&str, &str)] = &[
    ("default", include_str!("../policies/default.toml")),
    ("accelerated", include_str!("../policies/accelerated.toml")),
    ("slow-roll", include_str!("../policies/slow-roll.toml")),
    ("ohno", include_str!("../policies/ohno.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    waves: Vec<RawWave>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWave {
    start_after: String,
    fleet_percentage: i64,
}

/// The manifest key rule: the seed bound for a cumulative percentage, `trunc(p / 100 × 2048)`.
///
/// Bottlerocket computes this in `f32`; for whole percentages 1–100 the integer form gives the
/// same numbers (checked by a test).
pub fn seed_bound(fleet_percentage: u8) -> u32 {
    u32::from(fleet_percentage) * MAX_SEED / 100
}

impl WavePolicy {
    /// Parses a policy. `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &Path) -> Result<WavePolicy> {
        let de = toml::Deserializer::parse(text).context(error::PolicyTomlSnafu {
            path: origin,
            field: ".",
        })?;
        let raw: RawPolicy = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            error::PolicyTomlSnafu {
                path: origin,
                field,
            }
            .into_error(e.into_inner())
        })?;
        ensure!(
            !raw.waves.is_empty(),
            error::PolicyEmptySnafu { path: origin }
        );
        let mut waves: Vec<Wave> = Vec::with_capacity(raw.waves.len());
        for (index, w) in raw.waves.iter().enumerate() {
            let start_after =
                parse_offset(&w.start_after).context(error::PolicyStartAfterSnafu {
                    path: origin,
                    index,
                    value: w.start_after.as_str(),
                })?;
            let fleet_percentage = u8::try_from(w.fleet_percentage)
                .ok()
                .filter(|p| (1..=100).contains(p))
                .context(error::PolicyPercentageRangeSnafu {
                    path: origin,
                    index,
                    value: w.fleet_percentage,
                })?;
            if let Some(prev) = waves.last() {
                ensure!(
                    fleet_percentage > prev.fleet_percentage,
                    error::PolicyPercentageOrderSnafu {
                        path: origin,
                        index,
                        value: fleet_percentage,
                        previous: prev.fleet_percentage,
                    }
                );
                // Waves of the same kind can be ordered now, so the error names the file.
                let ordered = match (prev.start_after, start_after) {
                    (StartAfter::Offset(a), StartAfter::Offset(b)) => a < b,
                    (StartAfter::At(a), StartAfter::At(b)) => a < b,
                    _ => true,
                };
                if !ordered {
                    return Err(error::PolicyStartAfterSnafu {
                        path: origin,
                        index,
                        value: w.start_after.as_str(),
                    }
                    .into_error(
                        error::BadOffsetSnafu {
                            input: w.start_after.as_str(),
                            reason: format!(
                                "waves must open in ascending order, and waves[{}] opens at {}",
                                index - 1,
                                prev.start_after
                            ),
                        }
                        .build(),
                    ));
                }
            }
            waves.push(Wave {
                start_after,
                fleet_percentage,
            });
        }
        let last = waves.len() - 1;
        ensure!(
            waves[last].fleet_percentage == 100,
            error::PolicyLastNotFullSnafu {
                path: origin,
                index: last,
                value: waves[last].fleet_percentage,
            }
        );
        Ok(WavePolicy { waves })
    }

    /// Reads and parses a policy file.
    pub fn from_path(path: &Path) -> Result<WavePolicy> {
        let text = std::fs::read_to_string(path).context(error::ReadPolicySnafu { path })?;
        WavePolicy::from_toml(&text, path)
    }

    /// One of the policies shipped with this crate: `default`, `accelerated`, `slow-roll`, `ohno`.
    pub fn builtin(name: &str) -> Option<WavePolicy> {
        BUILTIN_POLICIES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(n, text)| {
                WavePolicy::from_toml(text, Path::new(&format!("<builtin {n}>")))
                    .expect("built-in policies are valid (tested)")
            })
    }

    /// The manifest `waves` map for a release starting at `start`, exactly as Bottlerocket's
    /// `set_waves` builds it: wave *i* is stored under the cumulative seed bound of wave *i − 1*
    /// (0 for the first wave), and the last bound (2048) is never stored.
    ///
    /// `start` is truncated to whole seconds.
    pub fn schedule(&self, start: Timestamp) -> Result<WaveSchedule> {
        let start = Timestamp::from_second(start.as_second()).unwrap_or(start);
        let mut schedule = WaveSchedule::new();
        let mut key = 0u32;
        let mut previous: Option<(usize, Timestamp)> = None;
        for (index, wave) in self.waves.iter().enumerate() {
            let at = wave
                .start_after
                .resolve(start)
                .context(error::ScheduleOverflowSnafu { index, start })?;
            if let Some((previous_index, previous)) = previous {
                ensure!(
                    at > previous,
                    error::ScheduleUnorderedSnafu {
                        index,
                        at,
                        previous_index,
                        previous
                    }
                );
            }
            schedule.insert(key, at);
            previous = Some((index, at));
            key = seed_bound(wave.fleet_percentage);
        }
        Ok(schedule)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn seed_bound_matches_bottlerocket_f32() {
        for p in 1..=100u8 {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let br = (f32::from(p) / 100.0 * MAX_SEED as f32) as u32;
            assert_eq!(seed_bound(p), br, "{p}%");
        }
        let table = [
            (1, 20),
            (3, 61),
            (5, 102),
            (10, 204),
            (12, 245),
            (15, 307),
            (25, 512),
            (40, 819),
            (50, 1024),
            (60, 1228),
            (80, 1638),
            (90, 1843),
            (100, 2048),
        ];
        for (p, k) in table {
            assert_eq!(seed_bound(p), k, "{p}%");
        }
    }

    fn policy(text: &str) -> Result<WavePolicy> {
        WavePolicy::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn builtins_parse() {
        for (name, _) in BUILTIN_POLICIES {
            let p = WavePolicy::builtin(name).unwrap();
            assert_eq!(p.waves.last().unwrap().fleet_percentage, 100, "{name}");
        }
        assert!(WavePolicy::builtin("nope").is_none());
    }

    #[test]
    fn bad_policies_name_file_field_index_value() {
        let w =
            |s: &str, p: &str| format!("[[waves]]\nstart_after = '{s}'\nfleet_percentage = {p}\n");
        let cases = [
            (
                w("1 hour", "0"),
                vec![
                    "test.toml",
                    "waves[0].fleet_percentage",
                    "= 0",
                    "between 1 and 100",
                ],
            ),
            (w("1 hour", "101"), vec!["waves[0].fleet_percentage", "101"]),
            (w("1 hour", "-5"), vec!["waves[0].fleet_percentage", "-5"]),
            (
                w("1 fortnight", "100"),
                vec!["waves[0].start_after", "\"1 fortnight\""],
            ),
            (
                w("1 hour", "50") + &w("2 hours", "50"),
                vec!["waves[1].fleet_percentage", "= 50", "previous wave has 50"],
            ),
            (
                w("1 hour", "60") + &w("2 hours", "40"),
                vec!["waves[1].fleet_percentage", "40"],
            ),
            (
                w("3 hours", "50") + &w("2 hours", "100"),
                vec!["waves[1].start_after", "\"2 hours\""],
            ),
            (
                w("1 hour", "50"),
                vec![
                    "waves[0].fleet_percentage",
                    "50",
                    "last wave must reach 100",
                ],
            ),
            (
                "waves = []".to_string(),
                vec!["test.toml", "`waves` is empty"],
            ),
            (
                "".to_string(),
                vec!["test.toml", "invalid wave policy", "waves"],
            ),
            (
                "[[waves]]\nstart_after = '1 hour'\n".to_string(),
                vec!["test.toml", "`waves[0]`", "fleet_percentage"],
            ),
            (
                "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = '5'\n".to_string(),
                vec!["test.toml", "`waves[0].fleet_percentage`", "\"5\""],
            ),
            (
                "[[waves]]\nstart_after = 5\nfleet_percentage = 5\n".to_string(),
                vec!["test.toml", "`waves[0].start_after`", "5"],
            ),
            (
                "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 5\nfleet = 3\n".to_string(),
                vec!["test.toml", "`waves[0].fleet`", "unknown field"],
            ),
            (
                "[[waves]]\nstart_after = '1 hour\n".to_string(),
                vec!["test.toml", "`.`"],
            ),
        ];
        for (text, wants) in cases {
            let err = policy(&text).unwrap_err();
            let mut chain = err.to_string();
            let mut src = std::error::Error::source(&err);
            while let Some(s) = src {
                chain.push_str(" / ");
                chain.push_str(&s.to_string());
                src = s.source();
            }
            for want in wants {
                assert!(
                    chain.contains(want),
                    "{text}\n=> {chain}\n(missing {want:?})"
                );
            }
        }
    }
}
