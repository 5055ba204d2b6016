//! `signpost`: see `signpost --help`.

use clap::Parser;
use signpost::cli::Cli;
use signpost::commands::run;
use signpost::output::{write_error, write_outcome};
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
    tracing::debug!(command = ?cli.command, "signpost starting");
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match run(&cli) {
        Ok(outcome) => {
            let code = outcome.exit_status().code();
            match write_outcome(&mut out, &mut err, &outcome, cli.json())
                .and_then(|()| std::io::Write::flush(&mut out))
            {
                Ok(()) => ExitCode::from(code),
                // The reader went away (`signpost status | head -1`): not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
                Err(_) => ExitCode::from(signpost::ExitStatus::Failure.code()),
            }
        }
        Err(e) => {
            let _ = write_error(&mut err, &e);
            ExitCode::from(e.exit_code().code())
        }
    }
}
