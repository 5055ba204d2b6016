//! os-image: builds the dm-verity A/B disk image and the update artifacts (being written).
#![deny(missing_docs)]

pub mod bootfs;
mod error;
pub mod identity;
pub mod layout;
pub mod rootfs;
pub mod tools;
pub mod verity;

pub use error::{Error, Result};
