//! A whole build: stage and pack the root filesystem, compute the hash tree, make the boot
//! filesystem, assemble the disk image, compress the update artifacts, describe them.
//!
//! Everything is made inside a hidden staging directory in the output directory; finished files
//! are renamed into place and the build description is written last, so a directory without a
//! description for this build never looks like a complete one. Every random-looking value (salt,
//! UUIDs, GUIDs) is derived from the build inputs and the epoch, so the same inputs and
//! `SOURCE_DATE_EPOCH` give byte-identical outputs.

use crate::artifacts;
use crate::bootfs::{self, BootOptions, BootVerity};
use crate::error::{self, Result};
use crate::identity::Identity;
use crate::image::{self, SetImages};
use crate::layout::{Layout, LayoutSize, Role, derived_uuid};
use crate::rootfs::{self, Extras, FsKind, RootfsSource};
use crate::tools;
use crate::verity::{self, format_uuid};
use signpost::SetName;
use snafu::{ResultExt, ensure};
use std::path::{Path, PathBuf};
use update_metadata::{Artifacts, BuildDescription, VerityInfo};

/// Which sets of the disk image get the OS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Populate {
    /// Set A only; set B stays empty (a fresh install).
    #[default]
    SetA,
    /// Both sets (B with flags 0/0/0, so A still boots).
    BothSets,
}

impl Populate {
    fn sets(self) -> &'static [SetName] {
        match self {
            Populate::SetA => &[SetName::A],
            Populate::BothSets => &[SetName::A, SetName::B],
        }
    }
}

/// Everything a build needs.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// The root filesystem tree.
    pub rootfs: RootfsSource,
    /// Name, variant, arch, version, build id.
    pub identity: Identity,
    /// root.json / updog.toml to install.
    pub extras: Extras,
    /// Kernel and command line.
    pub boot: BootOptions,
    /// Disk layout.
    pub layout: LayoutSize,
    /// Root filesystem type.
    pub fs: FsKind,
    /// Which sets to populate.
    pub populate: Populate,
    /// Output directory (created if missing).
    pub out_dir: PathBuf,
    /// Build time: every timestamp in the images, and an input to every derived value
    /// (`SOURCE_DATE_EPOCH`, or now).
    pub epoch: jiff::Timestamp,
}

impl BuildSpec {
    /// Where the build description will be.
    pub fn description_path(&self) -> PathBuf {
        self.out_dir.join(self.identity.description_name())
    }

    /// The seed every derived value comes from.
    fn seed(&self) -> Vec<u8> {
        let id = &self.identity;
        format!(
            "os-image v1\0{}\0{}\0{}\0{}\0{}\0{}\0{}\0{:?}",
            id.name,
            id.variant,
            id.arch,
            id.version,
            id.build_id,
            self.epoch.as_second(),
            self.fs,
            self.layout
        )
        .into_bytes()
    }
}

/// A step of a build, for progress reporting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Copying or extracting the input and installing os-release and extras.
    StageRoot,
    /// Packing the root filesystem.
    PackRoot {
        /// Filesystem type.
        fs: FsKind,
    },
    /// Computing the dm-verity hash tree.
    HashTree {
        /// Bytes of root filesystem.
        bytes: u64,
    },
    /// Making the boot filesystem.
    PackBoot,
    /// Writing the disk image.
    AssembleDisk {
        /// Disk size.
        bytes: u64,
    },
    /// Hashing the disk image (in the background, while the artifacts are compressed).
    HashDisk {
        /// Disk size.
        bytes: u64,
    },
    /// Compressing an artifact.
    Compress {
        /// Artifact file name.
        name: String,
    },
    /// Waiting for the disk image digest, writing the description, moving outputs into place.
    Describe,
}

/// Receives progress from a build (the binary draws it; libraries never print).
pub trait Reporter {
    /// A step starts.
    fn step(&self, step: &Step);
}

/// A reporter that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn step(&self, _step: &Step) {}
}

