//! Reading a set back from a disk: its boot parameters, and the emulated boot (what GRUB and the
//! kernel's dm-verity would do, done in user space on a disk image or block device).

use crate::bootfs::{self, BootVerity};
use crate::error::{self, Result};
use crate::rootfs::{self, FsKind};
use crate::tools;
use crate::verity::{self, VerityParams, Window};
use serde::Serialize;
use signpost::{Partition, PartitionSet, SetName};
use snafu::{ResultExt, ensure};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// The verity parameters a BOOT partition carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootParams {
    /// `verity.json` as stored.
    pub verity: BootVerity,
    /// The `dm-mod.create` value from grub.cfg (checked equal to the one verity.json implies).
    pub grub_dm_mod_create: String,
    /// Whether the partition holds a kernel (`/vmlinuz`).
    pub has_kernel: bool,
}

impl BootParams {
    /// As [`VerityParams`].
    pub fn params(&self) -> Result<VerityParams> {
        self.verity.params(Path::new(bootfs::VERITY_JSON_PATH))
    }
}

/// What the emulated boot found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BootedSystem {
    /// The set that booted.
    pub set: SetName,
    /// Its boot parameters.
    pub boot: BootParams,
    /// `/etc/os-release` of its root filesystem.
    pub os_release: BTreeMap<String, String>,
}

fn read_at(disk: &Path, partition: &Partition, offset: u64, len: usize) -> Result<Vec<u8>> {
    let ctx = || error::ReadPartitionSnafu {
        path: disk,
        partition: partition.label.clone(),
    };
    let mut file = File::open(disk).context(ctx())?;
    file.seek(SeekFrom::Start(partition.first_byte + offset))
        .context(ctx())?;
    let mut buf = vec![0u8; len];
    file.read_exact(&mut buf).context(ctx())?;
    Ok(buf)
}

/// Which filesystem starts a partition, by superblock magic.
pub fn filesystem_at(disk: &Path, partition: &Partition) -> Result<Option<FsKind>> {
    let sb = read_at(disk, partition, 1024, 64)?;
    if sb[56..58] == [0x53, 0xef] {
        Ok(Some(FsKind::Ext4))
    } else if sb[0..4] == [0xe2, 0xe1, 0xf5, 0xe0] {
        Ok(Some(FsKind::Erofs))
    } else {
        Ok(None)
    }
}

/// Reads the verity parameters (root hash, salt, data blocks) a set's BOOT partition carries:
/// `verity.json`, checked against the `dm-mod.create` table in `grub/grub.cfg`.
pub fn read_boot_params(disk: &Path, boot: &Partition) -> Result<BootParams> {
    ensure!(
        filesystem_at(disk, boot)? == Some(FsKind::Ext4),
        error::NoBootFilesystemSnafu {
            partition: boot.label.clone()
        }
    );
    let tmp = tempfile::tempdir().context(error::CreateTempSnafu)?;
    let json_path = tmp.path().join("verity.json");
    tools::debugfs_dump(
        disk,
        boot.first_byte,
        &format!("/{}", bootfs::VERITY_JSON_PATH),
        &json_path,
    )?;
    let grub_path = tmp.path().join("grub.cfg");
    tools::debugfs_dump(
        disk,
        boot.first_byte,
        &format!("/{}", bootfs::GRUB_CFG_PATH),
        &grub_path,
    )?;
    let origin = PathBuf::from(format!(
        "{}:{}/{}",
        disk.display(),
        boot.label,
        bootfs::VERITY_JSON_PATH
    ));
    let bytes = std::fs::read(&json_path).context(error::ReadFileSnafu { path: &json_path })?;
    let verity: BootVerity =
        serde_json::from_slice(&bytes).context(error::BootParamsParseSnafu { path: &origin })?;
    let params = verity.params(&origin)?;
    let grub =
        std::fs::read_to_string(&grub_path).context(error::ReadFileSnafu { path: &grub_path })?;
    let grub_table = bootfs::dm_table_from_grub_cfg(&grub).unwrap_or_default();
    let expected = bootfs::dm_mod_create(&params);
    ensure!(
        grub_table == expected && verity.dm_mod_create == expected,
        error::BootParamsDisagreeSnafu {
            partition: boot.label.clone(),
            grub: grub_table,
            json: verity.dm_mod_create.clone()
        }
    );
    let kernel = tmp.path().join("vmlinuz");
    let has_kernel = tools::debugfs_dump(
        disk,
        boot.first_byte,
        &format!("/{}", bootfs::KERNEL_PATH),
        &kernel,
    )
    .is_ok();
    Ok(BootParams {
        verity,
        grub_dm_mod_create: grub_table,
        has_kernel,
    })
}

