//! The update manifest (`manifest.json`), wire-compatible with Bottlerocket's, with its editing
//! operations, validation, migration paths and the pure update-selection function.
//!
//! - [`Manifest`]: parse ([`Manifest::from_slice`]), edit ([`Manifest::add_update`],
//!   [`Manifest::set_waves`], …), check ([`Manifest::validate`]) and write
//!   ([`Manifest::write_atomic`]). Unknown fields survive a rewrite byte for byte ([`Extra`]:
//!   the original JSON text, in order, so big numbers stay exact and nested keys keep their order).
//! - Hosts read with [`Manifest::from_slice_for_hosts`]: the same rules as `validate`, entry by
//!   entry. Broken entries are set aside in [`Manifest::rejected`] (one bad entry does not stop
//!   other hosts), and [`Manifest::check_host`] refuses a host whose own entry is broken.
//! - [`select`]: which update a host should take, or a typed reason there is none.
//! - [`Release`]: `Release.toml`, the source of the manifest's migrations.
//! - [`BuildDescription`]: what an image build produced (os-image writes, pubsys reads).
//!
//! Pure: bytes in, values out; the only I/O is the explicit `load`/`write_atomic` helpers.
//!
//! # Compatibility with Bottlerocket's `update_metadata`
//! Same wire format: field names and order, `"(X, Y)"` migration keys written with one space
//! and sorted, waves as decimal-string keys to RFC3339 UTC, pretty JSON. Unknown fields at the
//! top level, in updates and in `images` are kept on rewrite, exactly as written. Wave keys that are not decimal
//! numbers, duplicate wave keys and duplicate migration keys are rejected, as in Bottlerocket.
//! Deliberate differences:
//! - times like `2019-8-06T15:00:00Z` (chrono accepts them) are read, and always written
//!   canonically (`2019-08-06T15:00:00Z`);
//! - a missing `migrations` object reads as empty;
//! - `add_update` refuses an entry that already exists (same variant, arch, version);
//! - [`Manifest::validate`] checks more than Bottlerocket's wave order: wave keys ≤ 2048,
//!   duplicates, `max_version` agreement per variant/arch, something offerable, an unbroken
//!   migration chain;
//! - a field given twice in one object is an error (JSON readers disagree on which copy wins);
//! - errors name the source, the JSON path of the field and the bad value.
//!
//! ```
//! use update_metadata::{Arch, Host, Manifest, Policy, Selection, VersionLock, select};
//! let manifest = Manifest::from_slice(br#"{"updates": [{"variant": "metal-dev",
//!     "arch": "x86_64", "version": "1.1.0", "max_version": "1.1.0", "waves": {},
//!     "images": {"boot": "b.lz4", "root": "r.lz4", "hash": "h.lz4"}}], "migrations": {}}"#,
//!     "example").unwrap();
//! let host = Host { variant: "metal-dev".parse().unwrap(), arch: Arch::X86_64,
//!                   version: "1.0.0".parse().unwrap() };
//! let policy = Policy { version_lock: VersionLock::Latest, ignore_waves: false,
//!     seed: waves::Seed::new(100).unwrap(), now: jiff::Timestamp::UNIX_EPOCH, forced: None };
//! assert!(matches!(select(&manifest, &host, &policy), Selection::Update(u) if u.version.to_string() == "1.1.0"));
//! ```
#![deny(missing_docs)]

mod build;
mod error;
mod extra;
mod manifest;
mod migrations;
mod names;
pub mod os_release;
mod select;

pub use build::{Artifact, Artifacts, BuildDescription, VerityInfo};
pub use error::{Error, ExitStatus, Result};
pub use extra::Extra;
pub use manifest::{Images, Manifest, RejectedEntry, Update};
pub use migrations::{Migrations, Release, format_migration_key, parse_migration_key};
pub use names::{Arch, TargetName, Variant};
pub use select::{Host, Policy, Selection, VersionLock, applicable, select};
pub use semver::Version;
