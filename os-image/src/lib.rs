//! os-image: builds the dm-verity A/B disk image and the update artifacts (being written).
#![deny(missing_docs)]

mod error;
pub mod layout;
pub mod verity;

pub use error::{Error, Result};
