use jiff::Timestamp;
use semver::Version;
use waves::Seed;

use super::*;
use crate::manifest::Images;

fn v(s: &str) -> Version {
    Version::parse(s).unwrap()
}

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const START: &str = "2025-01-01T00:00:00Z";

/// aws-dev x86_64: 1.0.0, 1.1.0 (waves default from START), 1.2.0 (withdrawn: above max
/// 1.1.0); aarch64: 1.0.0.
fn manifest() -> Manifest {
    let mut m = Manifest::new();
    let va: Variant = "aws-dev".parse().unwrap();
    let img = |t: &str| Images::new(t.parse().unwrap(), t.parse().unwrap(), t.parse().unwrap());
    m.add_update(va.clone(), Arch::X86_64, v("1.0.0"), None, img("a"))
        .unwrap();
    m.add_update(va.clone(), Arch::X86_64, v("1.1.0"), None, img("b"))
        .unwrap();
    m.add_update(
        va.clone(),
        Arch::X86_64,
        v("1.2.0"),
        Some(v("1.1.0")),
        img("c"),
    )
    .unwrap();
    m.add_update(va.clone(), Arch::Aarch64, v("1.0.0"), None, img("d"))
        .unwrap();
    let policy = waves::WavePolicy::builtin("default").unwrap();
    m.set_waves(&va, Arch::X86_64, &v("1.1.0"), &policy, ts(START))
        .unwrap();
    m
}

fn host(version: &str) -> Host {
    Host {
        variant: "aws-dev".parse().unwrap(),
        arch: Arch::X86_64,
        version: v(version),
    }
}

fn policy(lock: &str, seed: u32, now: &str) -> Policy {
    Policy {
        version_lock: lock.parse().unwrap(),
        ignore_waves: false,
        seed: Seed::new(seed).unwrap(),
        now: ts(now),
        forced: None,
    }
}

