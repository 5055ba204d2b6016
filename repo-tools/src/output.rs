//! Rendering: results on stdout (text or JSON), logs and progress on stderr, errors as
//! `error:` / `Caused by:` / `hint:`, exit codes from the library's `ExitStatus`.

use abos_shell::error::Report;
use abos_shell::printer::{Mode, Printer};
use repo_tools::cli::GlobalArgs;
use repo_tools::mirror::TargetAction;
use repo_tools::reporter::{Event, Reporter};
use repo_tools::{Error, ExitStatus, Outcome};
use std::process::ExitCode;

/// The printer for these options, with logging set up through it.
pub fn init(args: &GlobalArgs) -> Printer {
    let printer = Printer::new(Mode::from_flags(args.json, false, args.verbose));
    abos_shell::log::init(
        args.log_level.raised(args.verbose),
        abos_shell::log::Scope::All,
        Some("REPO_TOOLS_LOG"),
        &printer,
    );
    printer
}

/// Progress: JSON lines on stderr with --json; otherwise, on a terminal and when not verbose, a
/// byte progress bar for mirror runs; nothing when stderr is not a terminal.
pub struct Progress {
    printer: Printer,
    plan: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress {
    pub fn new(printer: &Printer) -> Self {
        Self {
            printer: printer.clone(),
            plan: std::sync::Mutex::new(None),
        }
    }

    fn with_bar(&self, f: impl FnOnce(&indicatif::ProgressBar)) {
        if let Ok(guard) = self.plan.lock()
            && let Some(bar) = guard.as_ref()
        {
            f(bar);
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.with_bar(indicatif::ProgressBar::finish_and_clear);
    }
}

impl Reporter for Progress {
    fn report(&self, event: &Event<'_>) {
        if self.printer.is_json() {
            // Best effort: a closed stderr must not stop a mirror.
            self.printer.json_line(event);
            return;
        }
        if !self.printer.draws_progress() {
            return;
        }
        match event {
            Event::TargetsPlanned { bytes, .. } => {
                let bar = self.printer.bar(
                    *bytes,
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
                );
                if let Ok(mut guard) = self.plan.lock() {
                    *guard = Some(bar);
                }
            }
            Event::TargetFetched { name, bytes } | Event::TargetReused { name, bytes } => {
                self.with_bar(|bar| {
                    bar.inc(*bytes);
                    bar.set_message(name.to_string());
                });
            }
            _ => {}
        }
    }
}

/// An error outside the library (the runtime could not start, JSON rendering).
pub fn fatal(printer: &Printer, e: &(dyn std::error::Error + 'static)) -> ExitCode {
    printer.error(&Report::with_status(e, ExitStatus::Io));
    ExitCode::from(ExitStatus::Io.code())
}

pub fn finish(printer: &Printer, result: Result<Outcome, Error>, json: bool) -> ExitCode {
    match result {
        Ok(outcome) => {
            let text = if json {
                match serde_json::to_string_pretty(&outcome) {
                    Ok(text) => format!("{text}\n"),
                    Err(e) => return fatal(printer, &e),
                }
            } else {
                text(&outcome)
            };
            printer.stdout(&text, outcome.exit_status().code(), ExitStatus::Io.code())
        }
        Err(e) => {
            let status = e.exit_status();
            printer.error(&Report::with_status(&e, status).hint(e.hint()));
            ExitCode::from(status.code())
        }
    }
}

fn text(outcome: &Outcome) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    match outcome {
        Outcome::RootEdited {
            path,
            action,
            version,
            key_ids,
            signatures_cleared,
        } => {
            let _ = writeln!(s, "{action}: {} (version {version})", path.display());
            for id in key_ids {
                let _ = writeln!(s, "  key {id}");
            }
            if *signatures_cleared > 0 {
                let _ = writeln!(
                    s,
                    "  {signatures_cleared} signature(s) cleared: the content changed; sign again"
                );
            }
        }
        Outcome::RootSigned { path, report } => {
            let _ = writeln!(
                s,
                "signed {} with {}",
                path.display(),
                report.signed_with.join(", ")
            );
            for st in std::iter::once(&report.this).chain(report.previous.as_ref()) {
                let _ = writeln!(
                    s,
                    "  root v{} keys: {}/{} signatures{}",
                    st.authority_version,
                    st.valid.len(),
                    st.threshold,
                    if st.met() {
                        ""
                    } else {
                        " (threshold NOT met yet)"
                    }
                );
            }
        }
        Outcome::RootMerged { path, report } => {
            let _ = writeln!(
                s,
                "merged {} copies into {} ({} signatures)",
                report.inputs,
                path.display(),
                report.signatures
            );
            for st in std::iter::once(&report.this).chain(report.previous.as_ref()) {
                let _ = writeln!(
                    s,
                    "  root v{} keys: {}/{} signatures{}",
                    st.authority_version,
                    st.valid.len(),
                    st.threshold,
                    if st.met() { "" } else { " (threshold NOT met)" }
                );
            }
        }
        Outcome::RootVerified { path, report } => {
            let _ = writeln!(
                s,
                "{}: version {}, expires {}",
                path.display(),
                report.version,
                report.expires
            );
            for role in &report.roles {
                let _ = writeln!(
                    s,
                    "  {:<9} threshold {} of {} key(s)",
                    role.role.as_str(),
                    role.threshold,
                    role.keys.len()
                );
            }
            let _ = writeln!(
                s,
                "  signatures: {}/{} by its own root keys",
                report.this.valid.len(),
                report.this.threshold
            );
            if let Some(p) = &report.previous {
                let _ = writeln!(
                    s,
                    "  signatures: {}/{} by root v{}'s root keys",
                    p.valid.len(),
                    p.threshold,
                    p.authority_version
                );
            }
            if report.ok() {
                let _ = writeln!(s, "OK");
            } else {
                for p in &report.problems {
                    let _ = writeln!(s, "  problem: {p}");
                }
                let _ = writeln!(s, "NOT VALID");
            }
        }
        Outcome::KeyGenerated {
            path,
            public_path,
            key_type,
            key_id,
            roles,
            root,
        } => {
            let _ = writeln!(s, "{key_id}");
            let _ = writeln!(
                s,
                "  {key_type:?} private key {}, public key {}",
                path.display(),
                public_path.display()
            );
            if let Some(root) = root {
                let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
                let _ = writeln!(s, "  added to {} for {}", root.display(), names.join(", "));
            }
        }
        Outcome::Mirrored(r) => {
            let _ = writeln!(
                s,
                "mirrored {} into {} (root v{}, timestamp v{}, snapshot v{}, targets v{})",
                r.metadata_url,
                r.metadata_dir.display(),
                r.root_version,
                r.timestamp_version,
                r.snapshot_version,
                r.targets_version
            );
            if let Some(f) = &r.filter {
                let _ = writeln!(s, "  filter {f}: versions {}", r.versions.join(", "));
            }
            let _ = writeln!(
                s,
                "  targets: {} fetched ({} bytes), {} reused ({} bytes)",
                r.fetched, r.bytes_fetched, r.reused, r.bytes_reused
            );
            let fetched = r
                .targets
                .iter()
                .filter(|t| t.action == TargetAction::Fetched)
                .count();
            debug_assert_eq!(fetched, r.fetched);
            for n in &r.notes {
                let _ = writeln!(s, "  note: {n}");
            }
        }
        Outcome::MirrorVerified(r) => {
            for repo in &r.repositories {
                let _ = writeln!(
                    s,
                    "metadata/{}: root v{}, {} of {} targets present, all verified",
                    repo.metadata_subdir,
                    repo.root_version,
                    repo.targets_present,
                    repo.targets_listed
                );
            }
            let _ = writeln!(
                s,
                "OK: {} target files, {} bytes",
                r.target_files, r.target_bytes
            );
        }
        Outcome::Downloaded(r) => {
            let _ = writeln!(
                s,
                "downloaded {} targets ({} bytes) from {} into {} (root v{}), each verified",
                r.targets.len(),
                r.bytes,
                r.metadata_url,
                r.out.display(),
                r.root_version
            );
            for t in &r.targets {
                let _ = writeln!(s, "  {:>12}  {}", t.length, t.name);
            }
        }
        Outcome::Exported(r) => {
            let _ = writeln!(
                s,
                "wrote {}: {} files, {} bytes",
                r.archive.display(),
                r.files,
                r.bytes
            );
        }
        Outcome::Imported(r) => {
            let _ = writeln!(
                s,
                "imported {} files ({} bytes) into {}{}; verified against the trusted root",
                r.files,
                r.bytes,
                r.out.display(),
                if r.replaced {
                    " (replaced the previous tree)"
                } else {
                    ""
                }
            );
        }
        Outcome::DocsWritten { files } => {
            for f in files {
                let _ = writeln!(s, "{}", f.display());
            }
        }
    }
    s
}
