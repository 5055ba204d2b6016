//! Hand-written `Deserialize` for the manifest types.
//!
//! Derived code with `#[serde(flatten)]` buffers every field through serde's generic `Content`,
//! which loses number precision and cannot hold a `RawValue`. These visitors read known fields
//! with their types and every other field as its raw JSON text ([`Extra`]), in order. Field
//! paths for errors still come from `serde_path_to_error`, which wraps the `MapAccess` used here.

use std::fmt;
use std::marker::PhantomData;

use semver::Version;
use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use super::{Images, Manifest, Update};
use crate::extra::Extra;
use crate::migrations::Migrations;

/// A semver version, with the bad value named in errors.
struct SemVer(Version);

impl<'de> Deserialize<'de> for SemVer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        crate::names::de_version(d).map(SemVer)
    }
}

/// Stores a known field, refusing a second copy.
fn put<T, E: de::Error>(slot: &mut Option<T>, name: &'static str, value: T) -> Result<(), E> {
    if slot.replace(value).is_some() {
        return Err(E::duplicate_field(name));
    }
    Ok(())
}

fn need<T, E: de::Error>(slot: Option<T>, name: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(name))
}

impl<'de> Deserialize<'de> for Images {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Images;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object with the target names boot, root and hash")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Images, A::Error> {
                let (mut boot, mut root, mut hash) = (None, None, None);
                let mut extra = Extra::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "boot" => put(&mut boot, "boot", map.next_value()?)?,
                        "root" => put(&mut root, "root", map.next_value()?)?,
                        "hash" => put(&mut hash, "hash", map.next_value()?)?,
                        _ => {
                            let raw: Box<RawValue> = map.next_value()?;
                            extra.push_unique(key, raw)?;
                        }
                    }
                }
                Ok(Images {
                    boot: need(boot, "boot")?,
                    root: need(root, "root")?,
                    hash: need(hash, "hash")?,
                    extra,
                })
            }
        }
        deserializer.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Update {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Update;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an update entry object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Update, A::Error> {
                let (mut variant, mut arch, mut version, mut max_version) =
                    (None, None, None, None);
                let (mut waves, mut images) = (None, None);
                let mut extra = Extra::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "variant" => put(&mut variant, "variant", map.next_value()?)?,
                        "arch" => put(&mut arch, "arch", map.next_value()?)?,
                        "version" => put(&mut version, "version", map.next_value::<SemVer>()?.0)?,
                        "max_version" => put(
                            &mut max_version,
                            "max_version",
                            map.next_value::<SemVer>()?.0,
                        )?,
                        "waves" => put(&mut waves, "waves", map.next_value()?)?,
                        "images" => put(&mut images, "images", map.next_value()?)?,
                        _ => {
                            let raw: Box<RawValue> = map.next_value()?;
                            extra.push_unique(key, raw)?;
                        }
                    }
                }
                Ok(Update {
                    variant: need(variant, "variant")?,
                    arch: need(arch, "arch")?,
                    version: need(version, "version")?,
                    max_version: need(max_version, "max_version")?,
                    waves: need(waves, "waves")?,
                    images: need(images, "images")?,
                    extra,
                })
            }
        }
        deserializer.deserialize_map(V)
    }
}

/// The top level of a manifest with entries of type `U`: [`Update`] for the strict reader, raw
/// JSON for the per-entry reader.
pub(super) struct Shape<U> {
    pub(super) updates: Vec<U>,
    pub(super) migrations: Migrations,
    pub(super) extra: Extra,
}

impl<'de, U: Deserialize<'de>> Deserialize<'de> for Shape<U> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<U>(PhantomData<U>);
        impl<'de, U: Deserialize<'de>> Visitor<'de> for V<U> {
            type Value = Shape<U>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a manifest object with `updates` and `migrations`")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Shape<U>, A::Error> {
                let (mut updates, mut migrations) = (None, None);
                let mut extra = Extra::new();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "updates" => put(&mut updates, "updates", map.next_value()?)?,
                        "migrations" => put(&mut migrations, "migrations", map.next_value()?)?,
                        _ => {
                            let raw: Box<RawValue> = map.next_value()?;
                            extra.push_unique(key, raw)?;
                        }
                    }
                }
                Ok(Shape {
                    updates: need(updates, "updates")?,
                    // A missing `migrations` object reads as empty.
                    migrations: migrations.unwrap_or_default(),
                    extra,
                })
            }
        }
        deserializer.deserialize_map(V(PhantomData))
    }
}

impl<'de> Deserialize<'de> for Manifest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let shape = Shape::<Update>::deserialize(deserializer)?;
        Ok(Manifest {
            updates: shape.updates,
            migrations: shape.migrations,
            extra: shape.extra,
            rejected: Vec::new(),
        })
    }
}
