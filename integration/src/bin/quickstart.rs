//! The quickstart: the whole story on an embedded default, told step by step.
//!
//! Usage: quickstart [DIR]   (default: ./out/quickstart; a directory of an earlier run is emptied
//! first; any other non-empty directory is refused)
#![allow(clippy::print_stdout, clippy::print_stderr)]

use integration::Bins;
use integration::story::{Print, World, whole_story};
use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "usage: quickstart [DIR]

Tells abos' whole story end to end on an embedded default: builds OS 1.0.0, 1.1.0 and 1.2.0,
creates a root of trust, publishes with waves, serves the repository on 127.0.0.1, updates a
simulated host, boots it, shows an automatic rollback, pulls a release back and mirrors the
repository. Every step is checked.

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
    let narrator = Print {
        commands: std::env::var_os("QUICKSTART_QUIET").is_none(),
    };
    let world = World::new(&dir, bins, &narrator);
    let started = std::time::Instant::now();
    match whole_story(&world) {
        Ok(report) => {
            println!(
                "\nAll {} checks held in {:.0?}. Everything is in {}",
                report.checks.len(),
                started.elapsed(),
                dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!(
                "\nerror: {e}\nhint: the files of the run are in {}",
                dir.display()
            );
            ExitCode::FAILURE
        }
    }
}
