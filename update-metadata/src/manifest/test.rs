use std::path::Path;

use jiff::Timestamp;
use semver::Version;

use super::*;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn variant(s: &str) -> Variant {
    s.parse().unwrap()
}

fn images(tag: &str) -> Images {
    let t = |p: &str| format!("{tag}-{p}.lz4").parse().unwrap();
    Images::new(t("boot"), t("root"), t("hash"))
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

/// (variant, arch, version, max_version) of every entry.
fn rows(m: &Manifest) -> Vec<(String, Arch, String, String)> {
    m.updates
        .iter()
        .map(|u| {
            (
                u.variant.to_string(),
                u.arch,
                u.version.to_string(),
                u.max_version.to_string(),
            )
        })
        .collect()
}

fn row(va: &str, a: Arch, ver: &str, max: &str) -> (String, Arch, String, String) {
    (va.into(), a, ver.into(), max.into())
}

use Arch::{Aarch64 as A, X86_64 as X};

#[test]
fn new_manifest_serialises_like_updata_init() {
    let m = Manifest::new();
    assert_eq!(
        String::from_utf8(m.to_vec_pretty()).unwrap(),
        "{\n  \"updates\": [],\n  \"migrations\": {}\n}\n"
    );
    assert_eq!(Manifest::from_slice(&m.to_vec_pretty(), "x").unwrap(), m);
}

#[test]
fn add_update_max_version_rule() {
    let mut m = Manifest::new();
    // Empty manifest: max_version = version.
    m.add_update(variant("aws-dev"), X, v("1.0.0"), None, images("a"))
        .unwrap();
    assert_eq!(rows(&m), [row("aws-dev", X, "1.0.0", "1.0.0")]);
    // No max given: max(version, updates[0].max_version), applied to same variant+arch.
    m.add_update(variant("aws-dev"), X, v("1.1.0"), None, images("b"))
        .unwrap();
    assert_eq!(
        rows(&m),
        [
            row("aws-dev", X, "1.0.0", "1.1.0"),
            row("aws-dev", X, "1.1.0", "1.1.0")
        ]
    );
    // Other arch: takes updates[0]'s max if higher, and does not touch x86_64 entries.
    m.add_update(variant("aws-dev"), A, v("0.9.0"), None, images("c"))
        .unwrap();
    assert_eq!(m.updates[2].max_version, v("1.1.0"));
    // Explicit max: set on all same variant+arch entries only.
    m.add_update(
        variant("aws-dev"),
        X,
        v("1.2.0"),
        Some(v("2.0.0")),
        images("d"),
    )
    .unwrap();
    assert_eq!(
        rows(&m),
        [
            row("aws-dev", X, "1.0.0", "2.0.0"),
            row("aws-dev", X, "1.1.0", "2.0.0"),
            row("aws-dev", A, "0.9.0", "1.1.0"),
            row("aws-dev", X, "1.2.0", "2.0.0"),
        ]
    );
    // Other variant, no max: max(version, updates[0].max_version) (Bottlerocket uses the first
    // entry regardless of variant).
    m.add_update(variant("metal-dev"), X, v("1.5.0"), None, images("e"))
        .unwrap();
    assert_eq!(m.updates[4].max_version, v("2.0.0"));
    assert_eq!(m.updates[0].max_version, v("2.0.0"));
    // An explicit max below the version is allowed (withdrawn on arrival), as in Bottlerocket.
    m.add_update(
        variant("metal-dev"),
        X,
        v("3.0.0"),
        Some(v("1.5.0")),
        images("f"),
    )
    .unwrap();
    assert_eq!(m.updates[4].max_version, v("1.5.0"));
    // New entries start with no waves.
    assert!(m.updates.iter().all(|u| u.waves.is_empty()));
    // Duplicates are refused, naming the entry.
    let e = m
        .add_update(variant("aws-dev"), X, v("1.1.0"), None, images("z"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("aws-dev x86_64 1.1.0"), "{e}");
    assert_eq!(m.updates.len(), 6);
}

#[test]
fn remove_update_exact_match_only() {
    let mut m = Manifest::new();
    m.add_update(variant("aws-dev"), X, v("1.0.0"), None, images("a"))
        .unwrap();
    m.add_update(variant("aws-dev"), A, v("1.0.0"), None, images("b"))
        .unwrap();
    m.add_update(variant("aws-dev"), X, v("1.1.0"), None, images("c"))
        .unwrap();
    assert_eq!(m.remove_update(&variant("aws-dev"), X, &v("1.2.0")), 0);
    assert_eq!(m.remove_update(&variant("other"), X, &v("1.0.0")), 0);
    assert_eq!(m.remove_update(&variant("aws-dev"), X, &v("1.1.0")), 1);
    // max_version is not reverted.
    assert_eq!(
        rows(&m),
        [
            row("aws-dev", X, "1.0.0", "1.1.0"),
            row("aws-dev", A, "1.0.0", "1.0.0")
        ]
    );
}

#[test]
fn set_max_version_filters() {
    let build = || {
        let mut m = Manifest::new();
        for (va, a, ver) in [
            ("a", X, "1.0.0"),
            ("a", A, "1.0.0"),
            ("b", X, "1.0.0"),
            ("b", A, "1.0.0"),
        ] {
            m.add_update(
                variant(va),
                a,
                v(ver),
                Some(v("1.0.0")),
                images(&format!("{va}{a}")),
            )
            .unwrap();
        }
        m
    };
    let max = v("0.9.0");
    type Case<'a> = (Option<Arch>, Option<&'a str>, usize, [bool; 4]);
    let cases: [Case<'_>; 4] = [
        (None, None, 4, [true, true, true, true]),
        (Some(X), None, 2, [true, false, true, false]),
        (None, Some("b"), 2, [false, false, true, true]),
        (Some(A), Some("a"), 1, [false, true, false, false]),
    ];
    for (arch, va, count, changed) in cases {
        let mut m = build();
        let va = va.map(variant);
        assert_eq!(m.set_max_version(&max, arch, va.as_ref()), count);
        let got: Vec<bool> = m.updates.iter().map(|u| u.max_version == max).collect();
        assert_eq!(got, changed, "{arch:?} {va:?}");
    }
}

#[test]
fn set_waves_applies_policy_and_checks_order() {
    let mut m = Manifest::new();
    m.add_update(variant("aws-dev"), X, v("1.0.0"), None, images("a"))
        .unwrap();
    m.add_update(variant("aws-dev"), A, v("1.0.0"), None, images("b"))
        .unwrap();
    let policy = waves::WavePolicy::builtin("accelerated").unwrap();
    let start = ts("2025-01-01T00:00:00Z");
    assert_eq!(
        m.set_waves(&variant("aws-dev"), X, &v("1.0.0"), &policy, start)
            .unwrap(),
        1
    );
    let keys: Vec<u32> = m.updates[0].waves.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, [0, 61, 245, 819, 1638]);
    assert!(m.updates[1].waves.is_empty());
    // No match: Ok(0), nothing changes.
    assert_eq!(
        m.set_waves(&variant("aws-dev"), X, &v("9.0.0"), &policy, start)
            .unwrap(),
        0
    );
    // Replaces, not merges.
    let one = waves::WavePolicy::from_toml(
        "[[waves]]\nstart_after = '1 hour'\nfleet_percentage = 100\n",
        Path::new("one.toml"),
    )
    .unwrap();
    m.set_waves(&variant("aws-dev"), X, &v("1.0.0"), &one, start)
        .unwrap();
    assert_eq!(m.updates[0].waves.len(), 1);
    // Another entry with unordered waves makes set_waves fail (Bottlerocket validates all).
    m.updates[1].waves = [
        (0, ts("2025-01-02T00:00:00Z")),
        (20, ts("2025-01-01T00:00:00Z")),
    ]
    .into_iter()
    .collect();
    let e = m
        .set_waves(&variant("aws-dev"), X, &v("1.0.0"), &policy, start)
        .unwrap_err();
    let chain = format!("{e} / {}", std::error::Error::source(&e).unwrap());
    assert!(
        chain.contains("aws-dev aarch64 1.0.0")
            && chain.contains("waves")
            && chain.contains("key 20"),
        "{chain}"
    );
}

