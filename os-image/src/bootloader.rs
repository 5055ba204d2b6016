//! Installing GRUB with our gptprio module (a build of `scripts/build-grub.sh`) on a disk image:
//! the BIOS path (boot.img in the protective MBR, core.img in BIOS-BOOT, as `grub-bios-setup`
//! does for a GPT disk) and the UEFI path (`EFI/BOOT/BOOTX64.EFI` on a FAT EFI-SYSTEM).
//!
//! The offsets are GRUB 2.06's (`include/grub/i386/pc/boot.h`, `util/setup.c`).

use crate::error::{self, Result};
use crate::layout::{Layout, Role};
use crate::tools;
use snafu::{ResultExt, ensure};
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// boot.img inside a build directory.
pub const BOOT_IMG: &str = "i386-pc/boot.img";
/// core.img inside a build directory.
pub const CORE_IMG: &str = "i386-pc/core.img";
/// The EFI application inside a build directory.
pub const EFI_APP: &str = "x86_64-efi/BOOTX64.EFI";
/// Where firmware looks for it on the EFI system partition.
pub const EFI_PATH: &str = "/EFI/BOOT/BOOTX64.EFI";

/// boot.img: the LBA of core.img's first sector (little-endian u64).
const KERNEL_SECTOR: usize = 0x5c;
/// boot.img: the boot drive (0xff: use the drive the BIOS passes in DL).
const BOOT_DRIVE: usize = 0x64;
/// boot.img: a 2-byte jump that `grub-bios-setup` replaces by two NOPs for hard disks.
const DRIVE_CHECK: usize = 0x66;
/// boot.img: start of the disk signature and partition table (kept from the disk).
const WINDOWS_NT_MAGIC: usize = 0x1b8;
/// diskboot (core.img's first sector): its block list entry, 12 bytes before the sector's end.
const BLOCKLIST: usize = 512 - 12;
/// The segment diskboot loads the rest of core.img to (`GRUB_BOOT_I386_PC_KERNEL_SEG + 0x20`).
const CORE_SEGMENT: u16 = 0x820;
/// diskboot loads core.img below 0x78000 starting at 0x8200 (util/setup.c's `maxsec`).
const MAX_CORE_BYTES: u64 = 0x78000 - 0x9000;

/// A GRUB build: the three files os-image installs.
#[derive(Debug, Clone)]
pub struct GrubBuild {
    /// The directory (`~/.cache/abos/grub-<version>-<hash>`).
    pub dir: PathBuf,
    boot_img: Vec<u8>,
    core_img: Vec<u8>,
}

