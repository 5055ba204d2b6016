//! Host seeds: the host's fixed place in the rollout order.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{self, Result};

/// Number of seeds; host seeds are `0..MAX_SEED`.
pub const MAX_SEED: u32 = 2048;

/// A host's rollout seed, range-checked to `0..=2047`.
///
/// Smaller seeds update earlier. Bottlerocket generates the seed once per host, uniformly at
/// random, and keeps it in `/etc/updog.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Seed(u16);

impl Seed {
    /// Checks that `value` is a seed (`0..=2047`).
    pub fn new(value: u32) -> Result<Seed> {
        snafu::ensure!(
            value < MAX_SEED,
            error::SeedOutOfRangeSnafu {
                value: u64::from(value)
            }
        );
        // Lossless: checked above.
        Ok(Seed(value as u16))
    }

    /// The seed as a number.
    pub fn get(self) -> u16 {
        self.0
    }

    /// Every seed, smallest first.
    pub fn all() -> impl DoubleEndedIterator<Item = Seed> + ExactSizeIterator {
        (0..MAX_SEED as u16).map(Seed)
    }
}

impl TryFrom<u32> for Seed {
    type Error = crate::Error;
    fn try_from(value: u32) -> Result<Seed> {
        Seed::new(value)
    }
}

impl From<Seed> for u32 {
    fn from(seed: Seed) -> u32 {
        u32::from(seed.0)
    }
}

impl FromStr for Seed {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Seed> {
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return error::SeedNotNumberSnafu { value: s }.fail();
        }
        match t.parse::<u64>() {
            Ok(v) if v < u64::from(MAX_SEED) => Seed::new(v as u32),
            Ok(v) => error::SeedOutOfRangeSnafu { value: v }.fail(),
            Err(_) => error::SeedOutOfRangeSnafu { value: u64::MAX }.fail(),
        }
    }
}

impl fmt::Display for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn range() {
        for (input, ok) in [
            (0, true),
            (1, true),
            (2047, true),
            (2048, false),
            (u32::MAX, false),
        ] {
            assert_eq!(Seed::new(input).is_ok(), ok, "{input}");
        }
        assert_eq!(Seed::new(2047).unwrap().get(), 2047);
        assert_eq!(Seed::all().len(), 2048);
    }

    #[test]
    fn parse() {
        assert_eq!("123".parse::<Seed>().unwrap().get(), 123);
        assert_eq!(" 7\n".parse::<Seed>().unwrap().get(), 7);
        for bad in ["", "-1", "+1", "12a", "2048", "99999999999999999999999"] {
            let err = bad.parse::<Seed>().unwrap_err().to_string();
            assert!(err.contains("seed"), "{bad}: {err}");
        }
        assert!(
            "2048"
                .parse::<Seed>()
                .unwrap_err()
                .to_string()
                .contains("2048")
        );
    }

    #[test]
    fn serde() {
        let s: Seed = serde_json::from_str("2047").unwrap();
        assert_eq!(serde_json::to_string(&s).unwrap(), "2047");
        assert!(serde_json::from_str::<Seed>("2048").is_err());
    }
}
