//! updog binary: parse, set up logging and progress, run one command, render, exit.

mod output;

use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use updog::cli::{Cli, Cmd};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(misplaced) = cli.misplaced_flag() {
        use clap::CommandFactory;
        Cli::command()
            .error(clap::error::ErrorKind::ArgumentConflict, misplaced)
            .exit();
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(format!(
            "warn,updog={}",
            cli.log_level.as_str()
        )))
        .with_target(false)
        .with_ansi(output::ansi())
        .init();
    tracing::debug!(command = ?cli.command, "updog starting");

    if let Cmd::GenerateDocs { out } = &cli.command {
        return match updog::docs::generate(out) {
            Ok(files) => output::docs(&files),
            Err(e) => output::error(&e, cli.json),
        };
    }
    let Some(command) = cli.to_command() else {
        return ExitCode::from(updog::ExitStatus::Usage.code());
    };
    let reporter: Arc<dyn updog::Reporter> = output::reporter(cli.json);
    let env = cli.env(jiff::Timestamp::now(), reporter.clone());
    let result = updog::run(command, &env);
    output::finish(reporter.as_ref());
    match result {
        Ok(outcome) => output::outcome(&outcome, cli.json),
        Err(e) => output::error(&e, cli.json),
    }
}
