//! The BOOT filesystem: kernel, `grub/grub.cfg` with the dm-verity table (fact sheet §4.2 step 8),
//! and the same verity parameters in machine-readable form (`verity.json`, `verity.env`) for a
//! boot stage that does not parse grub.cfg.

use crate::error::{self, Result};
use crate::identity::Identity;
use crate::rootfs::{self, FsKind};
use crate::verity::{self, VerityParams};
use serde::{Deserialize, Serialize};
use snafu::{OptionExt, ResultExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// grub.cfg inside the boot filesystem.
pub const GRUB_CFG_PATH: &str = "grub/grub.cfg";
/// JSON verity parameters inside the boot filesystem.
pub const VERITY_JSON_PATH: &str = "verity.json";
/// Shell-sourceable verity parameters inside the boot filesystem.
pub const VERITY_ENV_PATH: &str = "verity.env";
/// The kernel inside the boot filesystem.
pub const KERNEL_PATH: &str = "vmlinuz";
/// The initramfs inside the boot filesystem (only with [`BootOptions::initrd`]).
pub const INITRD_PATH: &str = "initrd.img";
/// dm-verity optional arguments Bottlerocket uses.
pub const VERITY_OPTIONS: [&str; 2] = ["restart_on_corruption", "ignore_zero_blocks"];
/// The data device in the table: the partition after BOOT.
pub const ROOT_DEVICE: &str = "PARTUUID=$boot_uuid/PARTNROFF=1";
/// The hash device in the table: two partitions after BOOT.
pub const HASH_DEVICE: &str = "PARTUUID=$boot_uuid/PARTNROFF=2";

/// Bottlerocket's kernel command line (before `--`), after any variant parameters.
pub const DEFAULT_KERNEL_PARAMETERS: &[&str] = &[
    "root=/dev/dm-0",
    "rootwait",
    "ro",
    "raid=noautodetect",
    "random.trust_cpu=on",
    "selinux=1",
    "enforcing=1",
];
/// Bottlerocket's init arguments (after `--`).
pub const DEFAULT_INIT_PARAMETERS: &[&str] = &[
    "systemd.log_target=journal-or-kmsg",
    "systemd.log_color=0",
    "systemd.show_status=true",
];

/// What goes on the boot partition besides the verity parameters.
#[derive(Debug, Clone, Default)]
pub struct BootOptions {
    /// Kernel image to install as `/vmlinuz`.
    pub kernel: Option<PathBuf>,
    /// Variant kernel parameters, placed first on the command line.
    pub kernel_parameters: Vec<String>,
    /// Init arguments after `--`; `None` means Bottlerocket's systemd arguments.
    pub init_parameters: Option<Vec<String>>,
    /// Initramfs to install as `/initrd.img` (grub.cfg gets an `initrd` line). Bottlerocket's
    /// kernel needs none (`DM_INIT=y`); a distribution kernel with dm-verity as a module does.
    pub initrd: Option<PathBuf>,
    /// A GRUB build with our gptprio module (`scripts/build-grub.sh`) to install on the disk
    /// image: BIOS (MBR + BIOS-BOOT) and UEFI (EFI-SYSTEM). `None`: the disk has no bootloader.
    pub bootloader: Option<PathBuf>,
}

/// The OS a boot partition belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootOs {
    /// Image name.
    pub name: String,
    /// Variant.
    pub variant: String,
    /// Architecture.
    pub arch: String,
    /// Version.
    pub version: String,
    /// Build id.
    pub build_id: String,
}

