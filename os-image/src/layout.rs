//! The disk layout plan (pure): Bottlerocket's partition plan (fact sheet §4.1).
//!
//! Sizes scale with the OS image size in GiB (default 2): per GiB, BOOT 20 MiB, ROOT 460, HASH 5,
//! RESERVED 15 (minus the bank's 5 MiB EFI partition), PRIVATE 24 (minus the 6 MiB of fixed
//! overhead and the 1 MiB DATA-A). Fixed: 1 MiB for each GPT copy, BIOS-BOOT 4 MiB, EFI 5 MiB per
//! bank, DATA-A 1 MiB. Everything is 1 MiB aligned; partitions are numbered 1–13 in disk order.
//!
//! [`LayoutSize::SmallTest`] is the 2 GiB plan at one tenth scale (each size rounded to a whole
//! MiB, at least 1): same order, same roles, roughly the same proportions, a 208 MiB disk. It is
//! for tests; its 4 MiB BOOT partition holds no real kernel.

use crate::error::{self, Result};
use serde::Serialize;
use signpost::{Flags, NewPartition, SetName, attrs, guids};
use snafu::ensure;
use std::fmt;

/// One MiB.
pub const MIB: u64 = 1 << 20;
/// Logical sector size of the images we write.
pub const SECTOR_SIZE: u64 = 512;
/// Largest OS image size we plan for.
pub const MAX_OS_GIB: u32 = 1024;
/// Default OS image size (Bottlerocket's `os-image-size-gib`).
pub const DEFAULT_OS_GIB: u32 = 2;

/// How big a disk to plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutSize {
    /// Bottlerocket's plan for an OS image of this many GiB.
    Gib(u32),
    /// The 2 GiB plan at one tenth scale, for tests.
    SmallTest,
}

impl Default for LayoutSize {
    fn default() -> Self {
        LayoutSize::Gib(DEFAULT_OS_GIB)
    }
}

impl fmt::Display for LayoutSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayoutSize::Gib(n) => write!(f, "{n} GiB"),
            LayoutSize::SmallTest => write!(f, "small test layout"),
        }
    }
}

/// What a partition is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case", tag = "role", content = "set")]
pub enum Role {
    /// BIOS boot partition (GRUB core image on x86_64).
    BiosBoot,
    /// EFI system partition (bank A).
    EfiSystem,
    /// EFI backup placeholder (bank B).
    EfiBackup,
    /// A set's BOOT partition (kernel, grub.cfg, verity parameters; carries the flags).
    Boot(SetName),
    /// A set's ROOT partition (dm-verity protected root filesystem).
    Root(SetName),
    /// A set's HASH partition (hash tree).
    Hash(SetName),
    /// A set's RESERVED partition.
    Reserved(SetName),
    /// BOTTLEROCKET-PRIVATE.
    Private,
    /// DATA-A (unlabelled; labelled at first boot).
    Data,
}

impl Role {
    /// The GPT partition type GUID (canonical text).
    pub fn type_guid(self) -> &'static str {
        match self {
            Role::BiosBoot => guids::BIOS_BOOT,
            Role::EfiSystem => guids::EFI_SYSTEM,
            Role::EfiBackup => guids::EFI_BACKUP,
            Role::Boot(_) => guids::BOOT,
            Role::Root(_) => guids::ROOT,
            Role::Hash(_) => guids::HASH,
            Role::Reserved(_) => guids::RESERVED,
            Role::Private => guids::PRIVATE,
            Role::Data => guids::DATA,
        }
    }

    /// The GPT label Bottlerocket gives it.
    pub fn label(self) -> String {
        match self {
            Role::BiosBoot => "BIOS-BOOT".into(),
            Role::EfiSystem => "EFI-SYSTEM".into(),
            Role::EfiBackup => "EFI-BACKUP".into(),
            Role::Boot(s) => format!("BOTTLEROCKET-BOOT-{s}"),
            Role::Root(s) => format!("BOTTLEROCKET-ROOT-{s}"),
            Role::Hash(s) => format!("BOTTLEROCKET-HASH-{s}"),
            Role::Reserved(s) => format!("BOTTLEROCKET-RESERVED-{s}"),
            Role::Private => "BOTTLEROCKET-PRIVATE".into(),
            Role::Data => String::new(),
        }
    }
}

