//! What kind of object a key holds, and the HTTP headers it is stored with: what a CDN in
//! front of the bucket caches, and for how long.
//!
//! | object                                  | Cache-Control                          |
//! |-----------------------------------------|----------------------------------------|
//! | `timestamp.json`                        | `max-age=60, must-revalidate` (short)  |
//! | `root.json` (unversioned), `mirror.json` | `max-age=300, must-revalidate`        |
//! | `N.root.json`, `V.snapshot.json`, `V.targets.json` | `public, max-age=31536000, immutable` |
//! | targets (`<sha256>.name`)               | `public, max-age=31536000, immutable`  |
//!
//! Metadata is `application/json`, targets `application/octet-stream`.

use object_store::{Attribute, Attributes};

/// `Cache-Control` of objects whose name fixes their content.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// `Cache-Control` of `timestamp.json`: a client must see a new release within a minute.
pub const TIMESTAMP: &str = "public, max-age=60, must-revalidate";
/// `Cache-Control` of other mutable files (an unversioned `root.json`, `mirror.json`).
pub const MUTABLE: &str = "public, max-age=300, must-revalidate";

/// The kinds of objects in a repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObjectKind {
    /// `timestamp.json`: replaced by every publish.
    Timestamp,
    /// Versioned metadata (`N.root.json`, `V.snapshot.json`, `V.targets.json`): never replaced.
    VersionedMetadata,
    /// Other JSON that can change (`root.json`, `snapshot.json` without consistent snapshots,
    /// `mirror.json`).
    MutableMetadata,
    /// A target under its consistent name `<sha256>.<name>`: never replaced.
    Target,
    /// A target under a plain name (repositories without consistent snapshots).
    PlainTarget,
}

impl ObjectKind {
    /// The kind of the object at `key` (only the last path segment and whether it is under a
    /// `targets/` directory matter).
    pub fn of(key: &str) -> ObjectKind {
        let (dir, name) = key.rsplit_once('/').unwrap_or(("", key));
        let in_targets = dir == "targets" || dir.ends_with("/targets") || dir.contains("targets/");
        if in_targets {
            let hashed = name.split_once('.').is_some_and(|(h, rest)| {
                !rest.is_empty() && h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())
            });
            return if hashed {
                ObjectKind::Target
            } else {
                ObjectKind::PlainTarget
            };
        }
        if name == "timestamp.json" {
            return ObjectKind::Timestamp;
        }
        let versioned = name.split_once('.').is_some_and(|(v, rest)| {
            !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && rest.ends_with(".json")
        });
        if versioned {
            ObjectKind::VersionedMetadata
        } else if name.ends_with(".json") {
            ObjectKind::MutableMetadata
        } else {
            ObjectKind::PlainTarget
        }
    }

    /// Its `Cache-Control` header.
    pub fn cache_control(self) -> &'static str {
        match self {
            ObjectKind::Timestamp => TIMESTAMP,
            ObjectKind::VersionedMetadata | ObjectKind::Target => IMMUTABLE,
            ObjectKind::MutableMetadata | ObjectKind::PlainTarget => MUTABLE,
        }
    }

    /// Its `Content-Type` header.
    pub fn content_type(self) -> &'static str {
        match self {
            ObjectKind::Timestamp | ObjectKind::VersionedMetadata | ObjectKind::MutableMetadata => {
                "application/json"
            }
            ObjectKind::Target | ObjectKind::PlainTarget => "application/octet-stream",
        }
    }

    /// Both, as object_store attributes.
    pub fn attributes(self) -> Attributes {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::CacheControl, self.cache_control().into());
        attributes.insert(Attribute::ContentType, self.content_type().into());
        attributes
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn kinds_by_key() {
        let sha = "a".repeat(64);
        for (key, kind) in [
            (
                "p/metadata/aws-dev/x86_64/timestamp.json",
                ObjectKind::Timestamp,
            ),
            (
                "p/metadata/aws-dev/x86_64/1.root.json",
                ObjectKind::VersionedMetadata,
            ),
            (
                "p/metadata/aws-dev/x86_64/1767225600.snapshot.json",
                ObjectKind::VersionedMetadata,
            ),
            (
                "metadata/v/a/17.targets.json",
                ObjectKind::VersionedMetadata,
            ),
            ("p/metadata/v/a/root.json", ObjectKind::MutableMetadata),
            ("p/mirror.json", ObjectKind::MutableMetadata),
            (
                &format!("p/targets/{sha}.manifest.json"),
                ObjectKind::Target,
            ),
            (&format!("targets/{sha}.root.ext4.lz4"), ObjectKind::Target),
            ("p/targets/manifest.json", ObjectKind::PlainTarget),
        ] {
            assert_eq!(ObjectKind::of(key), kind, "{key}");
        }
        assert_eq!(ObjectKind::Timestamp.cache_control(), TIMESTAMP);
        assert!(ObjectKind::Target.cache_control().contains("immutable"));
        assert_eq!(
            ObjectKind::Target.content_type(),
            "application/octet-stream"
        );
        assert_eq!(
            ObjectKind::VersionedMetadata.content_type(),
            "application/json"
        );
    }
}