/// `verity.json`: everything a boot stage needs to set up dm-verity for this set's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootVerity {
    /// Verity format (hash type), 1.
    pub format: u32,
    /// Hash algorithm, `sha256`.
    pub hash_algorithm: String,
    /// Data block size.
    pub data_block_size: u32,
    /// Hash block size.
    pub hash_block_size: u32,
    /// Data blocks (the root filesystem's size / 4096).
    pub data_blocks: u64,
    /// First hash block on the hash device (1: block 0 is the superblock).
    pub hash_start_block: u64,
    /// Root hash, hex.
    pub root_hash: String,
    /// Salt, hex.
    pub salt: String,
    /// UUID in the hash superblock.
    pub uuid: String,
    /// Partition number offset of ROOT from BOOT (1).
    pub root_partition_offset: u32,
    /// Partition number offset of HASH from BOOT (2).
    pub hash_partition_offset: u32,
    /// dm-verity optional arguments.
    pub options: Vec<String>,
    /// The `dm-mod.create` value exactly as in grub.cfg.
    pub dm_mod_create: String,
    /// Root filesystem type.
    pub root_fs: FsKind,
    /// The OS.
    pub os: BootOs,
}

impl BootVerity {
    /// The parameters of a build.
    pub fn new(params: &VerityParams, root_fs: FsKind, id: &Identity) -> BootVerity {
        BootVerity {
            format: verity::FORMAT,
            hash_algorithm: verity::HASH_ALGORITHM.to_string(),
            data_block_size: params.data_block_size,
            hash_block_size: params.hash_block_size,
            data_blocks: params.data_blocks,
            hash_start_block: verity::HASH_START_BLOCK,
            root_hash: params.root_hash_hex(),
            salt: params.salt_hex(),
            uuid: params.uuid_string(),
            root_partition_offset: 1,
            hash_partition_offset: 2,
            options: VERITY_OPTIONS.iter().map(|s| s.to_string()).collect(),
            dm_mod_create: dm_mod_create(params),
            root_fs,
            os: BootOs {
                name: id.name.to_string(),
                variant: id.variant.to_string(),
                arch: id.arch.to_string(),
                version: id.version.to_string(),
                build_id: id.build_id.to_string(),
            },
        }
    }

    /// Back to [`VerityParams`]; fails on values we cannot use.
    pub fn params(&self, origin: &Path) -> Result<VerityParams> {
        let bad = |field: &'static str| error::BootParamsInvalidSnafu {
            path: origin,
            field,
        };
        snafu::ensure!(
            self.format == verity::FORMAT
                && self.hash_algorithm == verity::HASH_ALGORITHM
                && self.hash_start_block == 1,
            bad("format")
        );
        let root_hash: [u8; 32] = hex::decode(&self.root_hash)
            .ok()
            .and_then(|v| v.try_into().ok())
            .context(bad("root_hash"))?;
        let salt = if self.salt == "-" {
            Vec::new()
        } else {
            hex::decode(&self.salt).ok().context(bad("salt"))?
        };
        let uuid: [u8; 16] = hex::decode(self.uuid.replace('-', ""))
            .ok()
            .and_then(|v| v.try_into().ok())
            .context(bad("uuid"))?;
        Ok(VerityParams {
            root_hash,
            salt,
            data_blocks: self.data_blocks,
            data_block_size: self.data_block_size,
            hash_block_size: self.hash_block_size,
            uuid,
        })
    }
}

/// The `dm-mod.create` value (§4.2 step 8): `root,,,ro,0 <sectors> verity 1 <root> <hash> 4096
/// 4096 <blocks> 1 sha256 <root hash> <salt> 2 restart_on_corruption ignore_zero_blocks`.
pub fn dm_mod_create(params: &VerityParams) -> String {
    format!(
        "root,,,ro,{}",
        params.dm_target(ROOT_DEVICE, HASH_DEVICE, &VERITY_OPTIONS)
    )
}

