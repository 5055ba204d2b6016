//! Validated names: variants, architectures and TUF target names.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{self, Error, Result};

macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A variant name such as `aws-k8s-1.32`: `[a-z0-9][a-z0-9._-]*`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Variant(String);

impl Variant {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Variant {
    type Err = Error;
    fn from_str(s: &str) -> Result<Variant> {
        let bad = |reason| error::InvalidVariantSnafu { value: s, reason }.fail();
        let mut bytes = s.bytes();
        match bytes.next() {
            None => return bad("it is empty"),
            Some(b) if !(b.is_ascii_lowercase() || b.is_ascii_digit()) => {
                return bad("it must start with a lowercase letter or digit");
            }
            _ => {}
        }
        if !bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)) {
            return bad("only lowercase letters, digits, '.', '_' and '-' are allowed");
        }
        Ok(Variant(s.to_owned()))
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(Variant);

/// A CPU architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Arch {
    /// `x86_64`
    X86_64,
    /// `aarch64`
    Aarch64,
}

impl Arch {
    /// The name used in manifests and target names.
    pub fn as_str(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// The architecture this program was built for, if it is one of ours.
    pub fn current() -> Option<Arch> {
        match std::env::consts::ARCH {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" => Some(Arch::Aarch64),
            _ => None,
        }
    }
}

impl FromStr for Arch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Arch> {
        match s {
            "x86_64" => Ok(Arch::X86_64),
            "aarch64" => Ok(Arch::Aarch64),
            _ => error::InvalidArchSnafu { value: s }.fail(),
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
string_serde!(Arch);

/// A TUF target name we accept in manifests: not empty, no `/`, no `..`, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TargetName(String);

impl TargetName {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for TargetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<TargetName> {
        let bad = |reason| error::InvalidTargetNameSnafu { value: s, reason }.fail();
        if s.is_empty() {
            return bad("it is empty");
        }
        if s.contains('/') || s.contains('\\') {
            return bad("it must not contain a path separator");
        }
        if s.contains("..") {
            return bad("it must not contain \"..\"");
        }
        if s == "." {
            return bad("it must not be \".\"");
        }
        if s.chars().any(char::is_control) {
            return bad("it must not contain control characters");
        }
        Ok(TargetName(s.to_owned()))
    }
}

impl fmt::Display for TargetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
string_serde!(TargetName);

/// Deserializes a semver version, naming the bad value in the error.
pub(crate) fn de_version<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<semver::Version, D::Error> {
    let s = String::deserialize(d)?;
    semver::Version::parse(&s)
        .map_err(|e| serde::de::Error::custom(format_args!("bad version {s:?}: {e}")))
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn variants() {
        for ok in [
            "aws-k8s-1.32",
            "bottlerocket-aws-eks",
            "metal-dev",
            "0x",
            "a_b.c",
        ] {
            assert_eq!(ok.parse::<Variant>().unwrap().to_string(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("-x", "start"),
            (".x", "start"),
            ("Aws", "start"),
            ("aws k8s", "only"),
            ("aws/k8s", "only"),
            ("awS", "only"),
        ] {
            let e = bad.parse::<Variant>().unwrap_err().to_string();
            assert!(
                e.contains(why) && e.contains(&format!("{bad:?}")),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn arches() {
        for a in [Arch::X86_64, Arch::Aarch64] {
            assert_eq!(a.to_string().parse::<Arch>().unwrap(), a);
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
        }
        for bad in ["amd64", "arm64", "X86_64", ""] {
            let e = bad.parse::<Arch>().unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(
            serde_json::from_str::<Arch>("\"riscv64\"")
                .unwrap_err()
                .to_string()
                .contains("riscv64")
        );
    }

    #[test]
    fn target_names() {
        for ok in [
            "bottlerocket-aws-k8s-1.32-x86_64-1.45.0-abc-boot.ext4.lz4",
            "migrate_v1.25.0_x.lz4",
            "a.b",
        ] {
            assert_eq!(ok.parse::<TargetName>().unwrap().as_str(), ok);
        }
        for (bad, why) in [
            ("", "empty"),
            ("a/b", "separator"),
            ("..", ".."),
            ("a..b", ".."),
            (".", "\".\""),
            ("a\nb", "control"),
        ] {
            let e = bad.parse::<TargetName>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }
}
