//! Bottlerocket's own test manifests, wave files and release files (tests/data/bottlerocket/,
//! byte-exact copies; see its README.md), with the expectations of Bottlerocket's tests.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use update_metadata::{
    Arch, Host, Manifest, Policy, Release, Selection, Version, VersionLock, select,
};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bottlerocket")
        .join(name)
}

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s = format!("{s} / {x}");
        src = x.source();
    }
    s
}

const GOOD: &[&str] = &[
    "example.json",
    "example_2.json",
    "example_3_aarch64.json",
    "example_3_x86_64.json",
    "multiple_aarch64.json",
    "multiple_x86_64.json",
    "regret.json",
    "single_wave.json",
    "migrations.json",
];

/// Every good fixture parses, rewrites to the same JSON value (unknown fields kept; times in
/// canonical form), and the rewrite is a fixed point.
#[test]
fn round_trip_every_fixture() {
    for name in GOOD {
        let path = data(name);
        let original_bytes = std::fs::read(&path).unwrap();
        let m = Manifest::load(&path).unwrap_or_else(|e| panic!("{name}: {}", chain(&e)));
        let out = m.to_vec_pretty();
        let again = Manifest::from_slice(&out, name).unwrap();
        assert_eq!(again, m, "{name}");
        assert_eq!(
            again.to_vec_pretty(),
            out,
            "{name}: rewrite is not a fixed point"
        );
        // Same JSON value as the original, once the original's lenient times are canonical.
        let canonical = String::from_utf8(original_bytes)
            .unwrap()
            .replace("2019-8-", "2019-08-");
        let want: serde_json::Value = serde_json::from_str(&canonical).unwrap();
        let got: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn bad_bound_is_rejected_naming_field_and_value() {
    let e = Manifest::load(&data("bad-bound.json")).unwrap_err();
    let msg = chain(&e);
    assert!(msg.contains("bad-bound.json"), "{msg}");
    assert!(msg.contains("`updates[0].waves`"), "{msg}");
    assert!(msg.contains("\"234ab32\""), "{msg}");
    // The large number alone is accepted (as in Bottlerocket).
    let text = std::fs::read_to_string(data("bad-bound.json")).unwrap();
    let without = text.replace(",\n        \"234ab32\":\"2019-10-08T15:00:00Z\"", "");
    assert_ne!(without, text);
    let m = Manifest::from_slice(without.as_bytes(), "edited").unwrap();
    assert_eq!(
        m.updates[0].waves.get(2342352),
        Some("2019-10-07T15:00:00Z".parse().unwrap())
    );
}

#[test]
fn duplicate_bound_is_rejected_naming_field_and_value() {
    let e = Manifest::load(&data("duplicate-bound.json")).unwrap_err();
    let msg = chain(&e);
    assert!(msg.contains("duplicate-bound.json"), "{msg}");
    assert!(msg.contains("`updates[0].waves`"), "{msg}");
    assert!(msg.contains("duplicate wave bound key \"0\""), "{msg}");
}

/// A flipped byte in a wave key: a clear error naming the key.
#[test]
fn flipped_byte_in_wave_key() {
    let text = std::fs::read(data("example.json")).unwrap();
    let pos = text.windows(5).position(|w| w == b"\"500\"").unwrap() + 2;
    let mut bad = text.clone();
    bad[pos] = b'O';
    let msg = chain(&Manifest::from_slice(&bad, "example.json").unwrap_err());
    assert!(
        msg.contains("`updates[0].waves`") && msg.contains("\"5O0\""),
        "{msg}"
    );
}

#[test]
fn example_json_expectations() {
    let m = Manifest::load(&data("example.json")).unwrap();
    assert!(!m.updates.is_empty());
    assert!(!m.migrations.is_empty());
    assert_eq!(
        m.migrations.get(&v("1.11.0"), &v("1.12.0")).unwrap()[0].as_str(),
        "migrate_1.12.0_foo"
    );
    assert_eq!(m.updates[0].extra.get("status").unwrap().get(), "\"Ready\"");
}

#[test]
fn example_2_month_without_leading_zero() {
    let m = Manifest::load(&data("example_2.json")).unwrap();
    assert!(!m.updates.is_empty());
    let times: Vec<String> = m.updates[0]
        .waves
        .iter()
        .map(|(_, t)| t.to_string())
        .collect();
    assert_eq!(
        times,
        [
            "2019-08-06T15:00:00Z",
            "2019-08-07T15:00:00Z",
            "2019-08-31T15:00:00Z"
        ]
    );
    let out = String::from_utf8(m.to_vec_pretty()).unwrap();
    assert!(out.contains("\"500\": \"2019-08-07T15:00:00Z\""), "{out}");
}

fn policy(seed: u32, lock: VersionLock, forced: Option<Version>) -> Policy {
    Policy {
        version_lock: lock,
        ignore_waves: false,
        seed: waves::Seed::new(seed).unwrap(),
        now: "2026-01-01T00:00:00Z".parse::<Timestamp>().unwrap(),
        forced,
    }
}

fn chosen(s: Selection<'_>) -> Option<String> {
    match s {
        Selection::Update(u) => Some(u.version.to_string()),
        _ => None,
    }
}

/// updog `test_versions`: regret.json, running 1.18.0, seed 123, latest: no update.
#[test]
fn regret_never_past_max_version() {
    let m = Manifest::load(&data("regret.json")).unwrap();
    let host = Host {
        variant: "bottlerocket-aws-eks".parse().unwrap(),
        arch: Arch::X86_64,
        version: v("1.18.0"),
    };
    assert_eq!(
        select(&m, &host, &policy(123, VersionLock::Latest, None)),
        Selection::NothingNewer
    );
}

/// updog `test_multiple` and `force_update_version`, for both arches.
#[test]
fn multiple_picks_highest_valid_for_arch() {
    for (file, arch) in [
        ("multiple_x86_64.json", Arch::X86_64),
        ("multiple_aarch64.json", Arch::Aarch64),
    ] {
        let m = Manifest::load(&data(file)).unwrap();
        let host = Host {
            variant: "bottlerocket-aws-eks".parse().unwrap(),
            arch,
            version: v("1.10.0"),
        };
        assert_eq!(
            chosen(select(&m, &host, &policy(123, VersionLock::Latest, None))).as_deref(),
            Some("1.15.0"),
            "{file}"
        );
        let forced = select(
            &m,
            &host,
            &policy(123, VersionLock::Latest, Some(v("1.13.0"))),
        );
        assert_eq!(chosen(forced).as_deref(), Some("1.13.0"), "{file}");
    }
}

/// updog `older_versions`: running 0.1.3 above max_version 0.1.2, seed 1487: "update" to 0.1.2.
#[test]
fn example_3_pull_back() {
    for (file, arch) in [
        ("example_3_x86_64.json", Arch::X86_64),
        ("example_3_aarch64.json", Arch::Aarch64),
    ] {
        let m = Manifest::load(&data(file)).unwrap();
        let host = Host {
            variant: "aws-k8s-1.15".parse().unwrap(),
            arch,
            version: v("0.1.3"),
        };
        assert_eq!(
            chosen(select(&m, &host, &policy(1487, VersionLock::Latest, None))).as_deref(),
            Some("0.1.2"),
            "{file}"
        );
    }
}

/// update_metadata `test_migrations_forward` / `test_migrations_backward`.
#[test]
fn migrations_test_vector() {
    let m = Manifest::load(&data("migrations.json")).unwrap();
    let names = |f: &str, t: &str| -> Vec<String> {
        m.find_migrations(&v(f), &v(t))
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    };
    assert_eq!(
        names("1.0.0", "1.5.0"),
        [
            "migration_1.1.0_a",
            "migration_1.1.0_b",
            "migration_1.5.0_shortcut"
        ]
    );
    assert_eq!(
        names("1.5.0", "1.0.0"),
        [
            "migration_1.5.0_shortcut",
            "migration_1.1.0_b",
            "migration_1.1.0_a"
        ]
    );
    let e = m
        .find_migrations(&v("1.0.0"), &v("1.6.0"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("1.5.0") && e.contains("1.6.0"), "{e}");
}

/// updata `test_migration_copy` and `test_migration_update`: migrations replaced wholesale.
#[test]
fn release_toml_sets_migrations() {
    let r = Release::from_path(&data("release.toml")).unwrap();
    assert_eq!(r.version, v("0.2.2"));
    assert_eq!(r.migrations.len(), 3);
    assert_eq!(
        r.migrations
            .get(&v("0.0.0"), &v("0.0.2"))
            .unwrap()
            .iter()
            .map(|n| n.as_str())
            .collect::<Vec<_>>(),
        [
            "migrate_0.0.1_foo",
            "migrate_0.0.1_baz",
            "migrate_0.0.2_bar"
        ]
    );
    let mut blank = Manifest::new();
    blank.set_migrations(&r);
    assert_eq!(blank.migrations, r.migrations);
    let mut example = Manifest::load(&data("example.json")).unwrap();
    example.set_migrations(&r);
    assert_eq!(example.migrations, r.migrations);
    let out = String::from_utf8(example.to_vec_pretty()).unwrap();
    assert!(
        out.contains("\"(0.0.0, 0.0.1)\": [") && !out.contains("1.11.0"),
        "{out}"
    );
    // Keys are written sorted by version pair.
    let a = out.find("(0.0.0, 0.0.1)").unwrap();
    let b = out.find("(0.0.0, 0.0.2)").unwrap();
    let c = out.find("(0.0.2, 0.0.3)").unwrap();
    assert!(a < b && b < c, "{out}");
}

#[test]
fn twoliter_release_files() {
    assert_eq!(
        Release::from_path(&data("Release-1.toml")).unwrap().version,
        v("1.0.0")
    );
    assert_eq!(
        Release::from_path(&data("Release-2.toml")).unwrap().version,
        v("2.0.0")
    );
}

/// updata `test_set_waves`: default_waves.toml on single_wave.json gives exactly 4 waves.
#[test]
fn set_waves_on_single_wave() {
    let mut m = Manifest::load(&data("single_wave.json")).unwrap();
    let policy = waves::WavePolicy::from_path(&data("default_waves.toml")).unwrap();
    let start: Timestamp = "2025-08-25T17:00:00Z".parse().unwrap();
    let n = m
        .set_waves(
            &"bottlerocket-aws-eks".parse().unwrap(),
            Arch::X86_64,
            &v("1.13.0"),
            &policy,
            start,
        )
        .unwrap();
    assert_eq!(n, 1);
    let keys: Vec<u32> = m.updates[0].waves.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [0, 20, 204, 512]);
    assert!(m.extra.contains_key("datastore_versions"));
}

#[test]
fn validate_on_fixtures() {
    // Consistent manifests with one version (or a full chain) validate.
    for ok in [
        "example.json",
        "example_2.json",
        "single_wave.json",
        "migrations.json",
    ] {
        Manifest::load(&data(ok))
            .unwrap()
            .validate()
            .unwrap_or_else(|e| panic!("{ok}: {}", chain(&e)));
    }
    // regret.json: a wave key far above 2048 (Bottlerocket ignores it; we refuse it), and every
    // entry withdrawn.
    let mut regret = Manifest::load(&data("regret.json")).unwrap();
    let e = chain(&regret.validate().unwrap_err());
    assert!(
        e.contains("1.25.0") && e.contains("\"858993459\" is above 2048"),
        "{e}"
    );
    for u in &mut regret.updates {
        u.waves.clear();
    }
    let e = chain(&regret.validate().unwrap_err());
    assert!(
        e.contains("max_version 1.20.0") && e.contains("1.25.0"),
        "{e}"
    );
    // example_3: equal wave times (Bottlerocket's set_waves would also refuse them).
    let e = chain(
        &Manifest::load(&data("example_3_x86_64.json"))
            .unwrap()
            .validate()
            .unwrap_err(),
    );
    assert!(e.contains("0.1.1") && e.contains("waves"), "{e}");
    // multiple: several versions and no migrations: the chain is broken (checked once the
    // out-of-range wave keys are gone).
    let mut multiple = Manifest::load(&data("multiple_x86_64.json")).unwrap();
    for u in &mut multiple.updates {
        u.waves.clear();
    }
    let e = chain(&multiple.validate().unwrap_err());
    assert!(
        e.contains("chain is broken between 1.13.0 and 1.15.0"),
        "{e}"
    );
}