/// grub.cfg for this set (Bottlerocket's template, §4.2 step 8).
pub fn grub_cfg(params: &VerityParams, id: &Identity, options: &BootOptions) -> String {
    let fields = rootfs::os_release_fields(id);
    let pretty = &fields
        .iter()
        .find(|(k, _)| *k == "PRETTY_NAME")
        .expect("PRETTY_NAME")
        .1;
    let mut kernel: Vec<String> = options.kernel_parameters.clone();
    kernel.extend(DEFAULT_KERNEL_PARAMETERS.iter().map(|s| s.to_string()));
    kernel.push("dm-mod.create=\"$dm_verity_root\"".to_string());
    let init: Vec<String> = match &options.init_parameters {
        Some(v) => v.clone(),
        None => DEFAULT_INIT_PARAMETERS
            .iter()
            .map(|s| s.to_string())
            .collect(),
    };
    let mut linux = format!("   linux ($root)/{KERNEL_PATH}");
    for p in &kernel {
        linux.push_str(" \\\n       ");
        linux.push_str(p);
    }
    if !init.is_empty() {
        linux.push_str(" \\\n       --");
        for p in &init {
            linux.push_str(" \\\n       ");
            linux.push_str(p);
        }
    }
    if options.initrd.is_some() {
        linux.push_str(&format!("\n   initrd ($root)/{INITRD_PATH}"));
    }
    format!(
        "set default=\"0\"\nset timeout=\"0\"\nset dm_verity_root=\"{table}\"\n\n\
         menuentry \"{pretty} {version}\" --unrestricted {{\n{linux}\n   boot\n}}\n",
        table = dm_mod_create(params),
        version = id.version,
    )
}

/// The `dm_verity_root` value from a grub.cfg.
pub fn dm_table_from_grub_cfg(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("set dm_verity_root=\"")
            .and_then(|r| r.strip_suffix('"'))
            .map(str::to_string)
    })
}

/// `verity.env`: the parameters as shell variables (for a busybox boot stage).
pub fn verity_env(v: &BootVerity) -> String {
    let lines = [
        ("VERITY_FORMAT", v.format.to_string()),
        ("VERITY_HASH_ALGORITHM", v.hash_algorithm.clone()),
        ("VERITY_DATA_BLOCK_SIZE", v.data_block_size.to_string()),
        ("VERITY_HASH_BLOCK_SIZE", v.hash_block_size.to_string()),
        ("VERITY_DATA_BLOCKS", v.data_blocks.to_string()),
        (
            "VERITY_DATA_SECTORS",
            (v.data_blocks * u64::from(v.data_block_size) / 512).to_string(),
        ),
        ("VERITY_HASH_START_BLOCK", v.hash_start_block.to_string()),
        ("VERITY_ROOT_HASH", v.root_hash.clone()),
        ("VERITY_SALT", v.salt.clone()),
        ("VERITY_OPTIONS", v.options.join(" ")),
        (
            "VERITY_ROOT_PARTITION_OFFSET",
            v.root_partition_offset.to_string(),
        ),
        (
            "VERITY_HASH_PARTITION_OFFSET",
            v.hash_partition_offset.to_string(),
        ),
        ("ROOT_FS", v.root_fs.to_string()),
        ("OS_VERSION_ID", v.os.version.clone()),
        ("OS_VARIANT_ID", v.os.variant.clone()),
        ("OS_BUILD_ID", v.os.build_id.clone()),
    ];
    lines
        .iter()
        .map(|(k, val)| format!("{k}='{val}'\n"))
        .collect()
}

/// Writes the boot tree at `dest` (must not exist).
pub fn stage(dest: &Path, verity: &BootVerity, grub: &str, options: &BootOptions) -> Result<()> {
    std::fs::create_dir_all(dest.join("grub")).context(error::CreateDirSnafu { path: dest })?;
    let write = |rel: &str, bytes: &[u8]| -> Result<()> {
        let path = dest.join(rel);
        std::fs::write(&path, bytes).context(error::WriteFileSnafu { path: &path })?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
            .context(error::WriteFileSnafu { path: &path })
    };
    if let Some(kernel) = &options.kernel {
        let bytes = std::fs::read(kernel).context(error::ReadFileSnafu { path: kernel })?;
        write(KERNEL_PATH, &bytes)?;
    }
    if let Some(initrd) = &options.initrd {
        let bytes = std::fs::read(initrd).context(error::ReadFileSnafu { path: initrd })?;
        write(INITRD_PATH, &bytes)?;
    }
    write(GRUB_CFG_PATH, grub.as_bytes())?;
    let mut json = serde_json::to_vec_pretty(verity).expect("serializable");
    json.push(b'\n');
    write(VERITY_JSON_PATH, &json)?;
    write(VERITY_ENV_PATH, verity_env(verity).as_bytes())?;
    // Bottlerocket: chmod -R go-rwx on the boot filesystem.
    for dir in [dest.join("grub"), dest.to_path_buf()] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .context(error::WriteFileSnafu { path: &dir })?;
    }
    Ok(())
}