fn valid_manifest() -> Manifest {
    let mut m = Manifest::new();
    let start = ts("2025-01-01T00:00:00Z");
    let policy = waves::WavePolicy::builtin("default").unwrap();
    for ver in ["1.0.0", "1.1.0", "1.2.0"] {
        m.add_update(variant("aws-dev"), X, v(ver), None, images(ver))
            .unwrap();
        m.set_waves(&variant("aws-dev"), X, &v(ver), &policy, start)
            .unwrap();
    }
    let r = Release::from_toml(
        "version = \"1.2.0\"\n[migrations]\n\"(1.0.0, 1.1.0)\" = [\"migrate_v1.1.0_a.lz4\"]\n\"(1.1.0, 1.2.0)\" = []\n",
        "Release.toml",
    )
    .unwrap();
    m.set_migrations(&r);
    m
}

#[test]
fn validate_rules() {
    valid_manifest().validate().unwrap();
    type Break = fn(&mut Manifest);
    let cases: [(&str, Break, &[&str]); 6] = [
        (
            "unordered waves",
            |m| {
                m.updates[1].waves.insert(2000, ts("2020-01-01T00:00:00Z"));
            },
            &["aws-dev x86_64 1.1.0", "waves"],
        ),
        (
            "duplicate entry",
            |m| {
                let dup = m.updates[0].clone();
                m.updates.push(dup);
            },
            &["updates[3]", "updates[0]", "aws-dev x86_64 1.0.0"],
        ),
        (
            "max_version mismatch",
            |m| {
                m.updates[2].max_version = v("1.3.0");
            },
            &["aws-dev x86_64", "1.2.0", "1.3.0"],
        ),
        (
            "everything withdrawn",
            |m| {
                m.set_max_version(&v("0.9.0"), None, None);
            },
            &["max_version 0.9.0", "lowest 1.0.0"],
        ),
        (
            "chain gap",
            |m| {
                let mut r = Release {
                    version: v("1.2.0"),
                    migrations: m.migrations.clone(),
                };
                r.migrations = r
                    .migrations
                    .iter()
                    .filter(|(f, _, _)| **f != v("1.1.0"))
                    .map(|(f, t, n)| ((f.clone(), t.clone()), n.to_vec()))
                    .collect();
                m.set_migrations(&r);
            },
            &["between 1.1.0 and 1.2.0"],
        ),
        (
            "chain gap at a migration endpoint",
            |m| {
                let mut mig = m.migrations.clone();
                mig.insert(v("1.2.0"), v("1.4.0"), vec![]);
                mig.insert(v("1.3.0"), v("1.4.0"), vec![]);
                m.migrations = mig;
            },
            &["between 1.2.0 and 1.3.0"],
        ),
    ];
    for (name, breaker, wants) in cases {
        let mut m = valid_manifest();
        breaker(&mut m);
        let e = m.validate().unwrap_err();
        let mut chain = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            chain = format!("{chain} / {s}");
            src = s.source();
        }
        for want in wants {
            assert!(chain.contains(want), "{name}: {chain} (missing {want:?})");
        }
    }
    // Withdrawn entries above max_version are fine while something remains offerable.
    let mut m = valid_manifest();
    m.set_max_version(&v("1.1.0"), None, None);
    m.validate().unwrap();
}

