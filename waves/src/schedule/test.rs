use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;

use super::*;
use crate::StartAfter;
use crate::policy::{BUILTIN_POLICIES, Wave, WavePolicy};

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn seed(n: u32) -> Seed {
    Seed::new(n).unwrap()
}

const R: &str = "2025-08-25T17:00:00Z";

fn hours(h: i64) -> SignedDuration {
    SignedDuration::from_hours(h)
}

fn default_schedule() -> WaveSchedule {
    WavePolicy::builtin("default")
        .unwrap()
        .schedule(ts(R))
        .unwrap()
}

/// Derived keys and offsets from PROVENANCE.md for every Bottlerocket wave file.
#[test]
fn policy_files_give_bottlerocket_keys() {
    let h = |n: i64| hours(n);
    let d = |n: i64| hours(24 * n);
    let m = |n: i64| SignedDuration::from_mins(n);
    let cases: [(&str, Vec<(u32, SignedDuration)>); 5] = [
        (
            "default-waves.toml",
            vec![
                (0, h(1)),
                (20, h(4)),
                (102, d(1)),
                (307, d(2)),
                (819, d(4)),
                (1228, d(5)),
                (1843, d(6)),
            ],
        ),
        (
            "accelerated-waves.toml",
            vec![
                (0, h(1)),
                (61, h(4)),
                (245, h(8)),
                (819, h(16)),
                (1638, h(24)),
            ],
        ),
        (
            "slow-roll.toml",
            vec![
                (0, h(1)),
                (20, d(1)),
                (102, d(3)),
                (307, d(7)),
                (819, d(9)),
                (1228, d(12)),
                (1843, d(13)),
            ],
        ),
        (
            "ohno.toml",
            vec![
                (0, m(30)),
                (102, m(60)),
                (512, m(120)),
                (1024, m(150)),
                (1843, m(180)),
            ],
        ),
        (
            "default_waves.toml",
            vec![(0, h(12)), (20, d(1)), (204, d(3)), (512, d(6))],
        ),
    ];
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    for (file, want) in cases {
        let policy = WavePolicy::from_path(&dir.join(file)).unwrap();
        let got: Vec<(u32, SignedDuration)> = policy
            .schedule(ts(R))
            .unwrap()
            .iter()
            .map(|(k, t)| (k, t.duration_since(ts(R))))
            .collect();
        assert_eq!(got, want, "{file}");
    }
    // Our shipped copies carry the same values.
    for (name, file) in [
        ("default", "default-waves.toml"),
        ("accelerated", "accelerated-waves.toml"),
        ("slow-roll", "slow-roll.toml"),
        ("ohno", "ohno.toml"),
    ] {
        assert_eq!(
            WavePolicy::builtin(name).unwrap(),
            WavePolicy::from_path(&dir.join(file)).unwrap(),
            "{name}"
        );
    }
}

