//! A TUF 1.0 client that follows the specification's detailed client workflow (§5) step by
//! step, over tough's schema (root metadata, keys) and signature verification.
//!
//! The crate owns the workflow: the fixed update start time and the clock check (§5.1), the root
//! chain (§5.3), timestamp (§5.4), snapshot (§5.5) and targets (§5.6) checks, the pre-order
//! depth-first delegation search (§5.6.7) and verified target downloads (§5.7). Trusted metadata
//! is persisted as the exact bytes received and verified, atomically and durably. See the
//! README for the step-to-code map and the differences from python-tuf's `ngclient`.
//!
//! ```no_run
//! # async fn example() -> tuf_client::Result<()> {
//! use tuf_client::{Config, DefaultTransport, Updater};
//! let root = std::fs::read("/usr/share/updog/root.json").expect("shipped root");
//! let config = Config::new(
//!     "https://updates.example.com/metadata/".parse().unwrap(),
//!     "https://updates.example.com/targets/".parse().unwrap(),
//!     "/var/lib/updog/datastore",
//!     root,
//! );
//! let mut updater = Updater::new(config, DefaultTransport::new())?;
//! let outcome = updater.refresh(jiff::Timestamp::now()).await?;
//! if let Some(info) = updater.get_target_info("manifest.json").await? {
//!     let bytes = updater.download_target(&info).await?; // length and hashes checked
//!     # let _ = (outcome, bytes);
//! }
//! # Ok(())
//! # }
//! ```
//!
//! Tests: `cargo test -p tuf-client` builds and signs repositories at test time and serves them
//! over HTTP on `127.0.0.1:0` and over `file://`.
#![deny(missing_docs)]

mod datastore;
pub mod error;
mod hash;
mod pattern;
mod schema;
mod target;
pub mod transport;
mod trusted;
mod updater;

pub use datastore::DEFAULT_CLOCK_FILE;
pub use error::{Error, Result};
pub use hash::Hashes;
pub use target::{TargetInfo, TargetStream};
pub use transport::{
    ByteStream, DefaultTransport, FileTransport, HttpTransport, Transport, TransportError,
    TransportErrorKind,
};
pub use updater::{
    Config, DEFAULT_CLOCK_TOLERANCE, Limits, RefreshOutcome, TimestampUpdate, Updater,
};
