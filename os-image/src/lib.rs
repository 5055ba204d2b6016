//! os-image: builds the dm-verity A/B disk image that hosts run and that updates replace, and
//! reads it back.
//!
//! One module per noun:
//! - [`layout`]: Bottlerocket's partition plan (pure), sized from the OS image size in GiB;
//! - [`verity`]: our own dm-verity hash tree (format 1, sha256, 4096/4096, superblock first),
//!   byte-identical to `veritysetup format`, and a verifier that reports the first bad block;
//! - [`rootfs`]: staging the input tree (directory or tar), os-release / root.json / updog.toml,
//!   reproducible ext4 (shrunk to content) or erofs;
//! - [`bootfs`]: the boot filesystem: kernel, `grub/grub.cfg` with the `dm-mod.create` table,
//!   `verity.json` and `verity.env` for boot stages that do not parse grub.cfg;
//! - [`tools`]: every external command (mkfs.ext4, debugfs, resize2fs, dumpe2fs, mkfs.erofs,
//!   fsck.erofs, lz4), with typed errors and the Debian package of a missing tool;
//! - [`image`]: the sparse disk image, its GPT (through signpost) and the partitions' contents;
//! - [`artifacts`]: the LZ4 update artifacts (§4.3 names) with sizes and digests;
//! - [`build()`]: the whole build, publishing into the output directory only when complete, and
//!   returning the [`update_metadata::BuildDescription`] pubsys consumes;
//! - [`verify_disk()`], [`read_boot_params()`], [`emulated_boot()`]: reading a disk back.
//!
//! ```no_run
//! use os_image::{BuildSpec, NoReporter, Populate};
//! use os_image::{bootfs::BootOptions, identity::{Identity, ImageName}, layout::LayoutSize};
//! use os_image::rootfs::{Extras, FsKind, RootfsSource};
//! # fn main() -> os_image::Result<()> {
//! let spec = BuildSpec {
//!     rootfs: RootfsSource::from_path("rootfs".as_ref())?,
//!     identity: Identity {
//!         name: ImageName::default(),
//!         variant: "aws-dev".parse().unwrap(),
//!         arch: "x86_64".parse().unwrap(),
//!         version: "1.0.0".parse().unwrap(),
//!         build_id: "abcdef12".parse()?,
//!     },
//!     extras: Extras::default(),
//!     boot: BootOptions::default(),
//!     layout: LayoutSize::Gib(2),
//!     fs: FsKind::Ext4,
//!     populate: Populate::SetA,
//!     out_dir: "build".into(),
//!     epoch: jiff::Timestamp::from_second(1_700_000_000).unwrap(),
//! };
//! let description = os_image::build(&spec, &NoReporter)?;
//! let report = os_image::verify_disk(&spec.out_dir.join(&description.disk_image.unwrap().file_name))?;
//! # Ok(()) }
//! ```
//!
//! Tests that need external tools use `test_support::require_tool` (SKIP outside CI, failure
//! under `CI=true`); benchmarks are `#[ignore]`d tests in `tests/bench.rs`.
#![deny(missing_docs)]

pub mod artifacts;
pub mod boot;
pub mod bootfs;
pub mod bootloader;
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

/// The dm-verity hash tree (build, verify, superblock), from the `dm-verity` crate.
pub use dm_verity as verity;

pub use boot::{BootParams, BootedSystem, emulated_boot, read_boot_params};
pub use build::{BuildSpec, NoReporter, Populate, Reporter, Step, build};
pub use error::{Error, ExitStatus, Result};
pub use verify_disk::{DiskReport, verify_disk};
