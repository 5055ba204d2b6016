//! The wave-policy target: `WavePolicy::from_toml` and the schedule built from it, with
//! token-aware text mutations.

use crate::{Rng, Target, mutate_bytes};
use jiff::Timestamp;
use std::path::Path;
use waves::{Seed, WavePolicy};

const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "99",
    "100",
    "101",
    "255",
    "256",
    "2048",
    "9223372036854775807",
    "9223372036854775808",
    "1.5",
    "1e3",
    "\"50\"",
];

const OFFSETS: &[&str] = &[
    "'0 seconds'",
    "'1 hour'",
    "'1 hours'",
    "'-1 hour'",
    "''",
    "'1 fortnight'",
    "'18446744073709551615 seconds'",
    "'9223372036854775807 days'",
    "'99999999 days'",
    "'1 day 1 hour'",
    "'1'",
    "'hour'",
    "'6 days'",
    "'5 days'",
];

/// Checks one input: an accepted policy has strictly increasing percentages in 1..=100, and
/// any schedule built from it validates and answers eligibility for every kind of seed.
pub fn check_policy(input: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(input) else {
        return false;
    };
    let Ok(policy) = WavePolicy::from_toml(text, Path::new("fuzz.toml")) else {
        return false;
    };
    assert!(!policy.waves.is_empty(), "accepted a policy without waves");
    let mut previous = 0u8;
    for w in &policy.waves {
        assert!(
            w.fleet_percentage > previous && w.fleet_percentage <= 100,
            "accepted percentages {:?}",
            policy
                .waves
                .iter()
                .map(|w| w.fleet_percentage)
                .collect::<Vec<_>>()
        );
        previous = w.fleet_percentage;
    }
    let starts = [
        Timestamp::UNIX_EPOCH,
        Timestamp::from_second(1_767_225_600).expect("2026"),
        Timestamp::MAX,
        Timestamp::MIN,
    ];
    for start in starts {
        let Ok(schedule) = policy.schedule(start) else {
            continue;
        };
        schedule
            .validate()
            .unwrap_or_else(|e| panic!("schedule of an accepted policy is invalid: {e}"));
        assert!(schedule.len() <= policy.waves.len());
        for seed in [0u32, 1, 20, 1023, 2047] {
            let seed = Seed::new(seed).expect("seed in range");
            let _ = schedule.opens_at(seed);
            for now in [start, Timestamp::MAX, Timestamp::MIN] {
                let _ = schedule.eligibility(seed, now);
            }
        }
        let _ = schedule.spans();
        let _ = waves::chart::render_table(&schedule, Some(start));
    }
    true
}

/// Replaces a random token (a quoted string if `quoted`, else a number) with `with`.
fn replace_token(text: &str, rng: &mut Rng, quoted: bool, with: &str) -> String {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if quoted && (bytes[i] == b'\'' || bytes[i] == b'"') {
            let q = bytes[i];
            if let Some(len) = bytes[i + 1..].iter().position(|b| *b == q) {
                spans.push(i..i + len + 2);
                i += len + 2;
                continue;
            }
        } else if !quoted && (bytes[i].is_ascii_digit() || bytes[i] == b'-') {
            let start = i;
            while i < bytes.len()
                && (bytes[i].is_ascii_alphanumeric() || b"-.+".contains(&bytes[i]))
            {
                i += 1;
            }
            spans.push(start..i);
            continue;
        }
        i += 1;
    }
    if spans.is_empty() {
        return text.to_string();
    }
    let span = rng.pick(&spans).clone();
    format!("{}{}{}", &text[..span.start], with, &text[span.end..])
}

/// The wave-policy target.
#[derive(Debug)]
pub struct Waves;

impl Target for Waves {
    const NAME: &'static str = "waves";

    fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
        let mut text = String::from_utf8_lossy(base).into_owned();
        for _ in 0..1 + rng.below(3) {
            match rng.below(6) {
                0 => {
                    let with = *rng.pick(NUMBERS);
                    text = replace_token(&text, rng, false, with);
                }
                1 => {
                    let with = *rng.pick(OFFSETS);
                    text = replace_token(&text, rng, true, with);
                }
                2 => {
                    // Duplicate, drop or swap a [[waves]] block.
                    let mut blocks: Vec<String> =
                        text.split("[[waves]]").map(str::to_string).collect();
                    if blocks.len() > 1 {
                        let i = 1 + rng.index(blocks.len() - 1);
                        match rng.below(3) {
                            0 => {
                                let b = blocks[i].clone();
                                blocks.insert(i, b);
                            }
                            1 => {
                                blocks.remove(i);
                            }
                            _ => {
                                let j = 1 + rng.index(blocks.len() - 1);
                                blocks.swap(i, j);
                            }
                        }
                        text = blocks.join("[[waves]]");
                    }
                }
                3 => {
                    let lines: Vec<&str> = text.lines().collect();
                    if !lines.is_empty() {
                        let i = rng.index(lines.len());
                        let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                        if rng.chance(50) {
                            v.remove(i);
                        } else {
                            v.insert(i, lines[rng.index(lines.len())].to_string());
                        }
                        text = v.join("\n");
                    }
                }
                _ => {
                    let mut data = text.into_bytes();
                    mutate_bytes(rng, &mut data, other);
                    return data;
                }
            }
        }
        text.into_bytes()
    }

    fn check(input: &[u8]) -> bool {
        check_policy(input)
    }
}
