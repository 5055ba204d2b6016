//! `kernel-config`: see `kernel-config --help`.

use clap::Parser;
use kernel_config::cli::Cli;
use kernel_config::output::{write_error, write_outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // KERNEL_CONFIG_LOG (an EnvFilter such as `debug`) raises the log level; default warn.
    let filter = std::env::var("KERNEL_CONFIG_LOG")
        .ok()
        .and_then(|v| tracing_subscriber::EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    tracing::debug!(command = ?cli.command, "kernel-config starting");
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match kernel_config::commands::run(&cli) {
        Ok(outcome) => {
            let code = outcome.exit_status().code();
            match write_outcome(&mut out, &outcome, cli.json)
                .and_then(|()| std::io::Write::flush(&mut out))
            {
                Ok(()) => ExitCode::from(code),
                // The reader went away (`kernel-config check … | head -1`): not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
                Err(_) => ExitCode::from(kernel_config::ExitStatus::Failed.code()),
            }
        }
        Err(e) => {
            let _ = write_error(&mut err, &e);
            ExitCode::from(e.exit_code().code())
        }
    }
}
