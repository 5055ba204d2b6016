//! `os-image`: see `os-image --help`.

use clap::Parser;
use os_image::cli::Cli;
use os_image::commands::run;
use os_image::output::{StepPrinter, write_error, write_outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.global.verbose {
        0 => cli.global.log_level,
        1 => tracing::Level::INFO.max(cli.global.log_level),
        2 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .init();
    tracing::debug!(command = ?cli.command, "os-image starting");
    let reporter = StepPrinter::new(std::io::stderr(), cli.global.json);
    let result = run(&cli, jiff::Timestamp::now(), &reporter);
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match result {
        Ok(outcome) => {
            match write_outcome(&mut out, &outcome, cli.global.json)
                .and_then(|()| std::io::Write::flush(&mut out))
            {
                Ok(()) => ExitCode::from(os_image::ExitStatus::Success.code()),
                // The reader went away (`os-image verify … | head -1`): not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                    ExitCode::from(os_image::ExitStatus::Success.code())
                }
                Err(_) => ExitCode::from(os_image::ExitStatus::Failed.code()),
            }
        }
        Err(e) => {
            let _ = write_error(&mut err, &e);
            ExitCode::from(e.exit_code().code())
        }
    }
}