/// One partition of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedPartition {
    /// Partition number (1-based, disk order).
    pub number: u32,
    /// What it is for.
    pub role: Role,
    /// GPT label.
    pub label: String,
    /// Offset from the start of the disk, MiB.
    pub offset_mib: u64,
    /// Size, MiB.
    pub size_mib: u64,
    /// Attribute word of a fresh image (BOOT-A: priority 1 + successful; all others 0).
    pub attributes: u64,
}

impl PlannedPartition {
    /// Byte offset of the first byte.
    pub fn first_byte(&self) -> u64 {
        self.offset_mib * MIB
    }
    /// Length in bytes.
    pub fn len_bytes(&self) -> u64 {
        self.size_mib * MIB
    }
    /// First 512-byte sector.
    pub fn first_lba(&self) -> u64 {
        self.first_byte() / SECTOR_SIZE
    }
    /// Last 512-byte sector (inclusive).
    pub fn last_lba(&self) -> u64 {
        (self.first_byte() + self.len_bytes()) / SECTOR_SIZE - 1
    }
}

/// The whole plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Layout {
    /// Size it was planned for.
    pub size: LayoutSize,
    /// Disk size, MiB (both GPT copies included).
    pub disk_mib: u64,
    /// Partitions in disk (and number) order.
    pub partitions: Vec<PlannedPartition>,
}

/// Sizes in MiB of the parts of a plan.
struct Sizes {
    bios: u64,
    efi: u64,
    boot: u64,
    root: u64,
    hash: u64,
    reserved: u64,
    private: u64,
    data: u64,
}

impl Sizes {
    fn for_size(size: LayoutSize) -> Result<Sizes> {
        match size {
            LayoutSize::Gib(n) => {
                ensure!(
                    (1..=MAX_OS_GIB).contains(&n),
                    error::LayoutSizeSnafu { gib: n }
                );
                let n = u64::from(n);
                Ok(Sizes {
                    bios: 4,
                    efi: 5,
                    boot: 20 * n,
                    root: 460 * n,
                    hash: 5 * n,
                    reserved: 15 * n - 5,
                    private: 24 * n - 6 - 1,
                    data: 1,
                })
            }
            LayoutSize::SmallTest => Ok(Sizes {
                bios: 1,
                efi: 1,
                boot: 4,
                root: 92,
                hash: 1,
                reserved: 2,
                private: 4,
                data: 1,
            }),
        }
    }
}

/// Flags of a fresh image: BOOT-A priority 1, no tries, successful; BOOT-B all zero.
pub fn initial_flags(set: SetName) -> Flags {
    match set {
        SetName::A => Flags {
            priority: 1,
            tries_left: 0,
            successful: true,
        },
        SetName::B => Flags {
            priority: 0,
            tries_left: 0,
            successful: false,
        },
    }
}

impl Layout {
    /// Plans a disk (pure).
    pub fn plan(size: LayoutSize) -> Result<Layout> {
        let s = Sizes::for_size(size)?;
        let mut roles: Vec<(Role, u64)> = vec![(Role::BiosBoot, s.bios)];
        for set in [SetName::A, SetName::B] {
            let efi = if set == SetName::A {
                Role::EfiSystem
            } else {
                Role::EfiBackup
            };
            roles.extend([
                (efi, s.efi),
                (Role::Boot(set), s.boot),
                (Role::Root(set), s.root),
                (Role::Hash(set), s.hash),
                (Role::Reserved(set), s.reserved),
            ]);
        }
        roles.extend([(Role::Private, s.private), (Role::Data, s.data)]);
        let mut offset = 1; // primary GPT
        let mut partitions = Vec::with_capacity(roles.len());
        for (i, (role, size_mib)) in roles.into_iter().enumerate() {
            let attributes = match role {
                Role::Boot(set) => attrs::encode(0, initial_flags(set)),
                _ => 0,
            };
            partitions.push(PlannedPartition {
                number: i as u32 + 1,
                role,
                label: role.label(),
                offset_mib: offset,
                size_mib,
                attributes,
            });
            offset += size_mib;
        }
        Ok(Layout {
            size,
            disk_mib: offset + 1,
            partitions,
        })
    }