fn bad(path: &Path, reason: impl Into<String>) -> error::Error {
    error::Error::BadBootloader {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

impl GrubBuild {
    /// Reads and checks a build directory.
    pub fn open(dir: &Path) -> Result<GrubBuild> {
        let read = |rel: &str| -> Result<Vec<u8>> {
            let path = dir.join(rel);
            std::fs::read(&path).map_err(|e| {
                bad(
                    &path,
                    format!("cannot read it ({e}); build it with scripts/build-grub.sh"),
                )
            })
        };
        let boot_img = read(BOOT_IMG)?;
        let core_img = read(CORE_IMG)?;
        let efi = dir.join(EFI_APP);
        ensure!(
            boot_img.len() == 512 && boot_img[510..512] == [0x55, 0xaa],
            error::BadBootloaderSnafu {
                path: dir.join(BOOT_IMG),
                reason: "not a 512-byte boot sector".to_string()
            }
        );
        ensure!(
            core_img.len() > 512 && core_img.len() as u64 <= MAX_CORE_BYTES,
            error::BadBootloaderSnafu {
                path: dir.join(CORE_IMG),
                reason: format!(
                    "{} bytes; a core image is more than one sector and at most {MAX_CORE_BYTES}",
                    core_img.len()
                )
            }
        );
        let efi_head = read(EFI_APP)?;
        ensure!(
            efi_head.starts_with(b"MZ"),
            error::BadBootloaderSnafu {
                path: efi,
                reason: "not a PE/COFF (EFI) executable".to_string()
            }
        );
        Ok(GrubBuild {
            dir: dir.to_path_buf(),
            boot_img,
            core_img,
        })
    }

    /// The MBR and core image bytes for a core image at `core_lba`, with the disk's current
    /// sector 0 (`mbr`, whose partition table is kept).
    pub fn bios_sectors(&self, mbr: &[u8; 512], core_lba: u64) -> ([u8; 512], Vec<u8>) {
        let mut boot = [0u8; 512];
        boot.copy_from_slice(&self.boot_img);
        // BPB area as on the disk (zeros on a protective MBR), like grub-bios-setup.
        boot[0x3..0x5a].copy_from_slice(&mbr[0x3..0x5a]);
        boot[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());
        boot[BOOT_DRIVE] = 0xff;
        boot[DRIVE_CHECK] = 0x90;
        boot[DRIVE_CHECK + 1] = 0x90;
        boot[WINDOWS_NT_MAGIC..].copy_from_slice(&mbr[WINDOWS_NT_MAGIC..]);
        let sectors = self.core_img.len().div_ceil(512);
        let mut core = self.core_img.clone();
        core.resize(sectors * 512, 0);
        let rest = u16::try_from(sectors - 1).expect("core image size checked in open");
        core[BLOCKLIST..BLOCKLIST + 8].copy_from_slice(&(core_lba + 1).to_le_bytes());
        core[BLOCKLIST + 8..BLOCKLIST + 10].copy_from_slice(&rest.to_le_bytes());
        core[BLOCKLIST + 10..BLOCKLIST + 12].copy_from_slice(&CORE_SEGMENT.to_le_bytes());
        (boot, core)
    }
}

/// Installs `grub` on the disk image at `disk` laid out as `layout`: BIOS (MBR boot code +
/// BIOS-BOOT) and UEFI (FAT on EFI-SYSTEM). `seed`/`epoch` make the FAT reproducible.
pub fn install(
    disk: &Path,
    layout: &Layout,
    grub: &GrubBuild,
    volume_id: u32,
    epoch: i64,
    work: &Path,
) -> Result<()> {
    tools::check_installed(&tools::required_for_bootloader())?;
    let bios = layout.get(Role::BiosBoot);
    let efi = layout.get(Role::EfiSystem);
    ensure!(
        grub.core_img.len() as u64 <= bios.len_bytes(),
        error::BadBootloaderSnafu {
            path: grub.dir.join(CORE_IMG),
            reason: format!(
                "{} bytes do not fit the {}-byte BIOS-BOOT partition",
                grub.core_img.len(),
                bios.len_bytes()
            )
        }
    );

    // UEFI: a FAT filesystem image with the application, then copied into EFI-SYSTEM.
    let staged = work.join("BOOTX64.EFI");
    std::fs::copy(grub.dir.join(EFI_APP), &staged).context(error::CopyFileSnafu {
        from: grub.dir.join(EFI_APP),
        to: &staged,
    })?;
    let when = std::time::UNIX_EPOCH + std::time::Duration::from_secs(epoch.max(0) as u64);
    std::fs::File::options()
        .write(true)
        .open(&staged)
        .and_then(|f| f.set_modified(when))
        .context(error::WriteFileSnafu { path: &staged })?;
    let fat = work.join("efi-system.fat");
    tools::make_fat(
        &fat,
        efi.len_bytes(),
        "EFI-SYSTEM",
        volume_id,
        &[(EFI_PATH, &staged)],
        epoch,
    )?;
    let fat_bytes = std::fs::read(&fat).context(error::ReadFileSnafu { path: &fat })?;

    let ctx = || error::WriteFileSnafu { path: disk };
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .open(disk)
        .context(ctx())?;
    let mut mbr = [0u8; 512];
    f.read_exact(&mut mbr).context(ctx())?;
    ensure!(
        mbr[510..512] == [0x55, 0xaa] && mbr[0x1c2] == 0xee,
        error::BadBootloaderSnafu {
            path: disk,
            reason: "sector 0 is not a protective MBR".to_string()
        }
    );
    let (boot, core) = grub.bios_sectors(&mbr, bios.first_lba());
    f.seek(SeekFrom::Start(bios.first_byte())).context(ctx())?;
    f.write_all(&core).context(ctx())?;
    f.seek(SeekFrom::Start(efi.first_byte())).context(ctx())?;
    f.write_all(&fat_bytes).context(ctx())?;
    f.seek(SeekFrom::Start(0)).context(ctx())?;
    f.write_all(&boot).context(ctx())?;
    f.sync_all().context(ctx())?;
    Ok(())
}

#[cfg(test)]
mod test {
    use super::*;

    fn fake(core_len: usize) -> GrubBuild {
        let mut boot_img = vec![0xabu8; 512];
        boot_img[510] = 0x55;
        boot_img[511] = 0xaa;
        GrubBuild {
            dir: PathBuf::from("/nonexistent"),
            boot_img,
            core_img: vec![0xcd; core_len],
        }
    }

    #[test]
    fn bios_sectors_patch_what_grub_bios_setup_patches() {
        let mut mbr = [0u8; 512];
        mbr[0x1b8..0x1be].copy_from_slice(&[1, 2, 3, 4, 0, 0]);
        mbr[0x1c2] = 0xee;
        mbr[510] = 0x55;
        mbr[511] = 0xaa;
        let (boot, core) = fake(1000).bios_sectors(&mbr, 2048);
        assert_eq!(&boot[..3], &[0xab; 3]);
        assert_eq!(&boot[0x3..0x5a], &mbr[0x3..0x5a]);
        assert_eq!(
            u64::from_le_bytes(boot[0x5c..0x64].try_into().unwrap()),
            2048
        );
        assert_eq!(boot[0x64], 0xff);
        assert_eq!(&boot[0x66..0x68], &[0x90, 0x90]);
        assert_eq!(&boot[0x1b8..], &mbr[0x1b8..], "partition table kept");
        assert_eq!(core.len(), 1024, "padded to whole sectors");
        assert_eq!(u64::from_le_bytes(core[500..508].try_into().unwrap()), 2049);
        assert_eq!(u16::from_le_bytes(core[508..510].try_into().unwrap()), 1);
        assert_eq!(
            u16::from_le_bytes(core[510..512].try_into().unwrap()),
            0x820
        );
        assert_eq!(&core[1000..], &[0u8; 24]);
    }

    #[test]
    fn open_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = GrubBuild::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("i386-pc/boot.img"), "{err}");
        assert!(err.contains("build-grub.sh"), "{err}");
    }
}
