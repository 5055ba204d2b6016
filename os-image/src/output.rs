//! Rendering for the `os-image` binary: outcomes (text or JSON), errors with their causes and a
//! hint, and build progress. Everything goes to writers the binary passes in.

use crate::build::{Reporter, Step};
use crate::commands::Outcome;
use crate::verify_disk::SetContent;
use std::cell::RefCell;
use std::io::{self, Write};
use std::time::Instant;

/// Renders an outcome.
pub fn write_outcome(out: &mut dyn Write, outcome: &Outcome, json: bool) -> io::Result<()> {
    if json {
        // Rendered first, then written: a write error keeps its kind (a closed pipe stays
        // BrokenPipe instead of becoming a serde error).
        let text = serde_json::to_string_pretty(outcome).map_err(io::Error::other)?;
        return writeln!(out, "{text}");
    }
    match outcome {
        Outcome::Built {
            description_path,
            description: d,
        } => {
            writeln!(
                out,
                "Built {} {} {} ({})",
                d.name, d.variant, d.version, d.build_id
            )?;
            if let Some(disk) = &d.disk_image {
                writeln!(
                    out,
                    "  disk image:  {} ({} bytes)",
                    disk.file_name, disk.size
                )?;
            }
            for a in [&d.artifacts.boot, &d.artifacts.root, &d.artifacts.hash] {
                writeln!(
                    out,
                    "  artifact:    {} ({} bytes, {} uncompressed)",
                    a.file_name, a.size, a.uncompressed_size
                )?;
            }
            writeln!(out, "  root hash:   {}", d.verity.root_hash)?;
            writeln!(out, "  salt:        {}", d.verity.salt)?;
            writeln!(out, "  data blocks: {}", d.verity.data_blocks)?;
            writeln!(out, "  description: {}", description_path.display())
        }
        Outcome::Verified { report } => {
            writeln!(
                out,
                "{}: {} layout, {} partitions as planned",
                report.path.display(),
                report.layout,
                report.partitions
            )?;
            for s in &report.sets {
                match &s.content {
                    SetContent::Empty => writeln!(out, "  set {}: empty ({})", s.set, s.flags)?,
                    SetContent::Verified {
                        version,
                        variant,
                        build_id,
                        root_hash,
                        data_blocks,
                        root_fs,
                    } => writeln!(
                        out,
                        "  set {}: {variant} {version} ({build_id}), {root_fs} root, {data_blocks} blocks verified, \
                         root hash {root_hash} ({})",
                        s.set, s.flags
                    )?,
                }
            }
            Ok(())
        }
        Outcome::Booted { system } => {
            writeln!(
                out,
                "set {} booted: root verified against root hash {}",
                system.set, system.boot.verity.root_hash
            )?;
            for (k, v) in &system.os_release {
                writeln!(out, "  {k}={v}")?;
            }
            Ok(())
        }
        Outcome::Docs { files } => {
            for f in files {
                writeln!(out, "{}", f.display())?;
            }
            Ok(())
        }
    }
}

/// Prints each build step with the time since the start: text lines, or JSON lines.
#[derive(Debug)]
pub struct StepPrinter<W: Write> {
    out: RefCell<W>,
    start: Instant,
    json: bool,
}

impl<W: Write> StepPrinter<W> {
    /// A printer writing to `out`.
    pub fn new(out: W, json: bool) -> Self {
        StepPrinter {
            out: RefCell::new(out),
            start: Instant::now(),
            json,
        }
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::StageRoot => "staging the root filesystem tree".into(),
        Step::PackRoot { fs } => format!("packing the root filesystem ({fs})"),
        Step::HashTree { bytes } => format!("computing the dm-verity hash tree over {bytes} bytes"),
        Step::PackBoot => "making the boot filesystem".into(),
        Step::AssembleDisk { bytes } => format!("writing the disk image ({} MiB)", bytes >> 20),
        Step::HashDisk { bytes } => format!(
            "hashing the disk image ({} MiB) in the background",
            bytes >> 20
        ),
        Step::Compress { name } => format!("compressing {name}"),
        Step::Describe => "writing the description and moving the outputs into place".into(),
    }
}

impl<W: Write> Reporter for StepPrinter<W> {
    fn step(&self, step: &Step) {
        let elapsed = self.start.elapsed().as_secs_f64();
        let mut out = self.out.borrow_mut();
        let _ = if self.json {
            writeln!(
                out,
                "{}",
                serde_json::json!({ "step": describe(step), "elapsed_s": elapsed })
            )
        } else {
            writeln!(out, "[{elapsed:6.2}s] {}", describe(step))
        };
    }
}
