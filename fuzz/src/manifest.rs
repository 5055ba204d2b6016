//! The manifest target: `Manifest::from_slice` + `validate`, with JSON-aware mutations.

use crate::{Rng, Target, mutate_bytes};
use serde_json::Value;
use update_metadata::Manifest;

const STRINGS: &[&str] = &[
    "",
    "1.0.0",
    "0.0.0",
    "1.0",
    "01.0.0",
    "1.0.0-rc.1",
    "18446744073709551616.0.0",
    "x86_64",
    "aarch64",
    "riscv64",
    "aws-dev",
    "bottlerocket-aws-eks",
    "../../etc/passwd",
    "a/b",
    "2019-08-06T15:00:00Z",
    "2019-8-06T15:00:00Z",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "-009999-01-01T00:00:00Z",
    "Ready",
    "\u{0}",
];

const KEYS: &[&str] = &[
    "0",
    "1",
    "500",
    "1024",
    "2047",
    "2048",
    "2049",
    "-1",
    "4294967296",
    "(1.0.0, 1.1.0)",
    "(1.1.0, 1.0.0)",
    "(1.0.0, 1.0.0)",
    "updates",
    "migrations",
    "max_version",
    "waves",
    "images",
];

fn interesting_value(rng: &mut Rng) -> Value {
    match rng.below(8) {
        0 => Value::from(*rng.pick(&[0i64, -1, 1, 2047, 2048, i64::MAX, i64::MIN])),
        1 => Value::from(u64::MAX),
        2 => serde_json::json!(1e308),
        3 => Value::Null,
        4 => Value::Bool(rng.chance(50)),
        5 => Value::Array(Vec::new()),
        6 => Value::Object(Default::default()),
        _ => Value::from(*rng.pick(STRINGS)),
    }
}

/// Counts the nodes of a JSON value.
fn count(v: &Value) -> usize {
    1 + match v {
        Value::Array(a) => a.iter().map(count).sum(),
        Value::Object(o) => o.values().map(count).sum(),
        _ => 0,
    }
}

/// Mutates the `target`-th node (pre-order); returns the remaining index.
fn mutate_node(rng: &mut Rng, v: &mut Value, target: &mut usize) -> bool {
    if *target == 0 {
        match v {
            Value::Object(o) if !o.is_empty() && rng.chance(60) => {
                let keys: Vec<String> = o.keys().cloned().collect();
                let k = rng.pick(&keys).clone();
                match rng.below(4) {
                    0 => {
                        o.remove(&k);
                    }
                    1 => {
                        // Rename a key (e.g. a wave bound or migration pair).
                        if let Some(val) = o.remove(&k) {
                            o.insert(rng.pick(KEYS).to_string(), val);
                        }
                    }
                    2 => {
                        let val = o.get(&k).cloned().unwrap_or(Value::Null);
                        o.insert(rng.pick(KEYS).to_string(), val);
                    }
                    _ => {
                        o.insert(k, interesting_value(rng));
                    }
                }
            }
            Value::Array(a) if !a.is_empty() && rng.chance(60) => {
                let i = rng.index(a.len());
                match rng.below(3) {
                    0 => {
                        let dup = a[i].clone();
                        a.push(dup); // duplicate entry
                    }
                    1 => {
                        a.remove(i);
                    }
                    _ => {
                        let j = rng.index(a.len());
                        a.swap(i, j);
                    }
                }
            }
            Value::String(s) if rng.chance(50) => {
                // Nudge a version or time: change one digit.
                let mut b = s.clone().into_bytes();
                if let Some(p) = b.iter().position(|c| c.is_ascii_digit()) {
                    b[p] = b'0' + rng.below(10) as u8;
                }
                *s = String::from_utf8_lossy(&b).into_owned();
            }
            _ => *v = interesting_value(rng),
        }
        return true;
    }
    *target -= 1;
    match v {
        Value::Array(a) => a.iter_mut().any(|x| mutate_node(rng, x, target)),
        Value::Object(o) => o.values_mut().any(|x| mutate_node(rng, x, target)),
        _ => false,
    }
}

/// Checks one input: parse, validate; an accepted manifest keeps its verdict when rewritten.
pub fn check_manifest(input: &[u8]) -> bool {
    let Ok(m) = Manifest::from_slice(input, "fuzz") else {
        return false;
    };
    let verdict = m.validate();
    let bytes = m.to_vec_pretty();
    let again = Manifest::from_slice(&bytes, "fuzz-rewrite")
        .unwrap_or_else(|e| panic!("a parsed manifest does not re-parse after a rewrite: {e}"));
    assert_eq!(
        again.updates.len(),
        m.updates.len(),
        "updates lost in a rewrite"
    );
    assert_eq!(
        again.validate().is_ok(),
        verdict.is_ok(),
        "validation verdict changed by a rewrite: {verdict:?}"
    );
    if verdict.is_ok() {
        // Accepted manifests validate again from their own output, byte-stable.
        assert_eq!(again.to_vec_pretty(), bytes, "rewrite is not stable");
    }
    verdict.is_ok()
}

/// The manifest target.
#[derive(Debug)]
pub struct ManifestTarget;

impl Target for ManifestTarget {
    const NAME: &'static str = "manifest";

    fn mutate(rng: &mut Rng, base: &[u8], other: &[u8]) -> Vec<u8> {
        if rng.chance(75)
            && let Ok(mut v) = serde_json::from_slice::<Value>(base)
        {
            for _ in 0..1 + rng.below(3) {
                let mut target = rng.index(count(&v));
                mutate_node(rng, &mut v, &mut target);
            }
            return serde_json::to_vec_pretty(&v).unwrap_or_default();
        }
        let mut data = base.to_vec();
        for _ in 0..1 + rng.below(4) {
            mutate_bytes(rng, &mut data, other);
        }
        data
    }

    fn check(input: &[u8]) -> bool {
        check_manifest(input)
    }
}
