//! updog binary: parse, set up logging and progress, run one command, render, exit.

mod output;

use clap::Parser;
use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use updog::cli::{Cli, Cmd};
use updog::exit::ExitCodeStyle;

fn main() -> ExitCode {
    let style = match ExitCodeStyle::from_env() {
        Ok(style) => style,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e}");
            return ExitCode::from(updog::ExitStatus::Usage.code());
        }
    };
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(match (e.use_stderr(), style) {
                (false, _) => 0,
                (true, ExitCodeStyle::Bottlerocket) => 1,
                (true, ExitCodeStyle::Abos) => updog::ExitStatus::Usage.code(),
            });
        }
    };
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
            Err(e) => output::error(&e, cli.json, e.exit_code().code()),
        };
    }
    let Some(command) = cli.to_command() else {
        return ExitCode::from(updog::ExitStatus::Usage.code());
    };
    let reporter: Arc<dyn updog::Reporter> = output::reporter(cli.json);
    let env = cli.env(jiff::Timestamp::now(), reporter.clone());
    let check = matches!(cli.command, Cmd::CheckUpdate);
    let result = updog::run(command, &env);
    output::finish(reporter.as_ref());
    match result {
        Ok(outcome) => {
            let code = style.code(outcome.exit_status(), check);
            output::outcome(&outcome, cli.json, code)
        }
        Err(e) => output::error(&e, cli.json, style.code(e.exit_code(), check)),
    }
}
