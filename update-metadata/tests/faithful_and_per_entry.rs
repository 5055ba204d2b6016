//! Issue 11: unknown values survive a rewrite byte for byte, and hosts apply `validate`'s rules
//! entry by entry (one bad entry does not make the manifest unusable for other hosts).

use update_metadata::{Arch, Host, Images, Manifest, Policy, Selection, VersionLock, select};

fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s = format!("{s}: {c}");
        src = c.source();
    }
    s
}

/// Pretty-printed as our writer does (two-space indent), with unknown fields at every level:
/// a number no f64 or u64 can hold, nested objects whose keys are not sorted, odd number forms.
const FAITHFUL: &str = r#"{
  "updates": [
    {
      "variant": "metal-dev",
      "arch": "x86_64",
      "version": "1.0.0",
      "max_version": "1.0.0",
      "waves": {},
      "images": {
        "boot": "b.lz4",
        "root": "r.lz4",
        "hash": "h.lz4",
        "signature": {
          "zeta": 1,
          "alpha": 123456789012345678901234567890
        }
      },
      "status": "Ready",
      "build": {
        "z": [
          3,
          1.50,
          -0.0
        ],
        "a": {
          "y": 1e400,
          "b": 18446744073709551616
        }
      }
    }
  ],
  "migrations": {},
  "serial": 123456789012345678901234567890,
  "datastore_versions": {
    "1.1": "1.0",
    "1.0": "1.0"
  }
}
"#;

#[test]
fn unknown_values_round_trip_byte_for_byte() {
    let m = Manifest::from_slice(FAITHFUL.as_bytes(), "faithful.json").unwrap();
    let out = String::from_utf8(m.to_vec_pretty()).unwrap();
    // The whole file: our writer's layout, and unknown values exactly as they came.
    assert_eq!(out, FAITHFUL);
    // The raw text is what the API hands out, too.
    assert_eq!(
        m.extra.get("serial").unwrap().get(),
        "123456789012345678901234567890"
    );
    let keys: Vec<&str> = m.extra.iter().map(|(k, _)| k).collect();
    assert_eq!(keys, ["serial", "datastore_versions"]);

    // After an edit of known fields, the unknown ones are still byte for byte the same.
    let mut m = m;
    m.add_update(
        "metal-dev".parse().unwrap(),
        Arch::X86_64,
        "1.1.0".parse().unwrap(),
        None,
        Images::new(
            "b2.lz4".parse().unwrap(),
            "r2.lz4".parse().unwrap(),
            "h2.lz4".parse().unwrap(),
        ),
    )
    .unwrap();
    let edited = String::from_utf8(m.to_vec_pretty()).unwrap();
    for fragment in [
        "\"serial\": 123456789012345678901234567890,",
        "\"alpha\": 123456789012345678901234567890",
        "\"signature\": {\n          \"zeta\": 1,\n          \"alpha\": 1234",
        "\"z\": [\n          3,\n          1.50,\n          -0.0\n        ],\n        \"a\": {\n          \"y\": 1e400,\n          \"b\": 18446744073709551616\n        }",
        "\"datastore_versions\": {\n    \"1.1\": \"1.0\",\n    \"1.0\": \"1.0\"\n  }",
    ] {
        assert!(edited.contains(fragment), "{fragment:?} not in\n{edited}");
    }
    // And the new entry got no unknown fields.
    let again = Manifest::from_slice(edited.as_bytes(), "edited").unwrap();
    assert!(again.updates[1].extra.is_empty());
    assert_eq!(again.updates[0].extra, m.updates[0].extra);
}

#[test]
fn duplicate_unknown_keys_are_refused() {
    let json = FAITHFUL.replace("\"status\": \"Ready\",", "\"status\": 1, \"status\": 2,");
    let e = Manifest::from_slice(json.as_bytes(), "dup.json").unwrap_err();
    let c = chain(&e);
    assert!(
        c.contains("updates[0]") && c.contains("duplicate field `status`"),
        "{c}"
    );
}

fn entry(variant: &str, arch: &str, version: &str, waves: &str) -> String {
    format!(
        r#"{{"variant": "{variant}", "arch": "{arch}", "version": "{version}", "max_version": "9.0.0",
          "waves": {{{waves}}}, "images": {{"boot": "b", "root": "r", "hash": "h"}}}}"#
    )
}

/// Entries 0-1: good (metal-dev x86_64); 2: unknown arch; 3: waves out of order (aws-dev);
/// 4-5: duplicates (vmware-dev); 6: wave key above 2048 (metal-dev aarch64); 7: good (aws-dev
/// aarch64); 8: not even an object.
fn mixed() -> String {
    let entries = [
        entry("metal-dev", "x86_64", "1.0.0", ""),
        entry(
            "metal-dev",
            "x86_64",
            "1.1.0",
            r#""0": "2025-01-01T00:00:00Z""#,
        ),
        entry("metal-dev", "riscv64", "1.1.0", ""),
        entry(
            "aws-dev",
            "x86_64",
            "1.1.0",
            r#""0": "2025-02-01T00:00:00Z", "100": "2025-01-01T00:00:00Z""#,
        ),
        entry("vmware-dev", "x86_64", "1.1.0", ""),
        entry("vmware-dev", "x86_64", "1.1.0", ""),
        entry(
            "metal-dev",
            "aarch64",
            "1.1.0",
            r#""0": "2025-01-01T00:00:00Z", "4096": "2025-02-01T00:00:00Z""#,
        ),
        entry("aws-dev", "aarch64", "1.1.0", ""),
        "42".to_owned(),
    ];
    format!(
        "{{\"updates\": [\n{}\n], \"migrations\": {{\"(1.0.0, 1.1.0)\": []}}}}",
        entries.join(",\n")
    )
}

