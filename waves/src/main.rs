//! `waves`: show how a wave policy rolls a release out over the fleet.

mod cli;
mod commands;

use abos_shell::log::{self, Scope};
use abos_shell::printer::{Mode, Printer};
use abos_shell::{ExitCodes as _, error::Report};
use clap::CommandFactory as _;
use cli::{Args, Command};
use std::process::ExitCode;
use waves::ExitStatus;

fn main() -> ExitCode {
    let args = abos_shell::printer::parse::<Args, ExitStatus>();
    let printer = Printer::new(Mode::from_flags(args.json, false, args.verbose));
    log::init(
        args.log_level.raised(args.verbose),
        Scope::All,
        None,
        &printer,
    );
    tracing::debug!(command = ?args.command, "waves starting");
    if let Command::GenerateDocs { out } = &args.command {
        let rows = abos_shell::exit::rows::<ExitStatus>();
        return match abos_shell::docs::generate(Args::command(), &rows, out) {
            Ok(files) => {
                let text: String = files
                    .iter()
                    .map(|f| format!("wrote {}\n", f.display()))
                    .collect();
                printer.stdout(&text, 0, ExitStatus::Io.code())
            }
            Err(e) => {
                printer.error(&Report::with_status(&e, ExitStatus::Io));
                ExitCode::from(ExitStatus::Io.code())
            }
        };
    }
    match commands::run(&args.command) {
        Ok(outcome) => {
            let text = if args.json {
                match outcome.to_json() {
                    Ok(text) => text,
                    Err(e) => {
                        printer.error(&Report::with_status(&e, ExitStatus::Io));
                        return ExitCode::from(ExitStatus::Io.code());
                    }
                }
            } else {
                outcome.to_text()
            };
            let text = if text.ends_with('\n') {
                text
            } else {
                format!("{text}\n")
            };
            printer.stdout(&text, 0, ExitStatus::Io.code())
        }
        Err(e) => {
            printer.error(&Report::with_status(&e, e.exit_code()).hint(e.hint()));
            ExitCode::from(e.exit_code().code())
        }
    }
}
