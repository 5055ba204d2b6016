//! The binary's output: results on stdout, progress (bar on a tty, JSON lines with --json) and
//! errors on stderr.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use updog::reporter::{ProgressEvent, Reporter};
use updog::{Error, Outcome, render};

/// Prints progress events as JSON lines on stderr (stdout carries only the result).
struct JsonReporter;

impl Reporter for JsonReporter {
    fn report(&self, event: ProgressEvent) {
        if let Ok(line) = serde_json::to_string(&event) {
            eprintln!("{line}");
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

/// Prints the outcome and returns its exit code.
pub fn outcome(outcome: &Outcome, json: bool) -> ExitCode {
    if json {
        println!("{}", render::outcome_json(outcome));
    } else {
        let text = render::outcome_text(outcome);
        if !text.is_empty() {
            println!("{text}");
        }
    }
    ExitCode::from(outcome.exit_status().code())
}

/// Prints an error and returns its exit code.
pub fn error(e: &Error, json: bool) -> ExitCode {
    if json {
        println!("{}", render::error_json(e));
    }
    eprintln!("{}", render::error_text(e));
    ExitCode::from(e.exit_code().code())
}

/// Lists generated files.
pub fn docs(files: &[std::path::PathBuf]) -> ExitCode {
    for f in files {
        println!("{}", f.display());
    }
    ExitCode::SUCCESS
}
