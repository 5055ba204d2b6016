//! `pubsys`: publish, validate, refresh and yank releases in TUF repositories.

mod progress;

use abos_shell::error::Report;
use abos_shell::log::{self, Scope};
use abos_shell::printer::{Mode, Printer};
use clap::CommandFactory as _;
use pubsys::ExitStatus;
use pubsys::cli::{Cli, Command};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = abos_shell::printer::parse::<Cli, ExitStatus>();
    let printer = Printer::new(Mode::from_flags(cli.json, false, cli.verbose));
    log::init(
        cli.log_level.raised(cli.verbose),
        Scope::All,
        None,
        &printer,
    );
    tracing::debug!(command = ?cli.command, "pubsys starting");
    let json = cli.json;
    if let Command::GenerateDocs { out } = &cli.command {
        let rows = abos_shell::exit::rows::<ExitStatus>();
        return match abos_shell::docs::generate(Cli::command(), &rows, out) {
            Ok(files) => {
                let outcome = pubsys::commands::Outcome::GenerateDocs { files };
                render(&printer, &outcome, json)
            }
            Err(e) => {
                printer.error(&Report::with_status(&e, ExitStatus::Write));
                ExitCode::from(ExitStatus::Write.code())
            }
        };
    }
    let env = pubsys::commands::Env {
        now: jiff::Timestamp::now(),
        reporter: progress::reporter(&printer),
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| pubsys::Error::Runtime { source })
        .and_then(|rt| rt.block_on(pubsys::commands::run(cli, &env)));
    printer.clear();
    match result {
        Ok(outcome) => render(&printer, &outcome, json),
        Err(err) => {
            let status = err.exit_status();
            let report = Report::with_status(&err, status).hint(err.hint());
            printer.error(&report);
            if json {
                // The error object on stdout too (scripts read one place); `chain` as before.
                let mut value = report.json();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert("chain".into(), pubsys::error::chain_string(&err).into());
                }
                return printer.stdout(
                    &format!("{value}\n"),
                    status.code(),
                    ExitStatus::Write.code(),
                );
            }
            ExitCode::from(status.code())
        }
    }
}

fn render(printer: &Printer, outcome: &pubsys::commands::Outcome, json: bool) -> ExitCode {
    let text = if json {
        format!("{}\n", outcome.to_json())
    } else {
        outcome.to_text()
    };
    printer.stdout(
        &text,
        outcome.exit_status().code(),
        ExitStatus::Usage.code(),
    )
}
