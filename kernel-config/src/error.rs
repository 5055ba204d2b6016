//! The crate's error type.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong reading, merging or checking kernel configs.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    /// Reading a config or fragment failed.
    #[snafu(display("cannot read {}", path.display()))]
    ReadConfig {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// A line is neither `CONFIG_X=value`, `# CONFIG_X is not set`, a comment nor blank.
    #[snafu(display("{}:{line}: not a kernel config line: {text}", path.display()))]
    ParseConfig {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
    },
    /// A `# kernel-config:` directive in a fragment is not understood.
    #[snafu(display("{}:{line}: unknown directive `{text}` (expected severity=required|recommended or when=root-fs:ext4|erofs)", path.display()))]
    ParseDirective {
        /// File.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// The directive.
        text: String,
    },
    /// Writing an output failed.
    #[snafu(display("cannot write {}", path.display()))]
    WriteOutput {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing an output file (temp file, fsync, rename, directory fsync) failed.
    #[snafu(display("cannot write {} ({})", path.display(), source.op()))]
    WriteFile {
        /// File.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },
}

/// Exit status of the `kernel-config` binary. Never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success (check: the image can boot with this config).
    Success,
    /// 1: the defined negative answer: check found the image cannot boot with this config (or
    /// only with an initramfs); merge with --fail-on-conflict found conflicting fragments.
    Negative,
    /// 2: usage error or unreadable/malformed input.
    BadInput,
    /// 3: writing an output failed.
    Failed,
}

impl ExitStatus {
    /// Process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Negative => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::Failed => 3,
        }
    }
}

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        &[
            ExitStatus::Success,
            ExitStatus::Negative,
            ExitStatus::BadInput,
            ExitStatus::Failed,
        ]
    }
    fn code(self) -> u8 {
        ExitStatus::code(self)
    }
    fn name(self) -> &'static str {
        match self {
            ExitStatus::Success => "success",
            ExitStatus::Negative => "negative",
            ExitStatus::BadInput => "bad-input",
            ExitStatus::Failed => "failed",
        }
    }
    fn meaning(self) -> &'static str {
        match self {
            ExitStatus::Success => "success (check: bootable)",
            ExitStatus::Negative => {
                "the image cannot boot with this config (or only with an initramfs), or fragments conflict"
            }
            ExitStatus::BadInput => "usage or unreadable input",
            ExitStatus::Failed => "writing an output failed",
        }
    }
}

impl Error {
    /// The exit status for this error.
    pub fn exit_code(&self) -> ExitStatus {
        match self {
            Error::WriteOutput { .. } | Error::WriteFile { .. } => ExitStatus::Failed,
            _ => ExitStatus::BadInput,
        }
    }

    /// A suggestion for the operator.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::ParseConfig { .. } => {
                Some("pass a kernel .config (e.g. /boot/config-$(uname -r))".into())
            }
            _ => None,
        }
    }
}
