//! `fleetctl`: see and steer a fleet rollout coordinated on etcd.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use fleet::cli::Args;
use fleet::commands::{HoldReporter, Outcome};
use fleet::{AcquireObserver, ClientTimeouts, EtcdClient, EtcdCoordinator, ExitStatus};

/// Progress of `hold`, on stderr.
#[derive(Debug)]
struct Stderr;

#[allow(clippy::print_stderr)]
impl AcquireObserver for Stderr {
    fn waiting(&self, status: &fleet::WaitStatus) {
        eprintln!("{status}");
    }
}

#[allow(clippy::print_stderr)]
impl HoldReporter for Stderr {
    fn acquired(&self, slot: &fleet::Slot) {
        eprintln!(
            "acquired: slot of group {} for {}",
            slot.group, slot.version
        );
    }
}

async fn run(args: &Args) -> fleet::Result<Outcome> {
    let timeouts = ClientTimeouts {
        request: Duration::from_secs(args.request_timeout.max(1)),
        ..ClientTimeouts::default()
    };
    let client = EtcdClient::new(fleet::parse_endpoints(&args.endpoints)?, timeouts)?;
    fleet::commands::run(
        &args.command,
        Arc::new(EtcdCoordinator::new(client)),
        &Stderr,
    )
    .await
}

#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(ExitStatus::Failure as u8);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(outcome) => {
            if args.json {
                println!("{}", outcome.to_json());
            } else {
                print!("{}", outcome.to_text());
            }
            if outcome.is_success() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(ExitStatus::CommandFailed as u8)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  Caused by: {s}");
                source = s.source();
            }
            if let Some(hint) = e.hint() {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(e.exit_status() as u8)
        }
    }
}
