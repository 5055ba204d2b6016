//! `kernel-config`: see `kernel-config --help`.

use abos_shell::error::Report;
use abos_shell::log::{self, Scope};
use abos_shell::printer::{Mode, Printer};
use clap::CommandFactory as _;
use kernel_config::ExitStatus;
use kernel_config::cli::{Cli, Cmd};
use kernel_config::output::write_outcome;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = abos_shell::printer::parse::<Cli, ExitStatus>();
    let printer = Printer::new(Mode::from_flags(cli.json, false, 0));
    // KERNEL_CONFIG_LOG (an EnvFilter such as `debug`) overrides --log-level.
    log::init(
        cli.log_level,
        Scope::All,
        Some("KERNEL_CONFIG_LOG"),
        &printer,
    );
    tracing::debug!(command = ?cli.command, "kernel-config starting");
    if let Cmd::GenerateDocs { out } = &cli.command {
        let rows = abos_shell::exit::rows::<ExitStatus>();
        return match abos_shell::docs::generate(Cli::command(), &rows, out) {
            Ok(files) => {
                let text: String = files.iter().map(|f| format!("{}\n", f.display())).collect();
                printer.stdout(&text, 0, ExitStatus::Failed.code())
            }
            Err(e) => {
                printer.error(&Report::with_status(&e, ExitStatus::Failed));
                ExitCode::from(ExitStatus::Failed.code())
            }
        };
    }
    match kernel_config::commands::run(&cli) {
        Ok(outcome) => {
            let code = outcome.exit_status().code();
            let mut out = Vec::new();
            if let Err(e) = write_outcome(&mut out, &outcome, cli.json) {
                printer.error(&Report::with_status(&e, ExitStatus::Failed));
                return ExitCode::from(ExitStatus::Failed.code());
            }
            printer.stdout(
                &String::from_utf8_lossy(&out),
                code,
                ExitStatus::Failed.code(),
            )
        }
        Err(e) => {
            printer.error(&Report::with_status(&e, e.exit_code()).hint(e.hint()));
            ExitCode::from(e.exit_code().code())
        }
    }
}
