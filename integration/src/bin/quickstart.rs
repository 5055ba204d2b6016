//! The quickstart: the whole story on an embedded default, told step by step.
//!
//! Usage: quickstart [DIR]   (default: ./out/quickstart; emptied first)
#![allow(clippy::print_stdout, clippy::print_stderr)]

use integration::Bins;
use integration::story::{Print, World, whole_story};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("out/quickstart"));
    let bins = match Bins::locate() {
        Ok(bins) => bins,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if dir.exists()
        && let Err(e) = std::fs::remove_dir_all(&dir)
    {
        eprintln!("error: cannot empty {}: {e}", dir.display());
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
