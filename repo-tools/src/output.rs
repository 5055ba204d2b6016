//! Rendering: results on stdout (text or JSON), logs and progress on stderr, errors as
//! `error:` / `Caused by:` / `hint:`, exit codes from the library's `ExitStatus`.

use repo_tools::cli::GlobalArgs;
use repo_tools::mirror::TargetAction;
use repo_tools::reporter::{Event, Reporter};
use repo_tools::{Error, ExitStatus, Outcome};
use std::io::Write as _;
use std::process::ExitCode;

pub fn init_logging(args: &GlobalArgs) {
    let level = args.log_level.clone().unwrap_or_else(|| {
        match args.verbose {
            0 => "warn",
            1 => "debug",
            _ => "trace",
        }
        .to_owned()
    });
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
}

/// Progress: JSON lines on stderr with --json; otherwise, on a terminal and when not verbose, a
/// byte progress bar for mirror runs; nothing when stderr is not a terminal.
pub struct Progress {
    json: bool,
    draw: bool,
    plan: std::sync::Mutex<Option<indicatif::ProgressBar>>,
}

impl Progress {
    pub fn new(args: &GlobalArgs) -> Self {
        use std::io::IsTerminal;
        let draw = !args.json && args.verbose == 0 && std::io::stderr().is_terminal();
        Self {
            json: args.json,
            draw,
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
        if self.json {
            if let Ok(line) = serde_json::to_string(event) {
                // Best effort: a closed stderr must not stop a mirror.
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
            return;
        }
        if !self.draw {
            return;
        }
        match event {
            Event::TargetsPlanned { bytes, .. } => {
                let bar = indicatif::ProgressBar::new(*bytes);
                if let Ok(style) = indicatif::ProgressStyle::with_template(
                    "{bar:30} {bytes}/{total_bytes} {bytes_per_sec} {wide_msg}",
                ) {
                    bar.set_style(style);
                }
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

pub fn fatal(e: &dyn std::error::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "error: {e}");
    ExitCode::from(ExitStatus::Io.code())
}

/// Writes the result to stdout. A reader that went away (`repo-tools root verify R | head -1`)
/// is not an error: the command's own exit code stands.
fn print_stdout(text: &str, status: ExitStatus) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(status.code()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(status.code()),
        Err(e) => fatal(&e),
    }
}

pub fn finish(result: Result<Outcome, Error>, json: bool) -> ExitCode {
    match result {
        Ok(outcome) => {
            let text = if json {
                match serde_json::to_string_pretty(&outcome) {
                    Ok(text) => format!("{text}\n"),
                    Err(e) => return fatal(&e),
                }
            } else {
                text(&outcome)
            };
            print_stdout(&text, outcome.exit_status())
        }
        Err(e) => {
            let mut text = format!("error: {e}\n");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(&format!("  Caused by: {s}\n"));
                source = s.source();
            }
            if let Some(hint) = e.hint() {
                text.push_str(&format!("hint: {hint}\n"));
            }
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
            ExitCode::from(e.exit_status().code())
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
