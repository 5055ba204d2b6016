//! `os-image`: see `os-image --help`.

use abos_shell::error::Report;
use abos_shell::log::{self, Scope};
use abos_shell::printer::{Mode, Printer};
use clap::CommandFactory as _;
use os_image::ExitStatus;
use os_image::cli::{Cli, Cmd};
use os_image::commands::{Outcome, run};
use os_image::output::{StepPrinter, write_outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = abos_shell::printer::parse::<Cli, ExitStatus>();
    let g = &cli.global;
    let printer = Printer::new(Mode::from_flags(g.json, false, g.verbose));
    log::init(g.log_level.raised(g.verbose), Scope::All, None, &printer);
    tracing::debug!(command = ?cli.command, "os-image starting");
    let result = match &cli.command {
        Cmd::GenerateDocs { out } => {
            let rows = abos_shell::exit::rows::<ExitStatus>();
            match abos_shell::docs::generate(Cli::command(), &rows, out) {
                Ok(files) => Ok(Outcome::Docs { files }),
                Err(e) => {
                    printer.error(&Report::with_status(&e, ExitStatus::Environment));
                    return ExitCode::from(ExitStatus::Environment.code());
                }
            }
        }
        _ => run(
            &cli,
            jiff::Timestamp::now(),
            &StepPrinter::new(std::io::stderr(), g.json),
        ),
    };
    match result {
        Ok(outcome) => {
            let mut out = Vec::new();
            if let Err(e) = write_outcome(&mut out, &outcome, g.json) {
                printer.error(&Report::with_status(&e, ExitStatus::Failed));
                return ExitCode::from(ExitStatus::Failed.code());
            }
            printer.stdout(
                &String::from_utf8_lossy(&out),
                ExitStatus::Success.code(),
                ExitStatus::Failed.code(),
            )
        }
        Err(e) => {
            printer.error(&Report::with_status(&e, e.exit_code()).hint(e.hint()));
            ExitCode::from(e.exit_code().code())
        }
    }
}
