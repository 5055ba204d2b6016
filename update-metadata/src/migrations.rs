//! Migrations: `"(from, to)"` keyed lists of migration targets, Release.toml, path finding.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use semver::Version;
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use snafu::ResultExt;

use crate::error::{self, Error, Result};
use crate::names::TargetName;

/// The manifest's `migrations` map: `(from, to)` → migration target names, in run order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Migrations(BTreeMap<(Version, Version), Vec<TargetName>>);

/// Parses a migration key `"(X.Y.Z, A.B.C)"` the way Bottlerocket does: `(`, a version without
/// spaces or commas, `,`, any number of spaces, a version, `)`.
pub fn parse_migration_key(key: &str) -> Result<(Version, Version)> {
    let bad = |reason: String| error::InvalidMigrationKeySnafu { value: key, reason }.build();
    let inner = key
        .strip_prefix('(')
        .and_then(|k| k.strip_suffix(')'))
        .ok_or_else(|| bad("expected \"(FROM, TO)\"".into()))?;
    let (from, to) = inner
        .split_once(',')
        .ok_or_else(|| bad("expected \"(FROM, TO)\"".into()))?;
    let to = to.trim_start_matches(' ');
    for side in [from, to] {
        if side.is_empty() || side.contains([' ', ',']) {
            return Err(bad(
                "expected \"(FROM, TO)\" with no spaces inside the versions".into(),
            ));
        }
    }
    let parse =
        |s: &str| Version::parse(s).map_err(|e| bad(format!("{s:?} is not a version: {e}")));
    Ok((parse(from)?, parse(to)?))
}

/// Writes a migration key as Bottlerocket does: `"(X.Y.Z, A.B.C)"`.
pub fn format_migration_key(from: &Version, to: &Version) -> String {
    format!("({from}, {to})")
}

impl Migrations {
    /// No migrations.
    pub fn new() -> Migrations {
        Migrations::default()
    }

    /// Sets the list for `(from, to)`, returning the previous one.
    pub fn insert(
        &mut self,
        from: Version,
        to: Version,
        names: Vec<TargetName>,
    ) -> Option<Vec<TargetName>> {
        self.0.insert((from, to), names)
    }

    /// The list for `(from, to)`.
    pub fn get(&self, from: &Version, to: &Version) -> Option<&[TargetName]> {
        self.0.get(&(from.clone(), to.clone())).map(Vec::as_slice)
    }

    /// Number of `(from, to)` entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&Version, &Version, &[TargetName])> {
        self.0.iter().map(|((f, t), v)| (f, t, v.as_slice()))
    }

    /// The underlying map.
    pub fn as_map(&self) -> &BTreeMap<(Version, Version), Vec<TargetName>> {
        &self.0
    }

    /// The migrations to run going from `from` to `to` (Bottlerocket's `find_migrations`).
    ///
    /// Walks upward from the lower version; at each step takes the entry starting at the current
    /// version with the highest `to` not past the target (so shortcuts win), appends its list and
    /// continues from its `to`. Going down, the whole list is reversed. Equal versions: empty.
    pub fn path(&self, from: &Version, to: &Version) -> Result<Vec<TargetName>> {
        if from == to {
            return Ok(Vec::new());
        }
        let (lower, higher) = if from < to { (from, to) } else { (to, from) };
        let mut current = lower.clone();
        let mut out = Vec::new();
        while current < *higher {
            let next = self
                .0
                .iter()
                .filter(|((f, t), _)| *f == current && t <= higher && *t > current)
                .max_by(|((_, a), _), ((_, b), _)| a.cmp(b));
            let Some(((_, t), names)) = next else {
                return error::MissingMigrationSnafu {
                    from: current,
                    to: higher.clone(),
                }
                .fail();
            };
            out.extend(names.iter().cloned());
            current = t.clone();
        }
        if from > to {
            out.reverse();
        }
        Ok(out)
    }
}

impl FromIterator<((Version, Version), Vec<TargetName>)> for Migrations {
    fn from_iter<I: IntoIterator<Item = ((Version, Version), Vec<TargetName>)>>(iter: I) -> Self {
        Migrations(iter.into_iter().collect())
    }
}

impl Serialize for Migrations {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for ((from, to), names) in &self.0 {
            map.serialize_entry(&format_migration_key(from, to), names)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Migrations {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Migrations;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of \"(FROM, TO)\" to lists of migration target names")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut access: A,
            ) -> std::result::Result<Migrations, A::Error> {
                let mut map = BTreeMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    let versions = parse_migration_key(&key).map_err(de::Error::custom)?;
                    let names: Vec<TargetName> = access.next_value()?;
                    if map.insert(versions, names).is_some() {
                        return Err(de::Error::custom(format_args!(
                            "duplicate migration key {key:?}"
                        )));
                    }
                }
                Ok(Migrations(map))
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// A `Release.toml`: the release version and the migrations of every consecutive release pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The release's version.
    #[serde(deserialize_with = "crate::names::de_version")]
    pub version: Version,
    /// `"(from, to)"` → migration names; `[]` where a pair has none.
    #[serde(default)]
    pub migrations: Migrations,
}

