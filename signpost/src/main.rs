//! `signpost`: see `signpost --help`.
// The library's Error carries paths and GPT context; it is returned once per run.
#![allow(clippy::result_large_err)]

mod cli;
mod commands;
mod output;

use abos_shell::error::Report;
use abos_shell::log::{self, Scope};
use abos_shell::printer::{Mode, Printer};
use clap::CommandFactory as _;
use cli::{Cli, Cmd};
use signpost::ExitStatus;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = abos_shell::printer::parse::<Cli, ExitStatus>();
    let printer = Printer::new(Mode::from_flags(cli.json(), false, cli.global.verbose));
    log::init(
        cli.global.log_level.raised(cli.global.verbose),
        Scope::All,
        None,
        &printer,
    );
    tracing::debug!(command = ?cli.command, "signpost starting");
    if let Cmd::GenerateDocs { out } = &cli.command {
        let rows = abos_shell::exit::rows::<ExitStatus>();
        return match abos_shell::docs::generate(Cli::command(), &rows, out) {
            Ok(files) => {
                let text: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
                printer.stdout(&text, 0, ExitStatus::Failure.code())
            }
            Err(e) => {
                printer.error(&Report::with_status(&e, ExitStatus::Failure));
                ExitCode::from(ExitStatus::Failure.code())
            }
        };
    }
    match commands::run(&cli) {
        Ok(outcome) => {
            let code = outcome.exit_status().code();
            let (mut out, mut err) = (Vec::new(), Vec::new());
            if let Err(e) = output::write_outcome(&mut out, &mut err, &outcome, cli.json()) {
                printer.error(&Report::with_status(&e, ExitStatus::Failure));
                return ExitCode::from(ExitStatus::Failure.code());
            }
            printer.suspend(|| {
                let _ = std::io::Write::write_all(&mut std::io::stderr().lock(), &err);
            });
            printer.stdout(
                &String::from_utf8_lossy(&out),
                code,
                ExitStatus::Failure.code(),
            )
        }
        Err(e) => {
            printer.error(&Report::with_status(&e, e.exit_code()).hint(e.hint()));
            ExitCode::from(e.exit_code().code())
        }
    }
}
