//! The quickstart: the whole story on an embedded default, told step by step.
//!
//! Usage: quickstart [DIR]   (default: ./out/quickstart; a directory of an earlier run is emptied
//! first; any other non-empty directory is refused)
#![allow(clippy::print_stdout, clippy::print_stderr)]

use integration::Bins;
use integration::story::{Narrator, World, whole_story};
use std::cell::RefCell;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: quickstart [DIR]

Tells abos' whole story end to end on an embedded default: builds OS 1.0.0, 1.1.0 and 1.2.0,
creates a root of trust, publishes with waves, serves the repository on 127.0.0.1, updates a
simulated host, boots it, shows an automatic rollback, pulls a release back and mirrors the
repository; then a fleet of 3 hosts coordinated through a one-member etcd on 127.0.0.1
(concurrency 1) halts a release whose health check fails and rolls out a fixed one after a
resume. Every step is checked.

DIR  where the run's files go (default: out/quickstart). It must be new, empty, or the directory
     of an earlier quickstart run (which is emptied first); anything else is refused.

Environment: QUICKSTART_QUIET=1 hides the command lines.";

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let dir = match (args.next(), args.next()) {
        (Some(a), _) if a == "-h" || a == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        (Some(a), _) if a.to_string_lossy().starts_with('-') => {
            eprintln!("error: unknown option {}\n\n{USAGE}", a.to_string_lossy());
            return ExitCode::from(2);
        }
        (Some(_), Some(extra)) => {
            eprintln!(
                "error: unexpected argument {}\n\n{USAGE}",
                extra.to_string_lossy()
            );
            return ExitCode::from(2);
        }
        (Some(a), None) => PathBuf::from(a),
        (None, _) => PathBuf::from("out/quickstart"),
    };
    let bins = match Bins::locate() {
        Ok(bins) => bins,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = integration::prepare_run_dir(&dir) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let dir = std::path::absolute(&dir).unwrap_or(dir);
    let narrator = PipeSafe::new(
        std::io::stdout(),
        std::env::var_os("QUICKSTART_QUIET").is_none(),
    );
    let world = World::new(&dir, bins, &narrator);
    let started = std::time::Instant::now();
    match whole_story(&world) {
        Ok(report) => {
            narrator.line(&format!(
                "\nAll {} checks held in {:.0?}. Everything is in {}",
                report.checks.len(),
                started.elapsed(),
                dir.display()
            ));
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "\nerror: {e}\nhint: the files of the run are in {}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}

/// Prints the narration to a writer (stdout). When the reader goes away (`quickstart | head`),
/// narration stops quietly and the story runs to its end: no panic, the story's own exit code.
struct PipeSafe<W: Write> {
    out: RefCell<Option<W>>,
    commands: bool,
}

impl<W: Write> PipeSafe<W> {
    fn new(out: W, commands: bool) -> Self {
        PipeSafe {
            out: RefCell::new(Some(out)),
            commands,
        }
    }

    /// Writes one line; after a failed write (a closed pipe) nothing more is written.
    fn line(&self, text: &str) {
        let mut out = self.out.borrow_mut();
        if let Some(w) = out.as_mut()
            && writeln!(w, "{text}").and_then(|()| w.flush()).is_err()
        {
            *out = None;
        }
    }
}

impl<W: Write> Narrator for PipeSafe<W> {
    fn chapter(&self, title: &str) {
        self.line(&format!("\n== {title}"));
    }
    fn say(&self, text: &str) {
        self.line(&format!("   {text}"));
    }
    fn command(&self, line: &str) {
        if self.commands {
            self.line(&format!("     $ {line}"));
        }
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn narration_into_a_closed_pipe_stops_quietly() {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let n = PipeSafe::new(writer, true);
        n.chapter("1. a chapter");
        assert!(
            n.out.borrow().is_none(),
            "the failed write must stop narration"
        );
        n.say("more");
        n.command("cmd");
        n.line("done");

        let (mut reader, writer) = std::io::pipe().unwrap();
        let n = PipeSafe::new(writer, false);
        n.chapter("2");
        n.command("hidden");
        n.say("shown");
        drop(n);
        let mut text = String::new();
        std::io::Read::read_to_string(&mut reader, &mut text).unwrap();
        assert_eq!(text, "\n== 2\n   shown\n");
    }
}
