//! pubsys's exit statuses as the table shown by `--help`, `pubsys(1)` and README.

use crate::ExitStatus;

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        use ExitStatus::*;
        &[
            Success, Negative, Usage, Keys, Repository, Conflict, Manifest, Write,
        ]
    }
    fn code(self) -> u8 {
        self as u8
    }
    fn name(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Negative => "negative",
            Usage => "usage",
            Keys => "keys",
            Repository => "repository",
            Conflict => "conflict",
            Manifest => "manifest",
            Write => "write",
        }
    }
    fn meaning(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            Negative => {
                "negative answer (a role expires inside the window, targets fail verification)"
            }
            Usage => "usage or input",
            Keys => {
                "signing keys (also a PKCS#11 token or KMS key that cannot be used: nothing is written)"
            }
            Repository => "repository load/verification",
            Conflict => {
                "conflict with the repository's contents (also: another publisher won a race on an s3:// repository)"
            }
            Manifest => "manifest invalid",
            Write => "write failure (live repository unchanged)",
        }
    }
}
