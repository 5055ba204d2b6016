//! `pubsys`: publish, validate, refresh and yank releases in TUF repositories.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod progress;

use clap::Parser;
use pubsys::cli::Cli;
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
        .with_max_level(level)
        .init();
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
            if json {
                println!("{}", outcome.to_json());
            } else {
                print!("{}", outcome.to_text());
            }
            ExitCode::from(outcome.exit_status().code())
        }
        Err(err) => {
            eprintln!("error: {err}");
            // tough's messages repeat their cause's text; print each text once.
            let mut previous = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                let text = cause.to_string();
                if !previous.ends_with(&text) {
                    eprintln!("  Caused by: {text}");
                }
                previous = text;
                source = cause.source();
            }
            if let Some(hint) = err.hint() {
                eprintln!("hint: {hint}");
            }
            if json {
                let value = serde_json::json!({
                    "error": err.to_string(),
                    "chain": pubsys::error::chain_string(&err),
                    "exit_code": err.exit_code(),
                });
                println!("{value}");
            }
            ExitCode::from(err.exit_code())
        }
    }
}
