//! `pubsys`: publish, validate, refresh and yank releases in TUF repositories.

mod progress;

use clap::Parser;
use pubsys::cli::Cli;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = match cli.verbose {
        0 => cli.log_level,
        1 => tracing::level_filters::LevelFilter::INFO,
        2 => tracing::level_filters::LevelFilter::DEBUG,
        _ => tracing::level_filters::LevelFilter::TRACE,
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // A closed stderr (`… 2>&1 | head`) must not turn into a panic in eprintln!.
        .log_internal_errors(false)
        .with_max_level(level)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .init();
    tracing::debug!(command = ?cli.command, "pubsys starting");
    let json = cli.json;
    let env = pubsys::commands::Env {
        now: jiff::Timestamp::now(),
        reporter: progress::reporter(if json {
            progress::Mode::Json
        } else if cli.verbose > 0 {
            progress::Mode::Quiet
        } else {
            progress::Mode::Human
        }),
    };
    let result = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|source| pubsys::Error::Runtime { source })
        .and_then(|rt| rt.block_on(pubsys::commands::run(cli, &env)));
    match result {
        Ok(outcome) => {
            let text = if json {
                format!("{}\n", outcome.to_json())
            } else {
                outcome.to_text()
            };
            print_stdout(&text, outcome.exit_status().code())
        }
        Err(err) => {
            let mut text = format!("error: {err}\n");
            // tough's messages repeat their cause's text; print each text once.
            let mut previous = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                let cause_text = cause.to_string();
                if !previous.ends_with(&cause_text) {
                    text.push_str(&format!("  Caused by: {cause_text}\n"));
                }
                previous = cause_text;
                source = cause.source();
            }
            if let Some(hint) = err.hint() {
                text.push_str(&format!("hint: {hint}\n"));
            }
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
            if json {
                let value = serde_json::json!({
                    "error": err.to_string(),
                    "chain": pubsys::error::chain_string(&err),
                    "exit_code": err.exit_code(),
                });
                return print_stdout(&format!("{value}\n"), err.exit_code());
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// Writes the result to stdout. A reader that went away (`pubsys manifest show F | head`) is
/// not an error: the command's own exit code stands.
fn print_stdout(text: &str, code: u8) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(code),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {e}");
            ExitCode::from(if code == 0 {
                pubsys::ExitStatus::Usage.code()
            } else {
                code
            })
        }
    }
}
