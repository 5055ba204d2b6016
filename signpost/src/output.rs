//! Rendering outcomes and errors for the `signpost` binary (text or JSON), into any writer.

use crate::commands::Outcome;
use signpost::{PartitionStatus, Status};
use std::io::{self, Write};

fn part(p: &PartitionStatus, disk: &std::path::Path) -> String {
    match &p.path {
        Some(path) => path.display().to_string(),
        None => format!("{}#{}", disk.display(), p.partition.number),
    }
}

/// Renders `status` text (Bottlerocket's layout, with each set's own partitions and flags).
pub fn write_status(out: &mut dyn Write, s: &Status) -> io::Result<()> {
    writeln!(out, "OS disk: {}", s.disk.display())?;
    for set in &s.sets {
        writeln!(
            out,
            "Set {}:   boot={} root={} hash={} {} bootable={}",
            set.name,
            part(&set.boot, &s.disk),
            part(&set.root, &s.disk),
            part(&set.hash, &s.disk),
            set.flags,
            set.bootable
        )?;
    }
    writeln!(out, "Active:  Set {}", s.active)?;
    match s.next_boot {
        Some(n) => writeln!(out, "Next:    Set {n}")?,
        None => writeln!(out, "Next:    None")?,
    }
    for w in &s.warnings {
        writeln!(out, "Warning: {w}")?;
    }
    Ok(())
}

/// Renders an outcome on stdout-like `out`; warnings about the table go to `err`.
pub fn write_outcome(
    out: &mut dyn Write,
    err: &mut dyn Write,
    outcome: &Outcome,
    json: bool,
) -> io::Result<()> {
    if json {
        let value = match outcome {
            Outcome::Status(s) => serde_json::to_value(s),
            Outcome::EverBooted {
                has_boot_ever_succeeded,
            } => Ok(serde_json::json!({ "has_boot_ever_succeeded": has_boot_ever_succeeded })),
            Outcome::BootSelected { choice } => serde_json::to_value(choice),
            other => serde_json::to_value(other),
        }
        .map_err(io::Error::other)?;
        // Rendered first, then written: a write error keeps its kind (a closed pipe stays
        // BrokenPipe instead of becoming a serde error).
        let text = serde_json::to_string_pretty(&value).map_err(io::Error::other)?;
        return writeln!(out, "{text}");
    }
    match outcome {
        Outcome::Status(s) => write_status(out, s),
        Outcome::Changed {
            command,
            before,
            after,
            next_boot,
        } => {
            let next = next_boot.map_or("none".to_string(), |n| format!("set {n}"));
            let what = if before == after {
                "flags already as requested"
            } else {
                "done"
            };
            writeln!(err, "{command}: {what}; next boot: {next}")
        }
        Outcome::EverBooted {
            has_boot_ever_succeeded,
        } => {
            if *has_boot_ever_succeeded {
                writeln!(out, "true")?;
            }
            Ok(())
        }
        Outcome::BootSelected { choice: Some(c) } => {
            let p = &c.partitions;
            writeln!(
                out,
                "Set {}: boot=#{} root=#{} hash=#{} boot_uuid={} tries_left={}",
                c.set,
                p.boot.number,
                p.root.number,
                p.hash.number,
                p.boot.unique_guid,
                c.tries_left_after
            )
        }
        Outcome::BootSelected { choice: None } => writeln!(err, "no bootable partition set"),
        Outcome::Nothing => Ok(()),
    }
}