/// The emulated boot: verify the chosen set's root against its hash partition with the BOOT
/// partition's parameters (every block, as dm-verity would on read), then read os-release from
/// the root filesystem. Errors are wrapped in [`crate::Error::SetVerification`] naming the set.
///
/// A block device is read from the device, not from pages cached earlier (a disk written with
/// `dd` leaves its bytes there): see [`abos_fsio::read_from_device`].
pub fn emulated_boot(disk: &Path, set: &PartitionSet) -> Result<BootedSystem> {
    abos_fsio::read_from_device(disk).context(error::ReadFromDeviceSnafu { path: disk })?;
    boot_inner(disk, set).context(error::SetVerificationSnafu { set: set.name })
}

fn boot_inner(disk: &Path, set: &PartitionSet) -> Result<BootedSystem> {
    let boot = read_boot_params(disk, &set.boot)?;
    let params = boot.params()?;
    ensure!(
        params.data_bytes() <= set.root.len_bytes,
        error::SetContentSnafu {
            set: set.name,
            what: format!(
                "verity covers {} bytes but ROOT has {}",
                params.data_bytes(),
                set.root.len_bytes
            )
        }
    );
    ensure!(
        params.hash_device_bytes() <= set.hash.len_bytes,
        error::SetContentSnafu {
            set: set.name,
            what: format!(
                "the hash tree needs {} bytes but HASH has {}",
                params.hash_device_bytes(),
                set.hash.len_bytes
            )
        }
    );
    let found = filesystem_at(disk, &set.root)?;
    ensure!(
        found == Some(boot.verity.root_fs),
        error::SetContentSnafu {
            set: set.name,
            what: format!(
                "ROOT should hold {} but holds {}",
                boot.verity.root_fs,
                found.map_or("no filesystem".to_string(), |k| k.to_string())
            )
        }
    );
    let open = || File::open(disk).context(error::OpenFileSnafu { path: disk });
    let mut data = Window::new(open()?, set.root.first_byte, params.data_bytes());
    let mut hash = Window::new(open()?, set.hash.first_byte, set.hash.len_bytes);
    verity::verify(&mut data, &mut hash, &params).context(error::VeritySnafu {
        op: "check",
        path: disk,
    })?;
    let os_release = read_os_release(disk, &set.root, boot.verity.root_fs, params.data_bytes())?;
    Ok(BootedSystem {
        set: set.name,
        boot,
        os_release,
    })
}

fn read_os_release(
    disk: &Path,
    root: &Partition,
    kind: FsKind,
    fs_bytes: u64,
) -> Result<BTreeMap<String, String>> {
    let tmp = tempfile::tempdir().context(error::CreateTempSnafu)?;
    let text_path = match kind {
        FsKind::Ext4 => {
            let out = tmp.path().join("os-release");
            tools::debugfs_dump(
                disk,
                root.first_byte,
                &format!("/{}", rootfs::OS_RELEASE_PATH),
                &out,
            )?;
            out
        }
        FsKind::Erofs => {
            let image = tmp.path().join("root.erofs");
            let mut src = Window::new(
                File::open(disk).context(error::OpenFileSnafu { path: disk })?,
                root.first_byte,
                fs_bytes,
            );
            let mut dst = File::create(&image).context(error::CreateFileSnafu { path: &image })?;
            std::io::copy(&mut src, &mut dst).context(error::WriteFileSnafu { path: &image })?;
            let tree = tmp.path().join("tree");
            tools::erofs_extract(&image, &tree)?;
            let out = tree.join(rootfs::OS_RELEASE_PATH);
            ensure!(
                out.is_file(),
                error::FileNotInImageSnafu {
                    image: disk,
                    offset: root.first_byte,
                    path: rootfs::OS_RELEASE_PATH
                }
            );
            out
        }
    };
    let text =
        std::fs::read_to_string(&text_path).context(error::ReadFileSnafu { path: &text_path })?;
    Ok(rootfs::parse_os_release(&text))
}
