//! os-image: builds the dm-verity A/B disk image and the update artifacts (being written).
#![deny(missing_docs)]

pub mod artifacts;
pub mod boot;
pub mod bootfs;
mod build;
pub mod cli;
pub mod commands;
mod error;
pub mod identity;
pub mod image;
pub mod layout;
pub mod output;
pub mod rootfs;
pub mod tools;
pub mod verify_disk;
pub mod verity;

pub use boot::{BootParams, BootedSystem, emulated_boot, read_boot_params};
pub use build::{BuildSpec, NoReporter, Populate, Reporter, Step, build};
pub use error::{Error, ExitStatus, Result};
pub use verify_disk::{DiskReport, verify_disk};
