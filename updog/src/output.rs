//! The binary's output: results on stdout, progress (bar on a tty, JSON lines with --json) and
//! errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use updog::reporter::{ProgressEvent, Reporter};
use updog::{Error, Outcome, render};

/// Prints progress events as JSON lines on stderr (stdout carries only the result).
struct JsonReporter;

impl Reporter for JsonReporter {
    fn report(&self, event: ProgressEvent) {
        if let Ok(line) = serde_json::to_string(&event) {
            // A closed stderr must not stop the update: progress is best effort.
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        }
    }
}

/// Draws a progress bar on stderr (only when stderr is a terminal).
struct BarReporter {
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
                let b = ProgressBar::new(total);
                b.set_style(
                    ProgressStyle::with_template(
                        "{msg:>5} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
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

/// The reporter for this run.
pub fn reporter(json: bool) -> Arc<dyn Reporter> {
    if json {
        Arc::new(JsonReporter)
    } else if std::io::stderr().is_terminal() {
        Arc::new(BarReporter {
            bar: Mutex::new(None),
        })
    } else {
        Arc::new(updog::NullReporter)
    }
}

/// Nothing to flush today; kept so main's shape does not change when it is needed.
pub fn finish(_reporter: &dyn Reporter) {}

/// ANSI colours in log lines: only when stderr is a terminal and `NO_COLOR` is unset.
pub fn ansi() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Writes `text` to stdout. A reader that went away (`updog … | head -1`, `| true`) is not
/// an error: the run's own exit code stands. Any other write failure is reported on stderr.
fn print_stdout(text: &str, code: u8) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
            if code == 0 {
                ExitCode::from(updog::ExitStatus::Failure.code())
            } else {
                ExitCode::from(code)
            }
        }
    }
}

fn print_stderr(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Prints the outcome and returns `code` (its exit code in the chosen style).
pub fn outcome(outcome: &Outcome, json: bool, code: u8) -> ExitCode {
    let text = if json {
        render::outcome_json(outcome)
    } else {
        render::outcome_text(outcome)
    };
    if text.is_empty() {
        return ExitCode::from(code);
    }
    print_stdout(&format!("{text}\n"), code)
}

/// Prints an error and returns `code` (its exit code in the chosen style).
pub fn error(e: &Error, json: bool, code: u8) -> ExitCode {
    print_stderr(&render::error_text(e));
    if json {
        return print_stdout(&format!("{}\n", render::error_json(e)), code);
    }
    ExitCode::from(code)
}

/// Lists generated files.
pub fn docs(files: &[std::path::PathBuf]) -> ExitCode {
    let text: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
    print_stdout(&text, 0)
}
