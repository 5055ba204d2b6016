//! Hashes listed in signed metadata, and checking data against all of them.
//!
//! Any non-empty set of hashes is accepted when parsing (§4.4, §4.5). Verification computes every
//! listed hash; an algorithm this client cannot compute fails verification (as in python-tuf), it
//! is never skipped. Supported: `sha256`, `sha384`, `sha512`.

use aws_lc_rs::digest::{Algorithm, Context, SHA256, SHA384, SHA512};
use serde_json::Value;

/// Hashes as listed in signed metadata, in the order listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hashes(Vec<(String, Vec<u8>)>);

impl Hashes {
    /// Reads a `{ALGORITHM: HEX, ...}` object: non-empty, every value a hex string.
    pub(crate) fn from_json(map: &serde_json::Map<String, Value>) -> Result<Self, String> {
        if map.is_empty() {
            return Err("'hashes' is empty".to_owned());
        }
        let mut out = Vec::with_capacity(map.len());
        for (alg, value) in map {
            let text = value
                .as_str()
                .ok_or_else(|| format!("hash '{alg}' is not a string"))?;
            let bytes = hex::decode(text).map_err(|_| format!("hash '{alg}' is not hex"))?;
            out.push((alg.clone(), bytes));
        }
        Ok(Self(out))
    }

    /// (algorithm, digest) pairs in the order the metadata lists them.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.0.iter().map(|(a, d)| (a.as_str(), d.as_slice()))
    }

    /// The digest for `algorithm`, if listed.
    pub fn get(&self, algorithm: &str) -> Option<&[u8]> {
        self.iter().find(|(a, _)| *a == algorithm).map(|(_, d)| d)
    }

    /// The first listed digest, hex-encoded: the one used in consistent-snapshot target URLs
    /// (python-tuf does the same).
    pub(crate) fn first_hex(&self) -> String {
        self.0
            .first()
            .map(|(_, d)| hex::encode(d))
            .unwrap_or_default()
    }
}

fn algorithm(name: &str) -> Option<&'static Algorithm> {
    match name {
        "sha256" => Some(&SHA256),
        "sha384" => Some(&SHA384),
        "sha512" => Some(&SHA512),
        _ => None,
    }
}

/// Outcome of a hash check.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HashCheck {
    /// Every listed hash matches.
    Match,
    /// This algorithm's digest differs.
    Mismatch(String),
    /// This algorithm is not supported.
    Unsupported(String),
}

/// Incremental hashing of data against every listed hash.
pub(crate) struct Hasher {
    contexts: Vec<(String, Option<Context>, Vec<u8>)>,
}

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hasher").finish_non_exhaustive()
    }
}

impl Hasher {
    pub(crate) fn new(hashes: &Hashes) -> Self {
        Self {
            contexts: hashes
                .0
                .iter()
                .map(|(a, d)| (a.clone(), algorithm(a).map(Context::new), d.clone()))
                .collect(),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        for (_, ctx, _) in &mut self.contexts {
            if let Some(ctx) = ctx {
                ctx.update(data);
            }
        }
    }

    pub(crate) fn finish(self) -> HashCheck {
        for (alg, ctx, expected) in self.contexts {
            match ctx {
                None => return HashCheck::Unsupported(alg),
                Some(ctx) => {
                    if ctx.finish().as_ref() != expected.as_slice() {
                        return HashCheck::Mismatch(alg);
                    }
                }
            }
        }
        HashCheck::Match
    }
}

/// Checks `data` against every hash in `hashes`.
pub(crate) fn check(hashes: &Hashes, data: &[u8]) -> HashCheck {
    let mut h = Hasher::new(hashes);
    h.update(data);
    h.finish()
}

#[cfg(test)]
mod test {
    use super::*;

    fn hashes(pairs: &[(&str, String)]) -> Hashes {
        let map = pairs
            .iter()
            .map(|(a, d)| ((*a).to_owned(), Value::String(d.clone())))
            .collect();
        Hashes::from_json(&map).unwrap()
    }

    #[test]
    fn every_listed_hash_is_checked() {
        let data = b"abc";
        let s256 = hex::encode(aws_lc_rs::digest::digest(&SHA256, data));
        let s512 = hex::encode(aws_lc_rs::digest::digest(&SHA512, data));
        assert_eq!(
            check(&hashes(&[("sha512", s512.clone())]), data),
            HashCheck::Match
        );
        assert_eq!(
            check(&hashes(&[("sha256", s256.clone()), ("sha512", s512)]), data),
            HashCheck::Match
        );
        let bad512 = "00".repeat(64);
        assert_eq!(
            check(
                &hashes(&[("sha256", s256.clone()), ("sha512", bad512)]),
                data
            ),
            HashCheck::Mismatch("sha512".into())
        );
        assert_eq!(
            check(&hashes(&[("sha256", s256), ("md5", "00".into())]), data),
            HashCheck::Unsupported("md5".into())
        );
    }

    #[test]
    fn empty_or_non_hex_hashes_are_refused() {
        assert!(Hashes::from_json(&serde_json::Map::new()).is_err());
        let mut map = serde_json::Map::new();
        map.insert("sha256".into(), Value::String("zz".into()));
        assert!(Hashes::from_json(&map).is_err());
    }
}
