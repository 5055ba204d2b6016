//! The repository-maintenance core shared by pubsys and repo-tools: one way to
//!
//! - name where a repository is ([`Source`]: metadata and targets base URLs for a directory,
//!   `file://`, `http(s)://` or `s3://`, always with the trailing `/` joins need);
//! - load it with the trusted root for inspection ([`load`], [`load_if_present`]) under one
//!   expiry policy ([`Expiry`], with the command-line flag mapping in
//!   [`Expiry::from_allow_flag`]);
//! - load it for change ([`Change`]: tough's editor over the loaded repository and the root it
//!   signs under);
//! - read `manifest.json` through the loaded repository, never more than [`MAX_MANIFEST_SIZE`]
//!   ([`read_manifest`], [`read_target_capped`]);
//! - retry a transient failure ([`RetryPolicy`]).
//!
//! Errors ([`Error`]) name the URL or path they are about; the tools map them to their exit
//! codes ([`Error::is_transport`], [`Error::is_content_mismatch`]).

mod change;
mod error;
mod load;
mod location;
mod target;

pub use abos_retry::{RetryPolicy, Tries};
pub use change::Change;
pub use error::{Error, Result};
pub use load::{Expiry, LoadOptions, TransportBox, TrustedRoot, load, load_if_present};
pub use location::{Source, dir_path_url, dir_url};
pub use target::{MANIFEST_TARGET, MAX_MANIFEST_SIZE, read_manifest, read_target_capped};