impl Release {
    /// Parses a Release.toml; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Release> {
        let de = toml::Deserializer::parse(text).map_err(|source| Error::ParseRelease {
            origin: origin.to_owned(),
            field: ".".to_owned(),
            source: Box::new(source),
        })?;
        serde_path_to_error::deserialize(de).map_err(|e| Error::ParseRelease {
            origin: origin.to_owned(),
            field: e.path().to_string(),
            source: Box::new(e.into_inner()),
        })
    }

    /// Reads and parses a Release.toml.
    pub fn from_path(path: &Path) -> Result<Release> {
        let text = std::fs::read_to_string(path).context(error::ReadFileSnafu { path })?;
        Release::from_toml(&text, &path.display().to_string())
    }
}

#[cfg(test)]
mod test {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn keys() {
        let ok = [
            ("(1.0.0, 1.1.0)", ("1.0.0", "1.1.0")),
            ("(1.0.0,1.1.0)", ("1.0.0", "1.1.0")),
            ("(1.0.0,    1.1.0)", ("1.0.0", "1.1.0")),
            ("(0.0.0, 0.0.2)", ("0.0.0", "0.0.2")),
            ("(1.0.0-rc1, 1.1.0)", ("1.0.0-rc1", "1.1.0")),
        ];
        for (k, (f, t)) in ok {
            assert_eq!(parse_migration_key(k).unwrap(), (v(f), v(t)), "{k}");
        }
        for bad in [
            "1.0.0, 1.1.0",
            "(1.0.0 1.1.0)",
            "( 1.0.0, 1.1.0)",
            "(1.0.0 , 1.1.0)",
            "(1.0.0, 1.1.0 )",
            "(1.0, 1.1.0)",
            "(1.0.0, x)",
            "(1.0.0, 1.1.0, 1.2.0)",
            "(, 1.1.0)",
            "",
        ] {
            let e = parse_migration_key(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert_eq!(
            format_migration_key(&v("1.0.0"), &v("1.1.0")),
            "(1.0.0, 1.1.0)"
        );
    }

    #[test]
    fn duplicate_and_bad_keys_rejected() {
        let e =
            serde_json::from_str::<Migrations>(r#"{"(1.0.0, 1.1.0)": [], "(1.0.0,1.1.0)": []}"#)
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("duplicate migration key \"(1.0.0,1.1.0)\""),
            "{e}"
        );
        let e = serde_json::from_str::<Migrations>(r#"{"1.0.0 to 1.1.0": []}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"1.0.0 to 1.1.0\""), "{e}");
        let e = serde_json::from_str::<Migrations>(r#"{"(1.0.0, 1.1.0)": ["a/b"]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"a/b\""), "{e}");
    }

    #[test]
    fn path_rules() {
        let m: Migrations = [
            (("1.0.0", "1.1.0"), vec!["a", "b"]),
            (("1.1.0", "1.2.0"), vec!["skip"]),
            (("1.1.0", "1.5.0"), vec!["shortcut"]),
            (("1.2.0", "1.5.0"), vec!["skip2"]),
            (("1.5.0", "1.6.0"), vec![]),
        ]
        .into_iter()
        .map(|((f, t), n)| {
            (
                (v(f), v(t)),
                n.into_iter().map(|s| s.parse().unwrap()).collect(),
            )
        })
        .collect();
        let names = |f: &str, t: &str| -> Vec<String> {
            m.path(&v(f), &v(t))
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        assert_eq!(names("1.0.0", "1.5.0"), ["a", "b", "shortcut"]);
        assert_eq!(names("1.5.0", "1.0.0"), ["shortcut", "b", "a"]);
        assert_eq!(names("1.0.0", "1.2.0"), ["a", "b", "skip"]);
        assert_eq!(names("1.2.0", "1.5.0"), ["skip2"]);
        assert_eq!(names("1.0.0", "1.6.0"), ["a", "b", "shortcut"]);
        assert!(names("1.3.0", "1.3.0").is_empty());
        assert!(names("1.5.0", "1.6.0").is_empty());
        let e = m.path(&v("1.0.0"), &v("1.7.0")).unwrap_err().to_string();
        assert!(e.contains("from 1.6.0 towards 1.7.0"), "{e}");
        let e = m.path(&v("1.3.0"), &v("1.5.0")).unwrap_err().to_string();
        assert!(e.contains("from 1.3.0"), "{e}");
    }

    #[test]
    fn release_errors_name_file_and_field() {
        let e = Release::from_toml("version = \"1.0\"\n", "Release.toml").unwrap_err();
        let chain = format!("{e} / {}", std::error::Error::source(&e).unwrap());
        assert!(
            chain.contains("Release.toml") && chain.contains("version") && chain.contains("1.0"),
            "{chain}"
        );
        let e = Release::from_toml(
            "version = \"1.0.0\"\n[migrations]\n\"(1.0.0 1.1.0)\" = []\n",
            "R.toml",
        )
        .unwrap_err();
        let chain = format!("{e} / {}", std::error::Error::source(&e).unwrap());
        assert!(
            chain.contains("R.toml")
                && chain.contains("migrations")
                && chain.contains("(1.0.0 1.1.0)"),
            "{chain}"
        );
        let r = Release::from_toml("version = \"1.0.0\"\n", "R").unwrap();
        assert!(r.migrations.is_empty());
    }
}
