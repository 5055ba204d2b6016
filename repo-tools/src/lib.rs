//! Root-of-trust ceremonies and air-gapped mirroring for TUF update repositories.
//!
//! This crate owns the admin side of a repository that pubsys publishes and updog reads:
//!
//! - [`root`]: create and edit `root.json` (keys per role, thresholds, expiry in whole seconds,
//!   versions), sign it on separate machines and [`root::merge`] the signatures, verify
//!   thresholds and the rotation rule (root N+1 signed by a threshold of root N's root keys and
//!   of its own). [`keys`] generates ed25519, ECDSA P-256 and RSA keys in the formats tough reads.
//! - [`mirror`]: copy a repository, or one variant/arch/version ([`filter`]), into a directory
//!   ([`layout`]) that updog reads over `file://` or any static HTTP server. Everything is loaded
//!   and verified through tough with a trusted root; runs are incremental.
//! - [`archive`]: export a mirror as one tar file and import it on the far side of an air gap,
//!   verifying all of it against the trusted root ([`check`]) before it is moved into place.
//!
//! The binary is a thin shell over [`commands::run`].
//!
//! ```no_run
//! # async fn demo() -> repo_tools::error::Result<()> {
//! use repo_tools::{root, clock::{Clock, SystemClock}};
//! let r = root::load(std::path::Path::new("root.json"))?;
//! let report = root::verify(&r, None, SystemClock.now());
//! assert!(report.ok(), "{:?}", report.problems);
//! # Ok(()) }
//! ```
//!
//! Tests: `cargo test -p repo-tools` (real repositories built with tough's editor at test time,
//! served over `file://` and a loopback HTTP server).
#![deny(missing_docs)]

pub mod archive;
pub mod check;
pub mod cli;
pub mod clock;
pub mod commands;
pub mod download;
pub mod error;
pub mod expiry;
pub mod filter;
pub mod fsio;
pub mod keys;
pub mod layout;
pub mod mirror;
pub mod reporter;
pub mod root;
pub mod source;
pub mod untrusted;

pub use commands::{Env, Outcome, run};
pub use error::{Error, ExitStatus, Result};
