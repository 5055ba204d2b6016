//! `waves`: show how a wave policy rolls a release out over the fleet.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use waves::cli::Args;

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let args = Args::parse();
    let level = match args.verbose {
        0 => args.log_level.as_str(),
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    tracing::debug!(command = ?args.command, "waves starting");
    let outcome = waves::commands::run(&args.command).and_then(|o| {
        if args.json {
            o.to_json()
        } else {
            Ok(o.to_text())
        }
    });
    match outcome {
        Ok(mut text) => {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            let mut out = std::io::stdout().lock();
            match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
                Ok(()) => ExitCode::SUCCESS,
                // The reader went away (`waves schedule … | head -3`): not a failure.
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => {
                    let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
                    ExitCode::from(waves::ExitStatus::Io as u8)
                }
            }
        }
        Err(e) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let _ = writeln!(err, "  Caused by: {s}");
                source = s.source();
            }
            if let Some(hint) = e.hint() {
                let _ = writeln!(err, "hint: {hint}");
            }
            ExitCode::from(e.exit_code() as u8)
        }
    }
}