#[test]
fn unknown_fields_survive_edits() {
    let json = br#"{"updates": [{"variant": "aws-dev", "arch": "x86_64", "version": "1.0.0",
        "max_version": "1.0.0", "waves": {}, "status": "Ready", "x": {"y": [1, 2]},
        "images": {"boot": "b", "root": "r", "hash": "h", "extra_image": "e"}}],
        "migrations": {}, "datastore_versions": {"1.0": "1.0"}, "future": 7}"#;
    let mut m = Manifest::from_slice(json, "m.json").unwrap();
    m.add_update(variant("aws-dev"), X, v("1.1.0"), None, images("n"))
        .unwrap();
    let out: serde_json::Value = serde_json::from_slice(&m.to_vec_pretty()).unwrap();
    assert_eq!(out["datastore_versions"]["1.0"], "1.0");
    assert_eq!(out["future"], 7);
    assert_eq!(out["updates"][0]["status"], "Ready");
    assert_eq!(out["updates"][0]["x"]["y"][1], 2);
    assert_eq!(out["updates"][0]["images"]["extra_image"], "e");
    assert_eq!(out["updates"][0]["max_version"], "1.1.0");
    assert!(out["updates"][1].get("status").is_none());
}

#[test]
fn malformed_manifests_name_field_and_value() {
    let base = r#"{"updates": [{"variant": "aws-dev", "arch": "x86_64", "version": "1.0.0", "max_version": "1.0.0", "waves": {}, "images": {"boot": "b", "root": "r", "hash": "h"}}], "migrations": {}}"#;
    let cases = [
        ("\"x86_64\"", "\"riscv\"", "updates[0].arch", "riscv"),
        ("\"aws-dev\"", "\"AWS\"", "updates[0].variant", "AWS"),
        (
            "\"version\": \"1.0.0\"",
            "\"version\": \"1.0\"",
            "updates[0].version",
            "1.0",
        ),
        (
            "\"max_version\": \"1.0.0\"",
            "\"max_version\": \"v1.0.0\"",
            "updates[0].max_version",
            "v1.0.0",
        ),
        (
            "\"boot\": \"b\"",
            "\"boot\": \"../b\"",
            "updates[0].images.boot",
            "../b",
        ),
        (
            "\"waves\": {}",
            "\"waves\": {\"x\": \"2019-01-01T00:00:00Z\"}",
            "updates[0].waves",
            "\"x\"",
        ),
        (
            "\"waves\": {}",
            "\"waves\": {\"0\": \"soon\"}",
            "updates[0].waves",
            "\"soon\"",
        ),
        (
            "\"migrations\": {}",
            "\"migrations\": {\"(1.0.0 1.1.0)\": []}",
            "migrations",
            "(1.0.0 1.1.0)",
        ),
        (
            "\"migrations\": {}",
            "\"migrations\": {\"(1.0.0, 1.1.0)\": [], \"(1.0.0,1.1.0)\": []}",
            "migrations",
            "duplicate migration key",
        ),
        (
            "\"images\": {\"boot\": \"b\", ",
            "\"images\": {",
            "updates[0].images",
            "boot",
        ),
        ("}], ", "}, 5], ", "updates[1]", "integer"),
    ];
    for (from, to, field, value) in cases {
        let json = base.replacen(from, to, 1);
        assert_ne!(json, base, "{from}");
        let e = Manifest::from_slice(json.as_bytes(), "https://example.test/manifest.json")
            .unwrap_err();
        let chain = format!("{e} / {}", std::error::Error::source(&e).unwrap());
        assert!(
            chain.contains("https://example.test/manifest.json"),
            "{chain}"
        );
        assert!(
            chain.contains(&format!("`{field}`")),
            "{chain} (want field {field})"
        );
        assert!(chain.contains(value), "{chain} (want value {value})");
    }
    let e = Manifest::from_slice(b"{\"updates\": []} x", "m")
        .unwrap_err()
        .to_string();
    assert!(e.contains("m:"), "{e}");
    assert!(Manifest::from_slice(b"", "m").is_err());
}
