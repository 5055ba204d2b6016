//! `kernel-config`: see `kernel-config --help`.

use clap::Parser;
use kernel_config::cli::Cli;
use kernel_config::output::{write_error, write_outcome};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(std::io::stderr)
        .init();
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    match kernel_config::commands::run(&cli) {
        Ok(outcome) => match write_outcome(&mut out, &outcome, cli.json) {
            Ok(()) => ExitCode::from(outcome.exit_status().code()),
            Err(_) => ExitCode::from(kernel_config::ExitStatus::Failed.code()),
        },
        Err(e) => {
            let _ = write_error(&mut err, &e);
            ExitCode::from(e.exit_code().code())
        }
    }
}