#[derive(Debug, PartialEq)]
enum Want {
    Update(&'static str),
    NothingNewer,
    Locked(&'static str),
    NotInWaveYet(&'static str),
    NoUpdateForHost,
    ForcedNotFound(&'static str),
}

fn simplify(s: Selection<'_>) -> (Want, Option<Timestamp>) {
    match s {
        Selection::Update(u) => (
            Want::Update(Box::leak(u.version.to_string().into_boxed_str())),
            None,
        ),
        Selection::NothingNewer => (Want::NothingNewer, None),
        Selection::Locked { lock } => (
            Want::Locked(Box::leak(lock.to_string().into_boxed_str())),
            None,
        ),
        Selection::NotInWaveYet { version, opens_at } => (
            Want::NotInWaveYet(Box::leak(version.to_string().into_boxed_str())),
            Some(opens_at),
        ),
        Selection::NoUpdateForHost => (Want::NoUpdateForHost, None),
        Selection::ForcedNotFound { version } => (
            Want::ForcedNotFound(Box::leak(version.to_string().into_boxed_str())),
            None,
        ),
    }
}

#[test]
fn selection_table() {
    let m = manifest();
    let late = "2026-01-01T00:00:00Z";
    // Under the default policy, seed 2047 opens at START + 7 days.
    let early = "2025-01-02T00:00:00Z";
    let cases: Vec<(&str, Host, Policy, Want)> = vec![
        (
            "newer in wave",
            host("1.0.0"),
            policy("latest", 5, late),
            Want::Update("1.1.0"),
        ),
        (
            "already newest",
            host("1.1.0"),
            policy("latest", 5, late),
            Want::NothingNewer,
        ),
        (
            "withdrawn never offered",
            host("1.1.0"),
            policy("latest", 5, late),
            Want::NothingNewer,
        ),
        (
            "pull-back above max",
            host("1.2.0"),
            policy("latest", 5, late),
            Want::Update("1.1.0"),
        ),
        (
            "pull-back from unlisted",
            host("1.5.0"),
            policy("latest", 5, late),
            Want::Update("1.1.0"),
        ),
        (
            "wave not open; older not newer",
            host("1.0.0"),
            policy("latest", 2047, early),
            Want::NotInWaveYet("1.1.0"),
        ),
        (
            "ignore waves",
            host("1.0.0"),
            Policy {
                ignore_waves: true,
                ..policy("latest", 2047, early)
            },
            Want::Update("1.1.0"),
        ),
        (
            "seed 0 waits for the first wave",
            host("1.0.0"),
            policy("latest", 0, START),
            Want::NotInWaveYet("1.1.0"),
        ),
        (
            "locked to current",
            host("1.0.0"),
            policy("v1.0.0", 5, late),
            Want::Locked("1.0.0"),
        ),
        (
            "locked to listed",
            host("1.1.0"),
            policy("1.0.0", 5, late),
            Want::Update("1.0.0"),
        ),
        (
            "locked to withdrawn",
            host("1.0.0"),
            policy("1.2.0", 5, late),
            Want::Locked("1.2.0"),
        ),
        (
            "locked to missing",
            host("1.0.0"),
            policy("v3.0.0", 5, late),
            Want::Locked("3.0.0"),
        ),
        (
            "locked, wave closed",
            host("1.0.0"),
            policy("1.1.0", 2047, early),
            Want::NotInWaveYet("1.1.0"),
        ),
        (
            "forced downgrade",
            host("1.1.0"),
            Policy {
                forced: Some(v("1.0.0")),
                ..policy("latest", 5, late)
            },
            Want::Update("1.0.0"),
        ),
        (
            "forced withdrawn",
            host("1.0.0"),
            Policy {
                forced: Some(v("1.2.0")),
                ..policy("latest", 5, late)
            },
            Want::ForcedNotFound("1.2.0"),
        ),
        (
            "forced missing",
            host("1.0.0"),
            Policy {
                forced: Some(v("9.0.0")),
                ..policy("latest", 5, late)
            },
            Want::ForcedNotFound("9.0.0"),
        ),
        (
            "forced beats lock",
            host("1.0.0"),
            Policy {
                forced: Some(v("1.1.0")),
                ..policy("1.0.0", 5, late)
            },
            Want::Update("1.1.0"),
        ),
        (
            "forced still waits for wave",
            host("1.0.0"),
            Policy {
                forced: Some(v("1.1.0")),
                ..policy("latest", 2047, early)
            },
            Want::NotInWaveYet("1.1.0"),
        ),
        (
            "forced, waves ignored",
            host("1.0.0"),
            Policy {
                forced: Some(v("1.1.0")),
                ignore_waves: true,
                ..policy("latest", 2047, early)
            },
            Want::Update("1.1.0"),
        ),
        (
            "other variant",
            Host {
                variant: "metal-dev".parse().unwrap(),
                ..host("1.0.0")
            },
            policy("latest", 5, late),
            Want::NoUpdateForHost,
        ),
        (
            "other arch only older",
            Host {
                arch: Arch::Aarch64,
                ..host("1.0.0")
            },
            policy("latest", 5, late),
            Want::NothingNewer,
        ),
    ];
    for (name, h, p, want) in cases {
        let (got, opens) = simplify(select(&m, &h, &p));
        assert_eq!(got, want, "{name}");
        if let Want::NotInWaveYet(_) = want {
            let u = m
                .updates
                .iter()
                .find(|u| u.version == v("1.1.0") && u.arch == Arch::X86_64)
                .unwrap();
            assert_eq!(opens, u.waves.opens_at(p.seed), "{name}");
            // At that instant the same host gets the update.
            let then = Policy {
                now: opens.unwrap(),
                ..p.clone()
            };
            assert!(
                matches!(select(&m, &h, &then), Selection::Update(_)),
                "{name}"
            );
        }
    }
}

#[test]
fn older_open_wave_is_taken_while_newest_waits() {
    // 1.1.0 open for everyone, 1.2.0 only later: a host on 1.0.0 takes 1.1.0 now (Bottlerocket
    // filters by wave before choosing).
    let mut m = manifest();
    m.set_max_version(&v("1.2.0"), None, None);
    let policy_all = waves::WavePolicy::builtin("default").unwrap();
    m.set_waves(
        &"aws-dev".parse().unwrap(),
        Arch::X86_64,
        &v("1.2.0"),
        &policy_all,
        ts("2025-06-01T00:00:00Z"),
    )
    .unwrap();
    let p = policy("latest", 100, "2025-03-01T00:00:00Z");
    assert!(
        matches!(select(&m, &host("1.0.0"), &p), Selection::Update(u) if u.version == v("1.1.0"))
    );
    // A host already on 1.1.0 learns when 1.2.0 opens.
    match select(&m, &host("1.1.0"), &p) {
        Selection::NotInWaveYet { version, opens_at } => {
            assert_eq!(version, v("1.2.0"));
            assert!(opens_at > ts("2025-06-01T00:00:00Z"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn applicable_is_sorted_and_filtered() {
    let m = manifest();
    let got: Vec<String> = applicable(&m, &host("1.0.0"))
        .iter()
        .map(|u| u.version.to_string())
        .collect();
    assert_eq!(got, ["1.1.0", "1.0.0"]);
}

#[test]
fn version_lock_parse() {
    assert_eq!(
        "latest".parse::<VersionLock>().unwrap(),
        VersionLock::Latest
    );
    assert_eq!(
        "v1.2.3".parse::<VersionLock>().unwrap(),
        VersionLock::Locked(v("1.2.3"))
    );
    assert_eq!(
        "1.2.3".parse::<VersionLock>().unwrap(),
        VersionLock::Locked(v("1.2.3"))
    );
    for bad in ["", "Latest", "1.2", "vv1.2.3", "newest"] {
        let e = bad.parse::<VersionLock>().unwrap_err().to_string();
        assert!(e.contains(&format!("{bad:?}")), "{e}");
    }
    assert_eq!(VersionLock::Locked(v("1.2.3")).to_string(), "v1.2.3");
    let l: VersionLock = serde_json::from_str("\"v1.0.0\"").unwrap();
    assert_eq!(serde_json::to_string(&l).unwrap(), "\"v1.0.0\"");
}
