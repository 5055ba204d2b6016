//! The binary's progress display: an indicatif bar on a tty, nothing otherwise.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use pubsys::{Phase, Reporter};
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};

/// Draws phases and a byte bar on stderr.
#[derive(Debug, Default)]
struct BarReporter {
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter for BarReporter {
    fn phase(&self, phase: Phase) {
        eprintln!("pubsys: {phase}");
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

/// The reporter for this run: a bar on a tty unless quiet (JSON or verbose logging).
pub fn reporter(quiet: bool) -> Arc<dyn Reporter> {
    if quiet || !std::io::stderr().is_terminal() {
        Arc::new(pubsys::NoReporter)
    } else {
        Arc::new(BarReporter::default())
    }
}