    /// Disk size in bytes.
    pub fn disk_bytes(&self) -> u64 {
        self.disk_mib * MIB
    }

    /// The partition with this role.
    pub fn get(&self, role: Role) -> &PlannedPartition {
        self.partitions
            .iter()
            .find(|p| p.role == role)
            .expect("every role is planned")
    }

    /// The GPT entries to write, with unique GUIDs derived from `seed` (so equal inputs give an
    /// equal table). DATA-A gets Bottlerocket's fallback GUID, as in the split plan.
    pub fn new_partitions(&self, seed: &[u8]) -> Vec<NewPartition> {
        self.partitions
            .iter()
            .map(|p| NewPartition {
                type_guid: guids::to_bytes(p.role.type_guid()),
                label: p.label.clone(),
                first_lba: p.first_lba(),
                last_lba: p.last_lba(),
                attributes: p.attributes,
                unique_guid: match p.role {
                    Role::Data => guids::to_bytes(guids::DATA_UNIQUE_FALLBACK),
                    _ => derived_guid(seed, &format!("partition {}", p.number)),
                },
            })
            .collect()
    }

    /// Which plan a disk of `disk_bytes` would have been built with, if any.
    pub fn for_disk_size(disk_bytes: u64) -> Option<Layout> {
        let small = Layout::plan(LayoutSize::SmallTest).expect("small plan");
        if disk_bytes == small.disk_bytes() {
            return Some(small);
        }
        let gib = 1024 * MIB;
        if disk_bytes.is_multiple_of(gib) {
            let n = u32::try_from(disk_bytes / gib).ok()?;
            return Layout::plan(LayoutSize::Gib(n)).ok();
        }
        None
    }
}

/// A GUID (on-disk bytes) derived from a seed and a purpose: SHA-256 based, version-4 shaped.
pub fn derived_guid(seed: &[u8], purpose: &str) -> [u8; 16] {
    let uuid = derived_uuid(seed, purpose);
    guids::to_bytes(&crate::verity::format_uuid(&uuid))
}

