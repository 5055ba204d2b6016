//! fleetctl's exit statuses as the table shown by `fleetctl --help` and README.

use crate::ExitStatus;

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        use ExitStatus::*;
        &[
            Success,
            Failure,
            Usage,
            Unreachable,
            EtcdError,
            Halted,
            Timeout,
            CommandFailed,
        ]
    }
    fn code(self) -> u8 {
        self as u8
    }
    fn name(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Failure => "failure",
            Usage => "usage",
            Unreachable => "unreachable",
            EtcdError => "etcd-error",
            Halted => "halted",
            Timeout => "timeout",
            CommandFailed => "command-failed",
        }
    }
    fn meaning(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Failure => "other failure",
            Usage => "usage or invalid input (group, host, version, endpoint)",
            Unreachable => "no etcd endpoint answered",
            EtcdError => "etcd refused the request or answered something unexpected",
            Halted => "the version is halted (hold)",
            Timeout => "no slot before the deadline (hold)",
            CommandFailed => "the command run by hold failed (its slot was released)",
        }
    }
}