fn host(variant: &str, arch: Arch) -> Host {
    Host {
        variant: variant.parse().unwrap(),
        arch,
        version: "1.0.0".parse().unwrap(),
    }
}

#[test]
fn strict_reader_and_validate_refuse_the_mixed_manifest() {
    // pubsys's view: the file does not even parse (riscv64), and without that entry the first
    // broken rule is reported.
    let text = mixed();
    let e = chain(&Manifest::from_slice(text.as_bytes(), "m.json").unwrap_err());
    assert!(
        e.contains("updates[2].arch") && e.contains("riscv64"),
        "{e}"
    );
    let parsed = Manifest::from_slice_for_hosts(text.as_bytes(), "m.json").unwrap();
    // Re-validating what hosts kept finds nothing: the kept entries obey every rule.
    parsed.validate().unwrap();
}

#[test]
fn hosts_skip_broken_entries_and_refuse_their_own() {
    let text = mixed();
    let m = Manifest::from_slice_for_hosts(text.as_bytes(), "m.json").unwrap();
    let kept: Vec<String> = m.updates.iter().map(|u| u.describe()).collect();
    assert_eq!(
        kept,
        [
            "metal-dev x86_64 1.0.0",
            "metal-dev x86_64 1.1.0",
            "aws-dev aarch64 1.1.0"
        ]
    );
    let rejected: Vec<usize> = m.rejected.iter().map(|r| r.index).collect();
    assert_eq!(rejected, [2, 3, 4, 5, 6, 8]);
    let reason = |i: usize| {
        m.rejected
            .iter()
            .find(|r| r.index == i)
            .unwrap()
            .to_string()
    };
    // Unknown arch: the field, the value, and where it is in the whole file (entry 2 starts on
    // line 6; the value ends at column 42).
    let r2 = reason(2);
    assert!(
        r2.starts_with("updates[2] (metal-dev riscv64 1.1.0): field `updates[2].arch`")
            && r2.contains("riscv64")
            && r2.contains("(line 6, column 42)"),
        "{r2}"
    );
    assert!(reason(3).contains("waves"), "{}", reason(3));
    assert!(
        reason(4).contains("duplicate update vmware-dev x86_64 1.1.0")
            && reason(5).contains("duplicate"),
        "{} / {}",
        reason(4),
        reason(5)
    );
    assert!(
        reason(6).contains("\"4096\" is above 2048"),
        "{}",
        reason(6)
    );
    assert!(reason(8).starts_with("updates[8] (? ? ?)"), "{}", reason(8));

    // Hosts whose entries are fine select as usual.
    let policy = Policy {
        version_lock: VersionLock::Latest,
        ignore_waves: true,
        seed: waves::Seed::new(7).unwrap(),
        now: jiff::Timestamp::UNIX_EPOCH,
        forced: None,
    };
    let ok = host("metal-dev", Arch::X86_64);
    m.check_host(&ok).unwrap();
    assert!(
        matches!(select(&m, &ok, &policy), Selection::Update(u) if u.version.to_string() == "1.1.0")
    );
    m.check_host(&host("aws-dev", Arch::Aarch64)).unwrap();
    // A host with no entries at all is not concerned by others' broken ones.
    m.check_host(&host("other", Arch::X86_64)).unwrap();

    // Hosts with a broken entry of their own are refused, with the entry and the reason.
    for (variant, arch, want) in [
        ("aws-dev", Arch::X86_64, "updates[3]"),
        ("vmware-dev", Arch::X86_64, "updates[4]"),
        ("metal-dev", Arch::Aarch64, "updates[6]"),
    ] {
        let e = m.check_host(&host(variant, arch)).unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("this host ({variant} {arch})")) && msg.contains(want),
            "{msg}"
        );
    }
}

#[test]
fn group_rules_reject_the_whole_group_for_hosts() {
    // Entries of one variant/arch disagree on max_version: neither can be trusted.
    let text = format!(
        "{{\"updates\": [{}, {}, {}]}}",
        entry("metal-dev", "x86_64", "1.0.0", ""),
        entry("metal-dev", "x86_64", "1.1.0", "").replace("9.0.0", "1.1.0"),
        entry("aws-dev", "x86_64", "1.0.0", ""),
    );
    let m = Manifest::from_slice_for_hosts(text.as_bytes(), "m.json").unwrap();
    assert_eq!(m.updates.len(), 1);
    assert_eq!(m.rejected.len(), 2);
    let e = m.check_host(&host("metal-dev", Arch::X86_64)).unwrap_err();
    assert!(e.to_string().contains("disagree on max_version"), "{e}");
    m.check_host(&host("aws-dev", Arch::X86_64)).unwrap();
}

#[test]
fn whole_manifest_errors_stay_errors_for_hosts() {
    for (bad, field) in [
        ("{\"updates\": 5}", "updates"),
        ("{\"migrations\": {}}", "."),
        (
            "{\"updates\": [], \"migrations\": {\"(1.0.0 1.1.0)\": []}}",
            "migrations",
        ),
        ("[]", "."),
        ("{\"updates\": []} trailing", "."),
    ] {
        let e =
            Manifest::from_slice_for_hosts(bad.as_bytes(), "https://r/manifest.json").unwrap_err();
        let c = chain(&e);
        assert!(
            c.contains("https://r/manifest.json") && c.contains(&format!("`{field}`")),
            "{bad}: {c}"
        );
    }
}