/// A UUID (text-order bytes) derived from a seed and a purpose.
pub fn derived_uuid(seed: &[u8], purpose: &str) -> [u8; 16] {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(seed);
    ctx.update(b"\0");
    ctx.update(purpose.as_bytes());
    let d = ctx.finish();
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&d.as_ref()[..16]);
    uuid[6] = (uuid[6] & 0x0f) | 0x40;
    uuid[8] = (uuid[8] & 0x3f) | 0x80;
    uuid
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn two_gib_matches_the_fact_sheet_table() {
        let l = Layout::plan(LayoutSize::Gib(2)).unwrap();
        let got: Vec<(String, u64, u64)> = l
            .partitions
            .iter()
            .map(|p| (p.label.clone(), p.offset_mib, p.size_mib))
            .collect();
        let want = [
            ("BIOS-BOOT", 1, 4),
            ("EFI-SYSTEM", 5, 5),
            ("BOTTLEROCKET-BOOT-A", 10, 40),
            ("BOTTLEROCKET-ROOT-A", 50, 920),
            ("BOTTLEROCKET-HASH-A", 970, 10),
            ("BOTTLEROCKET-RESERVED-A", 980, 25),
            ("EFI-BACKUP", 1005, 5),
            ("BOTTLEROCKET-BOOT-B", 1010, 40),
            ("BOTTLEROCKET-ROOT-B", 1050, 920),
            ("BOTTLEROCKET-HASH-B", 1970, 10),
            ("BOTTLEROCKET-RESERVED-B", 1980, 25),
            ("BOTTLEROCKET-PRIVATE", 2005, 41),
            ("", 2046, 1),
        ];
        let want: Vec<(String, u64, u64)> = want
            .iter()
            .map(|(l, o, s)| (l.to_string(), *o, *s))
            .collect();
        assert_eq!(got, want);
        assert_eq!(l.disk_mib, 2048);
        assert_eq!(l.get(Role::Boot(SetName::A)).number, 3);
        assert_eq!(l.get(Role::Root(SetName::A)).number, 4);
        assert_eq!(l.get(Role::Hash(SetName::A)).number, 5);
        assert_eq!(l.get(Role::Boot(SetName::B)).number, 8);
        assert_eq!(l.get(Role::Boot(SetName::A)).first_lba(), 10 * 2048);
        assert_eq!(l.get(Role::Boot(SetName::A)).last_lba(), 50 * 2048 - 1);
    }

    #[test]
    fn sizes_scale_and_fill_the_disk() {
        for n in [1, 2, 3, 8, 20] {
            let l = Layout::plan(LayoutSize::Gib(n)).unwrap();
            assert_eq!(l.disk_mib, 1024 * u64::from(n), "{n} GiB");
            assert_eq!(l.get(Role::Root(SetName::B)).size_mib, 460 * u64::from(n));
            for w in l.partitions.windows(2) {
                assert_eq!(w[0].offset_mib + w[0].size_mib, w[1].offset_mib);
            }
            assert_eq!(Layout::for_disk_size(l.disk_bytes()).unwrap(), l);
        }
        assert!(Layout::plan(LayoutSize::Gib(0)).is_err());
        assert!(Layout::plan(LayoutSize::Gib(MAX_OS_GIB + 1)).is_err());
    }

    #[test]
    fn small_layout_keeps_order_and_roles() {
        let big = Layout::plan(LayoutSize::Gib(2)).unwrap();
        let small = Layout::plan(LayoutSize::SmallTest).unwrap();
        assert_eq!(small.disk_mib, 208);
        let roles = |l: &Layout| l.partitions.iter().map(|p| p.role).collect::<Vec<_>>();
        assert_eq!(roles(&big), roles(&small));
        // ROOT is still the bulk and HASH still holds ROOT's hash tree.
        let root = small.get(Role::Root(SetName::A));
        let hash = small.get(Role::Hash(SetName::A));
        assert!(crate::verity::hash_device_bytes(root.len_bytes() / 4096) <= hash.len_bytes());
        let big_hash = big.get(Role::Hash(SetName::A));
        let big_root = big.get(Role::Root(SetName::A));
        assert!(
            crate::verity::hash_device_bytes(big_root.len_bytes() / 4096) <= big_hash.len_bytes()
        );
        assert_eq!(Layout::for_disk_size(small.disk_bytes()).unwrap(), small);
    }

    #[test]
    fn initial_attributes() {
        let l = Layout::plan(LayoutSize::Gib(2)).unwrap();
        let a = attrs::decode(l.get(Role::Boot(SetName::A)).attributes);
        assert_eq!(
            a,
            Flags {
                priority: 1,
                tries_left: 0,
                successful: true
            }
        );
        assert_eq!(
            l.get(Role::Boot(SetName::A)).attributes,
            (1 << 48) | (1 << 56)
        );
        assert_eq!(l.get(Role::Boot(SetName::B)).attributes, 0);
        assert!(
            l.partitions
                .iter()
                .filter(|p| p.role != Role::Boot(SetName::A))
                .all(|p| p.attributes == 0)
        );
    }

    #[test]
    fn guids_are_deterministic_and_distinct() {
        let l = Layout::plan(LayoutSize::SmallTest).unwrap();
        let a = l.new_partitions(b"seed");
        let b = l.new_partitions(b"seed");
        let c = l.new_partitions(b"other");
        assert_eq!(a, b);
        assert_ne!(a[2].unique_guid, c[2].unique_guid);
        let mut ids: Vec<_> = a.iter().map(|p| p.unique_guid).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), a.len());
        assert_eq!(
            guids::to_string(&a[12].unique_guid),
            guids::DATA_UNIQUE_FALLBACK
        );
    }
}
