//! `fleetctl`: see and steer a fleet rollout coordinated on etcd.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use abos_shell::error::Report;
use abos_shell::printer::{Mode, Printer};
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

fn main() -> ExitCode {
    let args = abos_shell::printer::parse::<Args, ExitStatus>();
    let printer = Printer::new(Mode::from_flags(args.json, false, 0));
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let mut report = Report::with_status(&e, ExitStatus::Failure);
            report.message = format!("cannot start the async runtime: {e}");
            printer.error(&report);
            return ExitCode::from(ExitStatus::Failure as u8);
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(outcome) => {
            let text = if args.json {
                format!("{}\n", outcome.to_json())
            } else {
                outcome.to_text()
            };
            let code = if outcome.is_success() {
                ExitStatus::Success
            } else {
                ExitStatus::CommandFailed
            };
            printer.stdout(&text, code as u8, ExitStatus::Failure as u8)
        }
        Err(e) => {
            let status = e.exit_status();
            printer.error(&Report::with_status(&e, status).hint(e.hint()));
            ExitCode::from(status as u8)
        }
    }
}
