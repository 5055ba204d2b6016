//! The binary's output through abos-shell's printer: results on stdout, progress (bar on a
//! tty, JSON lines with --json) and errors on stderr.

use abos_shell::error::Report;
use abos_shell::printer::{Mode, Printer};
use indicatif::ProgressBar;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use updog::reporter::{ProgressEvent, Reporter};
use updog::{Error, Outcome, render};

/// Prints progress events as JSON lines on stderr (stdout carries only the result).
struct JsonReporter {
    printer: Printer,
}

impl Reporter for JsonReporter {
    fn report(&self, event: ProgressEvent) {
        // A closed stderr must not stop the update: progress is best effort.
        self.printer.json_line(&event);
    }
}

/// Draws a progress bar on stderr (only when stderr is a terminal); log lines suspend it.
struct BarReporter {
    printer: Printer,
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter for BarReporter {
    fn report(&self, event: ProgressEvent) {
        let Ok(mut bar) = self.bar.lock() else { return };
        match event {
            ProgressEvent::ImageStart {
                image,
                total,
                resumed_at,
                ..
            } => {
                let b = self.printer.bar(
                    total,
                    "{msg:>5} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                );
                b.set_message(image.to_string());
                b.set_position(resumed_at);
                *bar = Some(b);
            }
            ProgressEvent::ImageProgress { received, .. } => {
                if let Some(b) = bar.as_ref() {
                    b.set_position(received);
                }
            }
            ProgressEvent::ImageDone { .. } => {
                if let Some(b) = bar.take() {
                    b.finish();
                }
            }
            _ => {}
        }
    }
}

/// The printer for this run (JSON, or normal: bars on a terminal).
pub fn printer(json: bool) -> Printer {
    Printer::new(Mode::from_flags(json, false, 0))
}

/// The reporter for this run.
pub fn reporter(printer: &Printer) -> Arc<dyn Reporter> {
    if printer.is_json() {
        Arc::new(JsonReporter {
            printer: printer.clone(),
        })
    } else if printer.draws_progress() {
        Arc::new(BarReporter {
            printer: printer.clone(),
            bar: Mutex::new(None),
        })
    } else {
        Arc::new(updog::NullReporter)
    }
}

/// Prints the outcome and returns `code` (its exit code in the chosen style).
pub fn outcome(printer: &Printer, outcome: &Outcome, code: u8) -> ExitCode {
    let text = if printer.is_json() {
        render::outcome_json(outcome)
    } else {
        render::outcome_text(outcome)
    };
    if text.is_empty() {
        return ExitCode::from(code);
    }
    printer.stdout(
        &format!("{text}\n"),
        code,
        updog::ExitStatus::Failure.code(),
    )
}

/// Prints an error and returns `code` (its exit code in the chosen style): `error:` /
/// `Caused by:` / `hint:` on stderr, or with --json a JSON line on stderr and the same object
/// on stdout.
pub fn error(printer: &Printer, e: &Error, code: u8) -> ExitCode {
    let report = Report::with_status(e, e.exit_code()).hint(e.hint());
    printer.error(&report);
    if printer.is_json() {
        return printer.stdout(
            &format!("{}\n", report.json()),
            code,
            updog::ExitStatus::Failure.code(),
        );
    }
    ExitCode::from(code)
}

/// Lists generated files.
pub fn docs(printer: &Printer, files: &[std::path::PathBuf]) -> ExitCode {
    let text: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    printer.stdout(&text, 0, updog::ExitStatus::Failure.code())
}