/// Builds the disk image, the update artifacts and the description; returns the description
/// (also written to [`BuildSpec::description_path`]).
pub fn build(spec: &BuildSpec, reporter: &dyn Reporter) -> Result<BuildDescription> {
    // Bad input first, before tools are looked for or anything is written.
    spec.extras.check()?;
    tools::check_installed(&tools::required_for_build(spec.fs == FsKind::Erofs))?;
    let layout = Layout::plan(spec.layout)?;
    let grub_build = match &spec.boot.bootloader {
        Some(dir) => {
            tools::check_installed(&tools::required_for_bootloader())?;
            Some(crate::bootloader::GrubBuild::open(dir)?)
        }
        None => None,
    };
    let out = &spec.out_dir;
    std::fs::create_dir_all(out).context(error::OutputDirSnafu { path: out })?;
    let staging = tempfile::Builder::new()
        .prefix(".os-image-partial-")
        .tempdir_in(out)
        .context(error::OutputDirSnafu { path: out })?;
    let stage_dir = staging.path();
    let work = stage_dir.join("work");
    std::fs::create_dir(&work).context(error::CreateDirSnafu { path: &work })?;
    let seed = spec.seed();
    let epoch = spec.epoch.as_second();
    let id = &spec.identity;

    reporter.step(&Step::StageRoot);
    let root_tree = work.join("root");
    rootfs::stage(&spec.rootfs, &root_tree, id, &spec.extras)?;

    reporter.step(&Step::PackRoot { fs: spec.fs });
    let root_img = work.join("root.img");
    let root_part = layout.get(Role::Root(SetName::A));
    let root_uuid = format_uuid(&derived_uuid(&seed, "root filesystem"));
    let root_bytes = rootfs::make_root_image(
        &root_tree,
        spec.fs,
        &root_img,
        root_part.len_bytes(),
        &root_uuid,
        epoch,
    )
    .map_err(|e| match e {
        crate::Error::ContentTooBig {
            what, max_bytes, ..
        } => crate::Error::ContentTooBig {
            what,
            source_dir: spec.rootfs.path().to_path_buf(),
            max_bytes,
        },
        other => other,
    })?;

    reporter.step(&Step::HashTree { bytes: root_bytes });
    let hash_img = work.join("hash.img");
    let salt = derived_uuid(&seed, "verity salt a")
        .into_iter()
        .chain(derived_uuid(&seed, "verity salt b"))
        .collect::<Vec<u8>>();
    let params = {
        let mut data =
            std::fs::File::open(&root_img).context(error::OpenFileSnafu { path: &root_img })?;
        let file =
            std::fs::File::create(&hash_img).context(error::CreateFileSnafu { path: &hash_img })?;
        let mut writer = std::io::BufWriter::with_capacity(1 << 20, file);
        verity::build_with_uuid(
            &mut data,
            root_bytes,
            &salt,
            derived_uuid(&seed, "verity superblock"),
            &mut writer,
        )
        .context(error::VeritySnafu {
            op: "hash tree build",
            path: &root_img,
        })?
    };
    let hash_part = layout.get(Role::Hash(SetName::A));
    ensure!(
        params.hash_device_bytes() <= hash_part.len_bytes(),
        error::ContentTooBigSnafu {
            what: "hash tree",
            source_dir: spec.rootfs.path(),
            max_bytes: hash_part.len_bytes()
        }
    );

    reporter.step(&Step::PackBoot);
    let boot_verity = BootVerity::new(&params, spec.fs, id);
    let grub = bootfs::grub_cfg(&params, id, &spec.boot);
    let boot_tree = work.join("boot");
    bootfs::stage(&boot_tree, &boot_verity, &grub, &spec.boot)?;
    let boot_img = work.join("boot.img");
    let boot_part = layout.get(Role::Boot(SetName::A));
    let boot_uuid = format_uuid(&derived_uuid(&seed, "boot filesystem"));
    bootfs::make_boot_image(
        &boot_tree,
        &boot_img,
        boot_part.len_bytes(),
        &boot_uuid,
        epoch,
    )
    .map_err(|e| match (e, &spec.boot.kernel) {
        (
            crate::Error::ContentTooBig {
                what, max_bytes, ..
            },
            Some(kernel),
        ) => crate::Error::ContentTooBig {
            what,
            source_dir: kernel.clone(),
            max_bytes,
        },
        (other, _) => other,
    })?;

    reporter.step(&Step::AssembleDisk {
        bytes: layout.disk_bytes(),
    });
    let disk_name = id.disk_image_name();
    let disk_path = stage_dir.join(&disk_name);
    image::assemble(
        &disk_path,
        &layout,
        &seed,
        spec.populate.sets(),
        SetImages {
            boot: &boot_img,
            root: &root_img,
            hash: &hash_img,
        },
    )?;

    if let Some(grub_build) = &grub_build {
        let id = derived_uuid(&seed, "efi system volume id");
        crate::bootloader::install(
            &disk_path,
            &layout,
            grub_build,
            u32::from_le_bytes([id[0], id[1], id[2], id[3]]),
            epoch,
            &work,
        )?;
    }

    // The disk image digest (a read of the whole sparse file) runs on its own thread while the
    // artifacts are compressed: on two cores the two overlap.
    reporter.step(&Step::HashDisk {
        bytes: layout.disk_bytes(),
    });
    let (disk_artifact, compressed) = std::thread::scope(|scope| {
        let digest = scope.spawn(|| artifacts::describe_plain(&disk_path, &disk_name));
        let compressed: Result<Vec<_>> = [
            (&boot_img, id.boot_artifact_name()),
            (&root_img, id.root_artifact_name()),
            (&hash_img, id.hash_artifact_name()),
        ]
        .into_iter()
        .map(|(input, name)| {
            reporter.step(&Step::Compress { name: name.clone() });
            artifacts::compress(input, stage_dir, &name)
        })
        .collect();
        let digest = digest.join().expect("disk digest thread panicked");
        (digest, compressed)
    });
    let [boot, root, hash]: [_; 3] = compressed?.try_into().expect("three artifacts");
    reporter.step(&Step::Describe);
    let disk_artifact = disk_artifact?;
    let description = BuildDescription {
        name: id.name.to_string(),
        variant: id.variant.clone(),
        arch: id.arch,
        version: id.version.clone(),
        build_id: id.build_id.to_string(),
        artifacts: Artifacts { boot, root, hash },
        verity: VerityInfo {
            root_hash: params.root_hash_hex(),
            salt: params.salt_hex(),
            data_blocks: params.data_blocks,
            data_block_size: params.data_block_size,
            hash_block_size: params.hash_block_size,
            hash_algorithm: verity::HASH_ALGORITHM.to_string(),
        },
        disk_image: Some(disk_artifact),
        root_fs: spec.fs.to_string(),
    };
    publish(stage_dir, out, &description, &spec.description_path())?;
    Ok(description)
}

/// Moves the finished files into `out`: the old description for this build goes first, then
/// every artifact, then the new description (atomically), then the directory is synced.
fn publish(
    stage_dir: &Path,
    out: &Path,
    d: &BuildDescription,
    description_path: &Path,
) -> Result<()> {
    abos_fsio::remove(description_path).context(error::PublishDurableSnafu {
        path: description_path,
    })?;
    let mut names = vec![
        &d.artifacts.boot.file_name,
        &d.artifacts.root.file_name,
        &d.artifacts.hash.file_name,
    ];
    if let Some(disk) = &d.disk_image {
        names.push(&disk.file_name);
    }
    for name in names {
        let to = out.join(name);
        let from = stage_dir.join(name);
        abos_fsio::sync_file(&from).context(error::PublishDurableSnafu { path: &to })?;
        std::fs::rename(&from, &to).context(error::PublishSnafu { path: &to })?;
    }
    d.write_atomic(description_path)
        .context(error::WriteDescriptionSnafu {
            path: description_path,
        })?;
    abos_fsio::sync_dir(out).context(error::PublishDurableSnafu { path: out })
}
