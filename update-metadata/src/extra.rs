//! Unknown JSON fields, kept byte for byte.
//!
//! A manifest written by a newer tool (or by Bottlerocket) may carry fields we do not model. They
//! are kept as the exact JSON text they had (serde_json's `RawValue`), in the order they came,
//! so a rewrite neither turns `123456789012345678901234567890` into `1.2345678901234568e29` nor
//! sorts the keys of a nested object.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// Fields we do not know, in their original order, each value as its original JSON text.
#[derive(Debug, Clone, Default)]
pub struct Extra(Vec<(String, Box<RawValue>)>);

impl Extra {
    /// No fields.
    pub fn new() -> Extra {
        Extra(Vec::new())
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True if there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The raw JSON of field `key`.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| &**v)
    }

    /// True if field `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets field `key` (in place if present, else at the end); returns the previous value.
    pub fn insert(
        &mut self,
        key: impl Into<String>,
        value: Box<RawValue>,
    ) -> Option<Box<RawValue>> {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => Some(std::mem::replace(v, value)),
            None => {
                self.0.push((key, value));
                None
            }
        }
    }

    /// `(key, raw JSON)` pairs in their original order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), &**v))
    }

    /// Adds a field read from input; a key seen twice is an error (JSON with duplicate keys is
    /// ambiguous, and readers disagree on which copy wins).
    pub(crate) fn push_unique<E: de::Error>(
        &mut self,
        key: String,
        value: Box<RawValue>,
    ) -> Result<(), E> {
        if self.contains_key(&key) {
            return Err(E::custom(format_args!("duplicate field `{key}`")));
        }
        self.0.push((key, value));
        Ok(())
    }
}

impl PartialEq for Extra {
    fn eq(&self, other: &Extra) -> bool {
        self.0.len() == other.0.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

impl Eq for Extra {}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Extra;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Extra, A::Error> {
                let mut extra = Extra::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value: Box<RawValue> = access.next_value()?;
                    extra.push_unique(key, value)?;
                }
                Ok(extra)
            }
        }
        deserializer.deserialize_map(V)
    }
}
