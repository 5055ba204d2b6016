//! updog: the on-host update agent of an A/B OS (Bottlerocket-compatible).
//!
//! updog reads a TUF repository through [tuf_client] (the specification's client workflow) into a
//! **persistent** datastore (so rollback and freeze are detected across runs), chooses an update with `update-metadata`'s pure selection
//! function, and writes it to the inactive partition set in a fixed safe order: mark the set
//! unbootable → cache migrations → stream boot, hash and root images (verified length and SHA-256,
//! LZ4-decoded, resumable across network drops, kills and reboots), the root read back from the
//! device and checked against its dm-verity tree and the root hash recorded in the boot partition
//! as it is written → mark valid → activate. Partition flags belong to `signpost`, wave math to `waves`.
//!
//! The binary is a thin wrapper: [`cli::Cli`] parses, [`run`] does the work and returns an
//! [`Outcome`], whose [`Outcome::exit_status`] (or [`Error::exit_code`]) is one of the documented
//! [`ExitStatus`] values. Progress goes to a [`Reporter`].
//!
//! Everything is below one host root ([`config::HostPaths`]), and `--disk IMG --active a|b` acts on
//! a disk image, so tests simulate a whole host with a directory and an image file:
//!
//! ```no_run
//! use std::sync::Arc;
//! let env = updog::Env {
//!     paths: updog::config::HostPaths::new("/tmp/host"),
//!     disk: Some(updog::DiskOverride { path: "/tmp/disk.img".into(), active: signpost::SetName::A }),
//!     arch: None,
//!     variant: None,
//!     now: jiff::Timestamp::now(),
//!     reporter: Arc::new(updog::NullReporter),
//! };
//! let outcome = updog::run(updog::Command::CheckUpdate { all: false, image: None, waves: updog::Waves::Respect }, &env);
//! ```
#![deny(missing_docs)]

pub(crate) mod apply;
pub mod blockio;
pub mod cli;
pub mod config;
pub(crate) mod coord;
pub mod delta_update;
pub mod docs;
pub mod error;
pub mod exit;
pub(crate) mod fsutil;
pub(crate) mod health;
pub(crate) mod host;
pub(crate) mod http;
pub(crate) mod image;
pub mod lock;
pub(crate) mod lz4;
pub(crate) mod metadata_cache;
pub mod plan;
pub mod render;
pub mod repo;
pub mod reporter;
pub(crate) mod resume;
pub(crate) mod status;
pub(crate) mod target_stream;
pub mod transport;
pub mod verity;
pub(crate) mod window;
pub mod workflow;

pub use error::{Error, Result};
pub use exit::ExitStatus;
pub use reporter::{NullReporter, ProgressEvent, RecordingReporter, Reporter};
pub use workflow::{
    Activation, Command, DiskOverride, Env, HealthReport, NoUpdate, Outcome, Reboot, StatusReport,
    Waves, run, run_async,
};
