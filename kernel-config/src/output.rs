//! Rendering for the `kernel-config` binary, into writers the binary passes in.

use crate::check::{Problem, Verdict};
use crate::commands::Outcome;
use crate::fragment::Severity;
use crate::merge::ChangeKind;
use std::io::{self, Write};

/// Renders an outcome.
pub fn write_outcome(out: &mut dyn Write, outcome: &Outcome, json: bool) -> io::Result<()> {
    if json {
        // Rendered first, then written: a write error keeps its kind (a closed pipe stays
        // BrokenPipe instead of becoming a serde error).
        let text = serde_json::to_string_pretty(outcome).map_err(io::Error::other)?;
        return writeln!(out, "{text}");
    }
    match outcome {
        Outcome::Checked { config, report } => {
            let verdict = match report.verdict {
                Verdict::Bootable => "the image can boot with this kernel (no initramfs needed)",
                Verdict::NeedsInitramfs => {
                    "the image cannot boot as built: required options are modules (an initramfs would have to load them and set up dm-verity)"
                }
                Verdict::CannotBoot => {
                    "the image cannot boot with this kernel: required options are missing or wrong"
                }
            };
            writeln!(
                out,
                "{}: {} options checked for a {} root",
                config.display(),
                report.checked,
                report.root_fs
            )?;
            for f in &report.findings {
                let level = match f.severity {
                    Severity::Required => "required",
                    Severity::Recommended => "recommended",
                };
                let found = f
                    .found
                    .as_ref()
                    .map_or("absent".to_string(), |v| v.to_string());
                let what = match f.problem {
                    Problem::Missing => "missing",
                    Problem::Wrong => "wrong",
                    Problem::ModuleOnly => "module only (needs an initramfs)",
                };
                writeln!(
                    out,
                    "  {level:<11} CONFIG_{}: {what}: want {}, found {found} ({})",
                    f.symbol, f.want, f.fragment
                )?;
            }
            writeln!(out, "verdict: {verdict}")
        }
        Outcome::Merged {
            out: path,
            changes,
            conflicts,
            written,
            ..
        } => {
            for c in changes {
                let prev = c
                    .previous
                    .as_ref()
                    .map_or("absent".to_string(), |v| v.to_string());
                let from = c.previous_source.as_deref().unwrap_or("-");
                let kind = match c.kind {
                    ChangeKind::Added => "added",
                    ChangeKind::OverridesBase => "overrides base",
                    ChangeKind::Conflict => "CONFLICT",
                };
                writeln!(
                    out,
                    "  {kind:<14} CONFIG_{}: {prev} ({from}) -> {} ({})",
                    c.symbol, c.value, c.source
                )?;
            }
            if *written {
                writeln!(
                    out,
                    "wrote {} ({} changes, {conflicts} conflicts between fragments)",
                    path.display(),
                    changes.len()
                )
            } else {
                writeln!(
                    out,
                    "did not write {}: {conflicts} conflicts between fragments (--fail-on-conflict)",
                    path.display()
                )
            }
        }
        Outcome::Wrote { files } => {
            for f in files {
                writeln!(out, "{}", f.display())?;
            }
            Ok(())
        }
    }
}