/// Packs the boot tree as ext4 (no journal, shrunk). Returns the image size.
pub fn make_boot_image(
    tree: &Path,
    image: &Path,
    max_bytes: u64,
    uuid: &str,
    epoch: i64,
) -> Result<u64> {
    rootfs::make_ext4(
        tree,
        image,
        max_bytes,
        uuid,
        epoch,
        rootfs::Ext4Purpose {
            what: "boot filesystem",
            stripe: false,
        },
    )
}

#[cfg(test)]
mod test {
    use super::*;
    use crate::identity::ImageName;

    fn params() -> VerityParams {
        VerityParams {
            root_hash: [0x11; 32],
            salt: vec![0x22; 32],
            data_blocks: 1000,
            data_block_size: 4096,
            hash_block_size: 4096,
            uuid: [0x33; 16],
        }
    }

    fn identity() -> Identity {
        Identity {
            name: ImageName::default(),
            variant: "aws-dev".parse().unwrap(),
            arch: "x86_64".parse().unwrap(),
            version: "1.2.3".parse().unwrap(),
            build_id: "abc123".parse().unwrap(),
        }
    }

    #[test]
    fn dm_mod_create_is_bottlerocket_table() {
        assert_eq!(
            dm_mod_create(&params()),
            format!(
                "root,,,ro,0 8000 verity 1 PARTUUID=$boot_uuid/PARTNROFF=1 PARTUUID=$boot_uuid/PARTNROFF=2 \
                 4096 4096 1000 1 sha256 {} {} 2 restart_on_corruption ignore_zero_blocks",
                "11".repeat(32),
                "22".repeat(32)
            )
        );
    }

    #[test]
    fn grub_cfg_carries_the_table_and_command_line() {
        let cfg = grub_cfg(&params(), &identity(), &BootOptions::default());
        assert_eq!(
            dm_table_from_grub_cfg(&cfg).unwrap(),
            dm_mod_create(&params())
        );
        assert!(cfg.starts_with("set default=\"0\"\nset timeout=\"0\"\n"));
        assert!(
            cfg.contains("menuentry \"Bottlerocket OS 1.2.3 (aws-dev) 1.2.3\" --unrestricted {")
        );
        assert!(cfg.contains("linux ($root)/vmlinuz"));
        let flat = cfg.replace(" \\\n       ", " ");
        assert!(flat.contains(
            "root=/dev/dm-0 rootwait ro raid=noautodetect random.trust_cpu=on selinux=1 enforcing=1 \
             dm-mod.create=\"$dm_verity_root\" -- systemd.log_target=journal-or-kmsg"
        ), "{flat}");
        let custom = BootOptions {
            kernel: None,
            kernel_parameters: vec!["console=ttyS0".into()],
            init_parameters: Some(vec![]),
            ..BootOptions::default()
        };
        let flat = grub_cfg(&params(), &identity(), &custom).replace(" \\\n       ", " ");
        assert!(flat.contains("linux ($root)/vmlinuz console=ttyS0 root=/dev/dm-0"));
        assert!(!flat.contains(" -- "));
    }

    #[test]
    fn verity_json_round_trips_to_params() {
        let v = BootVerity::new(&params(), FsKind::Ext4, &identity());
        let text = serde_json::to_string(&v).unwrap();
        let back: BootVerity = serde_json::from_str(&text).unwrap();
        assert_eq!(back.params(Path::new("x")).unwrap(), params());
        let env = verity_env(&v);
        assert!(env.contains("VERITY_DATA_SECTORS='8000'\n"));
        assert!(env.contains(&format!("VERITY_ROOT_HASH='{}'\n", "11".repeat(32))));
        let mut broken = back.clone();
        broken.root_hash = "zz".into();
        assert!(matches!(
            broken.params(Path::new("x")).unwrap_err(),
            crate::Error::BootParamsInvalid {
                field: "root_hash",
                ..
            }
        ));
    }
}
