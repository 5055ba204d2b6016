//! The binary's progress display: an indicatif bar on a tty, nothing otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pubsys::{Phase, Reporter};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

/// One progress line on stderr; a closed stderr must not stop a publish (best effort).
fn line(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// Draws phases and a byte bar on stderr.
#[derive(Debug, Default)]
struct BarReporter {
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter for BarReporter {
    fn phase(&self, phase: Phase) {
        line(&format!("pubsys: {phase}"));
    }
    fn start(&self, items: usize, total_bytes: u64) {
        let bar = ProgressBar::with_draw_target(Some(total_bytes), ProgressDrawTarget::stderr());
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}")
        {
            bar.set_style(style);
        }
        bar.set_message(format!("{items} files"));
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar);
    }
    fn advance(&self, bytes: u64) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.inc(bytes);
        }
    }
    fn item_done(&self, name: &str, ok: bool) {
        if !ok && let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            bar.println(format!("FAILED {name}"));
        }
    }
    fn finish(&self) {
        if let Some(bar) = self.bar.lock().unwrap_or_else(|e| e.into_inner()).take() {
            bar.finish_and_clear();
        }
    }
}

/// With `--json`: one JSON object per event on stderr (stdout holds only the outcome).
#[derive(Debug, Default)]
struct JsonLinesReporter;

impl Reporter for JsonLinesReporter {
    fn phase(&self, phase: Phase) {
        line(&serde_json::json!({"event": "phase", "phase": phase.to_string()}).to_string());
    }
    fn start(&self, items: usize, total_bytes: u64) {
        line(
            &serde_json::json!({"event": "start", "items": items, "total_bytes": total_bytes})
                .to_string(),
        );
    }
    fn item_done(&self, name: &str, ok: bool) {
        line(&serde_json::json!({"event": "item", "name": name, "ok": ok}).to_string());
    }
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Human output: a bar when stderr is a terminal.
    Human,
    /// `--json`: JSON lines on stderr.
    Json,
    /// Verbose logging: no bar (it would fight with the log lines).
    Quiet,
}

/// The reporter for this run.
pub fn reporter(mode: Mode) -> Arc<dyn Reporter> {
    match mode {
        Mode::Json => Arc::new(JsonLinesReporter),
        Mode::Human if std::io::stderr().is_terminal() => Arc::new(BarReporter::default()),
        _ => Arc::new(pubsys::NoReporter),
    }
}
