//! The binary's progress display, drawn through abos-shell's printer: phases and a byte bar on a
//! terminal, JSON lines with `--json`, nothing otherwise.

use abos_shell::printer::{Mode, Printer};
use indicatif::ProgressBar;
use pubsys::{Phase, Reporter};
use std::sync::{Arc, Mutex};

/// Draws phases and a byte bar on stderr (log lines suspend it).
#[derive(Debug)]
struct BarReporter {
    printer: Printer,
    bar: Mutex<Option<ProgressBar>>,
}

impl Reporter for BarReporter {
    fn phase(&self, phase: Phase) {
        self.printer.note(&format!("pubsys: {phase}"));
    }
    fn start(&self, items: usize, total_bytes: u64) {
        let bar = self.printer.bar(
            total_bytes,
            "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} {msg}",
        );
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
#[derive(Debug)]
struct JsonLinesReporter {
    printer: Printer,
}

impl Reporter for JsonLinesReporter {
    fn phase(&self, phase: Phase) {
        self.printer
            .json_line(&serde_json::json!({"event": "phase", "phase": phase.to_string()}));
    }
    fn start(&self, items: usize, total_bytes: u64) {
        self.printer.json_line(
            &serde_json::json!({"event": "start", "items": items, "total_bytes": total_bytes}),
        );
    }
    fn item_done(&self, name: &str, ok: bool) {
        self.printer
            .json_line(&serde_json::json!({"event": "item", "name": name, "ok": ok}));
    }
}

/// The reporter for this run.
pub fn reporter(printer: &Printer) -> Arc<dyn Reporter> {
    match printer.mode() {
        Mode::Json => Arc::new(JsonLinesReporter {
            printer: printer.clone(),
        }),
        _ if printer.draws_progress() => Arc::new(BarReporter {
            printer: printer.clone(),
            bar: Mutex::new(None),
        }),
        _ => Arc::new(pubsys::NoReporter),
    }
}
