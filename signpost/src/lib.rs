//! signpost: A/B partition sets on a GPT disk — boot flags, atomic switching, and the boot
//! selector.
//!
//! An update is atomic because the inactive set is written while it is unbootable, and one GPT
//! write makes it the next boot; a failed boot falls back by itself. This crate owns:
//!
//! - the attribute-bit encoding of the flags ([`attrs`]) and Bottlerocket's type GUIDs
//!   ([`guids`]);
//! - the pure model and its transitions ([`state`]): every command is a function of the flags;
//! - the GPT edge ([`gpt`]): both table copies, CRCs, 512- and 4096-byte sectors, and a write
//!   order that survives an interruption at any byte (the argument is in the module docs);
//! - [`Disk`] (a disk-image file or block device, locked while open for writing), [`Signpost`]
//!   (the disk as seen from the running set), [`boot_select`] (GRUB's `gptprio.next`) and
//!   [`write_new_table`] (a fresh table for image builders);
//! - host discovery ([`discovery`]) with injectable sysfs and dev roots;
//! - the checks that keep hostile or damaged disks out: a CRC-valid table is still refused if
//!   its entries overlap or leave the usable range or the disk, or the disk is truncated
//!   ([`gpt::check_table`]); every offset is computed with checked arithmetic; and no
//!   transition promotes a set that holds nothing bootable ([`content`]).
//!
//! ```no_run
//! use signpost::{Disk, SetName, Signpost};
//! # fn main() -> signpost::Result<()> {
//! let disk = Disk::open(std::path::Path::new("os.img"))?;
//! let mut sp = Signpost::new(disk, SetName::A)?;
//! sp.clear_inactive()?;            // B can't boot while we write it
//! // ... write B's BOOT/ROOT/HASH at sp.disk().set(SetName::B)?.root.first_byte ...
//! sp.mark_inactive_valid()?;       // B gets one try
//! sp.upgrade_to_inactive()?;       // B boots next
//! assert_eq!(sp.next_boot(), Some(SetName::B));
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod attrs;
mod boot;
pub mod content;
pub mod device;
pub mod discovery;
mod disk;
mod error;
pub mod gpt;
pub mod guids;
mod set;
mod signpost;
pub mod state;

pub use boot::{BootChoice, BootPlan, boot_select, plan_boot};
pub use device::{Access, DiskKind};
pub use disk::{Disk, TableWarning, find_sets};
pub use error::{Error, ExitStatus, Result};
pub use gpt::{NewPartition, write_new_table};
pub use set::{Flags, ParseSetNameError, Partition, PartitionSet, SetName};
pub use signpost::{PartitionStatus, Plan, SetStatus, Signpost, Status};
pub use state::{Command, DiskState};