/// The real 2025 manifest quoted in the fact sheet (default waves from 17:00Z).
#[test]
fn matches_published_manifest() {
    let s = default_schedule();
    let json = serde_json::to_string(&s).unwrap();
    assert!(json.starts_with(r#"{"0":"2025-08-25T18:00:00Z","20":"2025-08-25T21:00:00Z","102":"2025-08-26T17:00:00Z","307":"2025-08-27T17:00:00Z","819":"2025-08-29T17"#), "{json}");
}

#[test]
fn start_is_truncated_to_seconds_and_at_times_kept() {
    let p = WavePolicy {
        waves: vec![
            Wave {
                start_after: StartAfter::Offset(hours(1)),
                fleet_percentage: 50,
            },
            Wave {
                start_after: StartAfter::At(ts("2030-01-01T00:00:00Z")),
                fleet_percentage: 100,
            },
        ],
    };
    let s = p.schedule(ts("2029-12-31T00:00:00.75Z")).unwrap();
    assert_eq!(
        serde_json::to_string(&s).unwrap(),
        r#"{"0":"2029-12-31T01:00:00Z","1024":"2030-01-01T00:00:00Z"}"#
    );
    // An absolute time before an offset wave is an ordering error naming both waves.
    let e = p
        .schedule(ts("2030-01-01T00:00:00Z"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("waves[1]") && e.contains("waves[0]"), "{e}");
}

#[test]
fn serde_round_trip_and_order() {
    let json = r#"{"1024":"2019-8-31T15:00:00Z","0":"2019-8-06T15:00:00Z","500":"2019-08-07T15:00:00+00:00"}"#;
    let s: WaveSchedule = serde_json::from_str(json).unwrap();
    let out = serde_json::to_string(&s).unwrap();
    assert_eq!(
        out,
        r#"{"0":"2019-08-06T15:00:00Z","500":"2019-08-07T15:00:00Z","1024":"2019-08-31T15:00:00Z"}"#
    );
    assert_eq!(serde_json::from_str::<WaveSchedule>(&out).unwrap(), s);
    // Keys above 2048 parse and are kept (Bottlerocket accepts them).
    let big: WaveSchedule =
        serde_json::from_str(r#"{"0":"2019-10-06T15:00:00Z","858993459":"2019-10-07T15:00:00Z"}"#)
            .unwrap();
    assert_eq!(big.get(858993459), Some(ts("2019-10-07T15:00:00Z")));
}

#[test]
fn serde_rejects_bad_keys_and_values() {
    let cases = [
        (r#"{"234ab32":"2019-10-08T15:00:00Z"}"#, "\"234ab32\""),
        (r#"{"":"2019-10-08T15:00:00Z"}"#, "\"\""),
        (r#"{"-1":"2019-10-08T15:00:00Z"}"#, "\"-1\""),
        (r#"{"+5":"2019-10-08T15:00:00Z"}"#, "\"+5\""),
        (r#"{"4294967296":"2019-10-08T15:00:00Z"}"#, "\"4294967296\""),
        (
            r#"{"0":"2019-10-06T15:00:00Z","0":"2019-10-07T15:00:00Z"}"#,
            "duplicate wave bound key \"0\"",
        ),
        (r#"{"0":"yesterday"}"#, "\"yesterday\""),
        (r#"{"0":"2019-10-06"}"#, "\"2019-10-06\""),
        (r#"{"0":12}"#, "string"),
        (r#"[]"#, "object"),
    ];
    for (json, want) in cases {
        let e = serde_json::from_str::<WaveSchedule>(json)
            .unwrap_err()
            .to_string();
        assert!(e.contains(want), "{json}: {e}");
    }
}

#[test]
fn validate_requires_ascending_times() {
    assert!(default_schedule().validate().is_ok());
    let s: WaveSchedule =
        serde_json::from_str(r#"{"0":"2019-10-06T15:00:00Z","20":"2019-10-06T15:00:00Z"}"#)
            .unwrap();
    let e = s.validate().unwrap_err().to_string();
    assert!(e.contains("key 20") && e.contains("key 0"), "{e}");
    let s: WaveSchedule =
        serde_json::from_str(r#"{"0":"2019-10-06T15:00:00Z","9999":"2019-10-05T15:00:00Z"}"#)
            .unwrap();
    assert!(
        s.validate().is_err(),
        "Bottlerocket checks keys above 2048 too"
    );
}

/// Table of opening times under the default policy, relative to the release start.
#[test]
fn eligibility_table_default() {
    let s = default_schedule();
    let r = ts(R);
    // (seed, opens at R + seconds)
    let secs = |h: f64| (h * 3600.0).ceil() as i64;
    let cases: &[(u32, i64)] = &[
        (0, secs(1.0)),              // seed 0 waits for the first wave (quirk fixed)
        (1, secs(1.0 + 3.0 / 20.0)), // first wave spread over 1h..4h
        (10, secs(1.0 + 3.0 * 10.0 / 20.0)),
        (20, secs(4.0)), // a seed equal to a key ends that key's wave
        (21, 4 * 3600 + (20 * 3600 + 81) / 82), // offset 1 of 82 in 4h..24h, rounded up
        (61, 4 * 3600 + (20 * 3600 * 41 + 81) / 82),
        (102, secs(24.0)),
        (103, 24 * 3600 + (24 * 3600 + 204) / 205),
        (307, secs(48.0)),
        (819, secs(96.0)),
        (1228, secs(120.0)),
        (1843, secs(144.0)),
        (1844, 144 * 3600 + (24 * 3600 + 203) / 204), // last wave spread too, over 1 day
        (2047, secs(168.0)),
    ];
    for &(sd, want) in cases {
        let got = s.opens_at(seed(sd)).unwrap().duration_since(r).as_secs();
        assert_eq!(got, want, "seed {sd}");
    }
    assert_eq!(s.end().unwrap(), r + hours(168));
}

#[test]
fn bottlerocket_quirks_are_fixed() {
    let s = default_schedule();
    let r = ts(R);
    // Seed 0: Bottlerocket at once; ours at the first wave.
    assert_eq!(bottlerocket_opens_at(&s, seed(0)), None);
    assert_eq!(
        s.eligibility(seed(0), r),
        Eligibility::NotYet {
            opens_at: r + hours(1)
        }
    );
    // Seed 100 (wave 20..102): Bottlerocket's absolute-seed target overshoots to the wave end.
    assert_eq!(bottlerocket_opens_at(&s, seed(100)), Some(r + hours(24)));
    assert!(s.opens_at(seed(100)).unwrap() < r + hours(24));
    // Last wave: Bottlerocket opens it all at once; ours spreads it.
    assert_eq!(bottlerocket_opens_at(&s, seed(1900)), Some(r + hours(144)));
    assert_eq!(bottlerocket_opens_at(&s, seed(2047)), Some(r + hours(144)));
    assert!(s.opens_at(seed(1900)).unwrap() > r + hours(144));
    // Fact sheet worked example for Bottlerocket: 21..82 spread 9.1h..24h, 83..102 at 24h.
    let br = |n| {
        bottlerocket_opens_at(&s, seed(n))
            .unwrap()
            .duration_since(r)
            .as_secs_f64()
            / 3600.0
    };
    assert!((br(21) - 9.12).abs() < 0.01, "{}", br(21));
    assert_eq!(br(83), 24.0);
    assert!((br(308) - 76.9).abs() < 0.1, "{}", br(308));
}

#[test]
fn edge_schedules() {
    let t = ts("2019-10-06T15:00:00Z");
    // No waves: eligible at once.
    let empty = WaveSchedule::new();
    assert_eq!(empty.opens_at(seed(5)), None);
    assert_eq!(
        empty.eligibility(seed(5), Timestamp::UNIX_EPOCH),
        Eligibility::Eligible
    );
    assert_eq!(empty.end(), None);
    assert!(empty.spans().is_empty());
    // One wave: everyone at its time (nothing to spread over).
    let one: WaveSchedule = [(0, t)].into_iter().collect();
    for n in [0, 1, 1000, 2047] {
        assert_eq!(one.opens_at(seed(n)), Some(t));
    }
    assert_eq!(one.end(), Some(t));
    // Keys above 2048 never select a wave (multiple_*.json).
    let big: WaveSchedule = [(0, t), (858_993_459, t + hours(24))].into_iter().collect();
    assert_eq!(big.opens_at(seed(123)), Some(t));
    assert_eq!(big.end(), Some(t));
    // Key 2047 (example_3): the last wave is empty; seed 1487 spreads over the only wave.
    let e3: WaveSchedule = [(0, t), (2047, t + hours(1))].into_iter().collect();
    assert_eq!(e3.opens_at(seed(2047)), Some(t + hours(1)));
    assert_eq!(
        e3.opens_at(seed(1487)),
        Some(t + SignedDuration::from_secs((3600 * 1487 + 2046) / 2047))
    );
    assert_eq!(e3.end(), Some(t + hours(1)));
    assert_eq!(e3.spans().len(), 1);
    // Key 2048 closes the last wave explicitly.
    let k2048: WaveSchedule = [(0, t), (2048, t + hours(2))].into_iter().collect();
    assert_eq!(k2048.opens_at(seed(1024)), Some(t + hours(1)));
    assert_eq!(k2048.end(), Some(t + hours(2)));
    // A first key above 0: seeds up to it wait for its time.
    let late: WaveSchedule = [(100, t), (200, t + hours(1))].into_iter().collect();
    assert_eq!(late.opens_at(seed(0)), Some(t));
    assert_eq!(late.opens_at(seed(100)), Some(t));
    // Equal times (example_3's 0.1.1) do not panic: the wave opens at once.
    let flat: WaveSchedule = [(0, t), (2047, t)].into_iter().collect();
    assert_eq!(flat.opens_at(seed(1000)), Some(t));
}

#[test]
fn spans_cover_every_seed_once() {
    for (name, _) in BUILTIN_POLICIES {
        let s = WavePolicy::builtin(name).unwrap().schedule(ts(R)).unwrap();
        let spans = s.spans();
        assert_eq!(spans[0].first_seed, 0, "{name}");
        assert_eq!(spans.last().unwrap().last_seed, 2047, "{name}");
        for w in spans.windows(2) {
            assert_eq!(w[0].last_seed + 1, w[1].first_seed, "{name}");
            assert!(w[0].closes <= w[1].opens, "{name}");
        }
        assert_eq!(
            spans.iter().map(WaveSpan::seeds).sum::<u32>(),
            2048,
            "{name}"
        );
        assert_eq!(spans.last().unwrap().closes, s.end().unwrap(), "{name}");
    }
}

/// The three properties, checked over all 2048 seeds for a schedule.
fn check_properties(s: &WaveSchedule) -> std::result::Result<(), TestCaseError> {
    let end = s.end().unwrap();
    let mut prev: Option<Timestamp> = None;
    for sd in Seed::all() {
        let at = s.opens_at(sd).unwrap();
        // A larger seed never becomes eligible earlier.
        if let Some(p) = prev {
            prop_assert!(
                at >= p,
                "seed {sd} opens at {at}, before seed {} at {p}",
                sd.get() - 1
            );
        }
        prev = Some(at);
        // Every seed is eligible by the last wave's end.
        prop_assert!(at <= end, "seed {sd} opens at {at}, after the end {end}");
        prop_assert_eq!(s.eligibility(sd, end), Eligibility::Eligible);
        // opens_at from NotYet is exactly when eligibility flips.
        let before = at - SignedDuration::from_nanos(1);
        prop_assert_eq!(
            s.eligibility(sd, before),
            Eligibility::NotYet { opens_at: at }
        );
        prop_assert_eq!(s.eligibility(sd, at), Eligibility::Eligible);
        // Whole seconds.
        prop_assert_eq!(at.subsec_nanosecond(), 0);
    }
    prop_assert_eq!(s.eligible_count(end), 2048);
    Ok(())
}

#[test]
fn properties_hold_for_builtin_policies() {
    for (name, _) in BUILTIN_POLICIES {
        let s = WavePolicy::builtin(name).unwrap().schedule(ts(R)).unwrap();
        check_properties(&s).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/default_waves.toml");
    check_properties(
        &WavePolicy::from_path(&dir)
            .unwrap()
            .schedule(ts(R))
            .unwrap(),
    )
    .unwrap();
}

fn arb_policy() -> impl Strategy<Value = WavePolicy> {
    // 1..8 waves; increasing percentages ending at 100; increasing offsets in minutes.
    (
        prop::collection::btree_set(1u8..100, 0..7),
        prop::collection::btree_set(0i64..30 * 24 * 60, 8),
    )
        .prop_map(|(pcts, mins)| {
            let mut pcts: Vec<u8> = pcts.into_iter().collect();
            pcts.push(100);
            let mins: Vec<i64> = mins.into_iter().collect();
            WavePolicy {
                waves: pcts
                    .iter()
                    .zip(mins)
                    .map(|(p, m)| Wave {
                        start_after: StartAfter::Offset(SignedDuration::from_mins(m)),
                        fleet_percentage: *p,
                    })
                    .collect(),
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn properties_hold_for_any_policy(policy in arb_policy(), start in 0i64..4_000_000_000, frac in 0i32..1_000_000_000) {
        let start = Timestamp::new(start, frac).unwrap();
        let s = policy.schedule(start).unwrap();
        prop_assert!(s.validate().is_ok());
        check_properties(&s)?;
    }

    #[test]
    fn properties_hold_for_any_ordered_manifest_waves(
        keys in prop::collection::btree_set(0u32..2048, 1..10),
        gaps in prop::collection::vec(1i64..500_000, 10),
        first in 0i64..4_000_000_000,
    ) {
        let mut t = Timestamp::from_second(first).unwrap();
        let mut s = WaveSchedule::new();
        for (k, g) in keys.into_iter().zip(gaps) {
            s.insert(k, t);
            t += SignedDuration::from_secs(g);
        }
        check_properties(&s)?;
    }
}

/// twoliter#472: Bottlerocket's emergency wave file `ohno.toml` says `start_after = '30
/// minutes'`, which Bottlerocket's parser (hours, days, weeks) refuses, so the file could not be
/// used. Here Bottlerocket's file, unchanged, loads and its waves open at +30, +60, +120, +150
/// minutes.
#[test]
fn twoliter_472_start_after_minutes_parses() {
    let m = SignedDuration::from_mins;
    assert_eq!(
        crate::parse_offset("30 minutes").unwrap(),
        StartAfter::Offset(m(30))
    );
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ohno.toml");
    let policy = WavePolicy::from_path(&file).unwrap();
    let opens: Vec<SignedDuration> = policy
        .schedule(ts(R))
        .unwrap()
        .iter()
        .map(|(_, t)| t.duration_since(ts(R)))
        .collect();
    assert_eq!(opens[..4], [m(30), m(60), m(120), m(150)]);
}
