//! kernel-config: the kernel options a dm-verity A/B image needs, a merge of fragments onto a
//! base config, and a checker that says whether the image can boot with a given `.config`.
//!
//! The image boots without an initramfs: GRUB passes `dm-mod.create=` and the kernel itself
//! sets up dm-verity and mounts the root. So device-mapper, `DM_INIT`, the verity target, the
//! root filesystem and the root disk's drivers must be built in (`=y`); `=m` is reported as
//! "module only". The rules are the fragments in `kernel-config/fragments/` (fact sheet §6),
//! built into the crate:
//!
//! ```
//! use kernel_config::{check::{check, Verdict}, config::Config, fragment::{builtin, RootFs}};
//! let config = Config::parse("CONFIG_BLK_DEV_DM=m\n", std::path::Path::new(".config")).unwrap();
//! let report = check(&config, &builtin(), RootFs::Ext4);
//! assert_eq!(report.verdict, Verdict::CannotBoot); // DM_INIT, DM_VERITY, EXT4_FS… missing
//! ```
#![deny(missing_docs)]

pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
mod error;
pub mod fragment;
pub mod merge;
pub mod output;

pub use error::{Error, ExitStatus, Result};
