//! The subcommands as library functions returning an [`Outcome`].

use crate::check::{self, Report, Verdict};
use crate::cli::{Cli, Cmd, FragmentArgs};
use crate::config::Config;
use crate::error::{ExitStatus, Result, WriteFileSnafu, WriteOutputSnafu};
use crate::fragment::{self, Fragment};
use crate::merge::{self, Change};
use serde::Serialize;
use snafu::ResultExt;
use std::path::{Path, PathBuf};

/// What a subcommand did.
#[derive(Debug, Serialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// `check`.
    Checked {
        /// The config checked.
        config: PathBuf,
        /// The report.
        report: Report,
    },
    /// `merge`.
    Merged {
        /// Output file.
        out: PathBuf,
        /// Every change made.
        changes: Vec<Change>,
        /// Number of conflicts between fragments.
        conflicts: usize,
        /// Whether conflicts make this a failure.
        fail_on_conflict: bool,
        /// Whether `out` was written (not when `--fail-on-conflict` found conflicts: an existing
        /// file is left exactly as it was).
        written: bool,
    },
    /// `fragments` / `generate-docs`.
    Wrote {
        /// Files written.
        files: Vec<PathBuf>,
    },
}

impl Outcome {
    /// Exit status for this outcome.
    pub fn exit_status(&self) -> ExitStatus {
        match self {
            Outcome::Checked { report, .. } if report.verdict != Verdict::Bootable => {
                ExitStatus::Negative
            }
            Outcome::Merged {
                conflicts,
                fail_on_conflict: true,
                ..
            } if *conflicts > 0 => ExitStatus::Negative,
            _ => ExitStatus::Success,
        }
    }
}

fn load_fragments(args: &FragmentArgs) -> Result<Vec<Fragment>> {
    if args.fragments.is_empty() {
        return Ok(fragment::builtin());
    }
    args.fragments.iter().map(|p| Fragment::load(p)).collect()
}

/// Runs the command line.
pub fn run(cli: &Cli) -> Result<Outcome> {
    match &cli.command {
        Cmd::Check { config, fragments } => {
            let c = Config::load(config)?;
            let report = check::check(&c, &load_fragments(fragments)?, fragments.root_fs);
            Ok(Outcome::Checked {
                config: config.clone(),
                report,
            })
        }
        Cmd::Merge {
            base,
            fragments,
            out,
            fail_on_conflict,
        } => {
            let b = Config::load(base)?;
            let selected: Vec<Fragment> = load_fragments(fragments)?
                .into_iter()
                .filter(|f| f.applies(fragments.root_fs))
                .collect();
            let name = base.display().to_string();
            let merged = merge::merge(&b, &name, &selected);
            let conflicts = merged.conflicts().count();
            // A failed merge writes nothing: a build must not pick up a config it was told to
            // refuse.
            let written = !(*fail_on_conflict && conflicts > 0);
            if written {
                write_atomic(out, merged.config.render().as_bytes())?;
            }
            Ok(Outcome::Merged {
                out: out.clone(),
                changes: merged.changes,
                conflicts,
                fail_on_conflict: *fail_on_conflict,
                written,
            })
        }
        Cmd::Fragments { out } => {
            std::fs::create_dir_all(out).context(WriteOutputSnafu { path: out })?;
            let mut files = Vec::new();
            for (name, text) in fragment::BUILTIN {
                let path = out.join(name);
                write_atomic(&path, text.as_bytes())?;
                files.push(path);
            }
            Ok(Outcome::Wrote { files })
        }
        // The binary answers generate-docs with abos-shell's docs generator before `run`.
        Cmd::GenerateDocs { .. } => Ok(Outcome::Wrote { files: Vec::new() }),
    }
}

/// Atomic and durable, mode 0666 less the umask (see `abos-fsio`).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    abos_fsio::write_atomic(path, bytes, abos_fsio::PUBLIC).context(WriteFileSnafu { path })
}
