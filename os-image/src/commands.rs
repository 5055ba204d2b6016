//! The subcommands of the `os-image` binary, as library functions returning an [`Outcome`].

use crate::bootfs::BootOptions;
use crate::build::{BuildSpec, Populate, Reporter, build};
use crate::cli::{BuildArgs, Cli, Cmd};
use crate::error::{self, Result};
use crate::identity::Identity;
use crate::layout::LayoutSize;
use crate::rootfs::{Extras, RootfsSource};
use crate::{BootedSystem, DiskReport};
use serde::Serialize;
use snafu::{OptionExt, ResultExt};
use std::path::PathBuf;
use update_metadata::BuildDescription;

/// What a subcommand did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// `build`.
    Built {
        /// Where the description was written.
        description_path: PathBuf,
        /// The description.
        description: Box<BuildDescription>,
    },
    /// `verify`.
    Verified {
        /// The report.
        report: DiskReport,
    },
    /// `boot-check`.
    Booted {
        /// What booted.
        system: Box<BootedSystem>,
    },
    /// `generate-docs`.
    Docs {
        /// Files written.
        files: Vec<PathBuf>,
    },
}

/// Runs the command line. `now` is the build time when no SOURCE_DATE_EPOCH is given.
pub fn run(cli: &Cli, now: jiff::Timestamp, reporter: &dyn Reporter) -> Result<Outcome> {
    match &cli.command {
        Cmd::Build(args) => {
            let spec = build_spec(args, now)?;
            let description = build(&spec, reporter)?;
            Ok(Outcome::Built {
                description_path: spec.description_path(),
                description: Box::new(description),
            })
        }
        Cmd::Verify { disk } => Ok(Outcome::Verified {
            report: crate::verify_disk(disk)?,
        }),
        Cmd::BootCheck { disk, set } => {
            let d = signpost::Disk::open_read_only(disk)
                .context(error::OpenDiskSnafu { path: disk })?;
            let partitions = d.set(*set).context(error::OpenDiskSnafu { path: disk })?;
            Ok(Outcome::Booted {
                system: Box::new(crate::emulated_boot(disk, &partitions)?),
            })
        }
        // The binary answers generate-docs with abos-shell's docs generator before `run`.
        Cmd::GenerateDocs { .. } => Ok(Outcome::Docs { files: Vec::new() }),
    }
}

/// Turns `build` arguments into a [`BuildSpec`].
pub fn build_spec(args: &BuildArgs, now: jiff::Timestamp) -> Result<BuildSpec> {
    let epoch = match args.source_date_epoch {
        Some(s) => jiff::Timestamp::from_second(s)
            .ok()
            .context(error::InvalidEpochSnafu { value: s })?,
        None => {
            jiff::Timestamp::from_second(now.as_second()).expect("whole seconds of a valid time")
        }
    };
    Ok(BuildSpec {
        rootfs: RootfsSource::from_path(&args.rootfs)?,
        identity: Identity {
            name: args.name.clone(),
            variant: args.variant.clone(),
            arch: args.arch,
            version: args.version.clone(),
            build_id: args.build_id.clone(),
        },
        extras: Extras {
            root_json: args.root_json.clone(),
            updog_toml: args.updog_toml.clone(),
        },
        boot: BootOptions {
            kernel: args.kernel.clone(),
            kernel_parameters: args.kernel_params.clone(),
            init_parameters: (!args.init_params.is_empty()).then(|| args.init_params.clone()),
            initrd: args.initrd.clone(),
            bootloader: args.bootloader.clone(),
        },
        layout: if args.small_layout {
            LayoutSize::SmallTest
        } else {
            LayoutSize::Gib(args.os_size_gib)
        },
        fs: args.fs,
        populate: if args.both_sets {
            Populate::BothSets
        } else {
            Populate::SetA
        },
        out_dir: args.out.clone(),
        epoch,
    })
}
