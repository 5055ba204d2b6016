//! The crate's error type: one variant per failed operation, carrying its path or tool.

use snafu::Snafu;
use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while building, verifying or booting an image.
#[derive(Debug, Snafu)]
#[non_exhaustive]
#[snafu(visibility(pub(crate)))]
pub enum Error {
    // ----- verity -----
    /// Building or checking a dm-verity hash tree failed (the cause says which block, field or
    /// read).
    #[snafu(display("verity {op} failed for {}", path.display()))]
    Verity {
        /// "hash tree build" or "check".
        op: &'static str,
        /// The data being hashed (root filesystem image) or the disk being checked.
        path: PathBuf,
        /// Cause.
        source: dm_verity::Error,
    },

    // ----- layout -----
    /// The OS image size is out of range.
    #[snafu(display("OS image size {gib} GiB is out of range (1 to 1024)"))]
    LayoutSize {
        /// Size asked for.
        gib: u32,
    },

    // ----- names and inputs -----
    /// A name given on the command line or in a spec is not valid.
    #[snafu(display("invalid {what} '{value}': {reason}"))]
    InvalidName {
        /// Which kind of name.
        what: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: &'static str,
    },
    /// The root filesystem input cannot be read.
    #[snafu(display("cannot read the root filesystem input {}", path.display()))]
    RootfsSource {
        /// Input path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The tar input cannot be extracted.
    #[snafu(display("cannot extract the root filesystem archive {}", path.display()))]
    ExtractTar {
        /// Archive path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The input holds something we cannot copy (device node, fifo, socket, or a symlinked
    /// directory where we install a file).
    #[snafu(display("unsupported file type in the root filesystem input: {}", path.display()))]
    UnsupportedFile {
        /// The path.
        path: PathBuf,
    },
    /// A file name debugfs cannot address (not UTF-8, or contains `"` or a newline).
    #[snafu(display("unsupported file name in the root filesystem: {}", path.display()))]
    UnsupportedPath {
        /// The path.
        path: PathBuf,
    },
    /// `--root-json` is not JSON.
    #[snafu(display("{} is not valid JSON (expected a TUF root.json)", path.display()))]
    InvalidRootJson {
        /// File.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// `--updog-toml` is a file updog would refuse (checked with updog's own parser).
    #[snafu(display("--updog-toml {} is not a valid updog.toml", path.display()))]
    InvalidUpdogToml {
        /// File.
        path: PathBuf,
        /// The parser's error (names the key and line).
        #[snafu(source(from(updog_config::Error, Box::new)))]
        source: Box<updog_config::Error>,
    },
    /// The content does not fit its partition.
    #[snafu(display(
        "the {what} built from {} does not fit its {} MiB partition",
        source_dir.display(),
        max_bytes / (1 << 20)
    ))]
    ContentTooBig {
        /// "root filesystem", "boot filesystem", "hash tree".
        what: &'static str,
        /// Where the content came from.
        source_dir: PathBuf,
        /// Partition size.
        max_bytes: u64,
    },

    // ----- tools -----
    /// A bootloader build directory (`--bootloader`) is missing a file or holds a bad one.
    #[snafu(display("bootloader {}: {reason}", path.display()))]
    BadBootloader {
        /// The file or directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// An external tool is not installed.
    #[snafu(display("missing tool `{tool}` (install the Debian package `{package}`)"))]
    ToolMissing {
        /// Tool name.
        tool: &'static str,
        /// Debian package.
        package: &'static str,
    },
    /// An external tool could not be started.
    #[snafu(display("cannot run `{tool}`"))]
    ToolSpawn {
        /// Tool name.
        tool: &'static str,
        /// Cause.
        source: std::io::Error,
    },
    /// An external tool failed.
    #[snafu(display("`{tool}` failed ({status}): {stderr}\n  command: {command}"))]
    ToolFailed {
        /// Tool name.
        tool: &'static str,
        /// Command line.
        command: String,
        /// Exit status.
        status: String,
        /// Last lines of its stderr.
        stderr: String,
    },
    /// An external tool printed something we could not understand.
    #[snafu(display("cannot find the {what} in the output of `{tool}`"))]
    ToolOutput {
        /// Tool name.
        tool: &'static str,
        /// What was looked for.
        what: &'static str,
    },

    // ----- files -----
    /// Creating a file failed.
    #[snafu(display("cannot create {}", path.display()))]
    CreateFile {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Opening a file failed.
    #[snafu(display("cannot open {}", path.display()))]
    OpenFile {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Reading a file failed.
    #[snafu(display("cannot read {}", path.display()))]
    ReadFile {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Writing a file failed.
    #[snafu(display("cannot write {}", path.display()))]
    WriteFile {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Copying a file failed.
    #[snafu(display("cannot copy {} to {}", from.display(), to.display()))]
    CopyFile {
        /// Source.
        from: PathBuf,
        /// Destination.
        to: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Creating a directory failed.
    #[snafu(display("cannot create directory {}", path.display()))]
    CreateDir {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Listing a directory failed.
    #[snafu(display("cannot list directory {}", path.display()))]
    ReadDir {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Creating a temporary file failed.
    #[snafu(display("cannot create a temporary file"))]
    CreateTemp {
        /// Cause.
        source: std::io::Error,
    },
    /// The output directory cannot be created or written.
    #[snafu(display("cannot write to the output directory {}", path.display()))]
    OutputDir {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Renaming a finished output into place failed.
    #[snafu(display("cannot move {} into place", path.display()))]
    Publish {
        /// Final path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Removing, fsyncing or syncing the directory of a published output (`abos-fsio`) failed.
    #[snafu(display("cannot publish {} ({})", path.display(), source.op()))]
    PublishDurable {
        /// File or directory.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },

    /// Flushing a block device or dropping its cached pages before reading it failed.
    #[snafu(display("cannot read {} from the device ({})", path.display(), source.op()))]
    ReadFromDevice {
        /// The block device.
        path: PathBuf,
        /// The step that failed and the I/O error.
        source: abos_fsio::Error,
    },

    // ----- disk image -----
    /// Writing the partition table failed.
    #[snafu(display("cannot write the partition table of {}", path.display()))]
    WriteTable {
        /// Disk image.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// Writing the build description failed.
    #[snafu(display("cannot write the build description {}", path.display()))]
    WriteDescription {
        /// Path.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(update_metadata::Error, Box::new)))]
        source: Box<update_metadata::Error>,
    },
    /// Opening a disk (GPT) failed.
    #[snafu(display("cannot read the partition table of {}", path.display()))]
    OpenDisk {
        /// Disk.
        path: PathBuf,
        /// Cause.
        #[snafu(source(from(signpost::Error, Box::new)))]
        source: Box<signpost::Error>,
    },
    /// The disk's partitions are not the plan.
    #[snafu(display("{} does not have the expected layout: {reason}", path.display()))]
    LayoutMismatch {
        /// Disk.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A file is missing from a filesystem inside the disk.
    #[snafu(display("{path} not found in the filesystem at byte {offset} of {}", image.display()))]
    FileNotInImage {
        /// Disk or image file.
        image: PathBuf,
        /// Byte offset of the filesystem.
        offset: u64,
        /// Path inside the filesystem.
        path: String,
    },
    /// The verity parameters in a boot partition are unusable.
    #[snafu(display("invalid field `{field}` in the verity parameters {}", path.display()))]
    BootParamsInvalid {
        /// Where they came from.
        path: PathBuf,
        /// Field.
        field: &'static str,
    },
    /// verity.json could not be parsed.
    #[snafu(display("cannot parse the verity parameters {}", path.display()))]
    BootParamsParse {
        /// Where they came from.
        path: PathBuf,
        /// Cause.
        source: serde_json::Error,
    },
    /// grub.cfg and verity.json disagree.
    #[snafu(display(
        "{partition}: grub.cfg's dm-verity table differs from verity.json (grub.cfg: {grub}; verity.json: {json})"
    ))]
    BootParamsDisagree {
        /// Boot partition label.
        partition: String,
        /// Table in grub.cfg.
        grub: String,
        /// Table from verity.json.
        json: String,
    },
    /// A set's partition does not hold what it should.
    #[snafu(display("set {set}: {what}"))]
    SetContent {
        /// Set.
        set: signpost::SetName,
        /// What is wrong.
        what: String,
    },
    /// A set failed verification.
    #[snafu(display("set {set} failed verification"))]
    SetVerification {
        /// Set.
        set: signpost::SetName,
        /// The first problem found.
        #[snafu(source(from(Error, Box::new)))]
        source: Box<Error>,
    },
    /// No set on the disk holds an OS.
    #[snafu(display("no partition set of {} holds an OS (every BOOT partition is empty)", path.display()))]
    NoPopulatedSet {
        /// Disk.
        path: PathBuf,
    },
    /// A BOOT partition holds no ext4 filesystem.
    #[snafu(display("{partition} holds no boot filesystem (empty or damaged)"))]
    NoBootFilesystem {
        /// Boot partition label.
        partition: String,
    },
    /// Reading a partition of a disk failed.
    #[snafu(display("cannot read {partition} of {}", path.display()))]
    ReadPartition {
        /// Disk.
        path: PathBuf,
        /// Partition label.
        partition: String,
        /// Cause.
        source: std::io::Error,
    },
    /// SOURCE_DATE_EPOCH is out of range.
    #[snafu(display("SOURCE_DATE_EPOCH {value} is not a valid time"))]
    InvalidEpoch {
        /// Value given.
        value: i64,
    },
}

/// Exit status of the `os-image` binary, by error class. Never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ExitStatus {
    /// 0: success.
    Success,
    /// 1: the image is corrupt or inconsistent (verification failed).
    VerificationFailed,
    /// 2: usage error or bad input (bad name or version, unreadable or too big root filesystem).
    BadInput,
    /// 3: environment (missing tool, unwritable output directory).
    Environment,
    /// 4: anything else (a tool or I/O failed).
    Failed,
}

impl ExitStatus {
    /// The process exit code.
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::VerificationFailed => 1,
            ExitStatus::BadInput => 2,
            ExitStatus::Environment => 3,
            ExitStatus::Failed => 4,
        }
    }
}

impl abos_shell::ExitCodes for ExitStatus {
    fn all() -> &'static [Self] {
        use ExitStatus::*;
        &[Success, VerificationFailed, BadInput, Environment, Failed]
    }
    fn code(self) -> u8 {
        ExitStatus::code(self)
    }
    fn name(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            VerificationFailed => "verification-failed",
            BadInput => "bad-input",
            Environment => "environment",
            Failed => "failed",
        }
    }
    fn meaning(self) -> &'static str {
        use ExitStatus::*;
        match self {
            Success => "success",
            VerificationFailed => "verification failed",
            BadInput => "usage or bad input",
            Environment => "environment (missing tool, unwritable output)",
            Failed => "other failure",
        }
    }
}

impl Error {
    /// The exit status for this error.
    pub fn exit_code(&self) -> ExitStatus {
        use Error::*;
        match self {
            Verity { source, .. } => match source.class() {
                dm_verity::ErrorClass::Mismatch => ExitStatus::VerificationFailed,
                dm_verity::ErrorClass::InvalidInput => ExitStatus::BadInput,
                _ => ExitStatus::Failed,
            },
            // A file that is not a GPT disk, or not one of ours, is bad input like any other
            // (README: 2); only an I/O failure while reading it is a plain failure.
            OpenDisk { source, .. } => match source.exit_code() {
                signpost::ExitStatus::InvalidDisk
                | signpost::ExitStatus::Refused
                | signpost::ExitStatus::Usage => ExitStatus::BadInput,
                _ if matches!(**source, signpost::Error::OpenDisk { .. }) => ExitStatus::BadInput,
                _ => ExitStatus::Failed,
            },
            SetVerification { .. }
            | SetContent { .. }
            | LayoutMismatch { .. }
            | NoPopulatedSet { .. }
            | NoBootFilesystem { .. }
            | BootParamsDisagree { .. }
            | BootParamsInvalid { .. }
            | BootParamsParse { .. }
            | FileNotInImage { .. } => ExitStatus::VerificationFailed,
            InvalidName { .. }
            | InvalidEpoch { .. }
            | RootfsSource { .. }
            | ExtractTar { .. }
            | UnsupportedFile { .. }
            | UnsupportedPath { .. }
            | InvalidRootJson { .. }
            | InvalidUpdogToml { .. }
            | ContentTooBig { .. }
            | LayoutSize { .. }
            | BadBootloader { .. } => ExitStatus::BadInput,
            ToolMissing { .. } | OutputDir { .. } | CreateTemp { .. } => ExitStatus::Environment,
            _ => ExitStatus::Failed,
        }
    }

    /// A suggestion for the operator, if there is a useful one.
    pub fn hint(&self) -> Option<String> {
        use Error::*;
        match self {
            ToolMissing { package, .. } => Some(format!("apt-get install -y --no-install-recommends {package}")),
            ContentTooBig { .. } => Some(
                "use a larger --os-size-gib (each GiB adds 460 MiB to ROOT and 20 MiB to BOOT) or a smaller tree".into(),
            ),
            OutputDir { .. } => Some("choose an output directory you can write to, on a filesystem with free space".into()),
            SetVerification { .. }
            | Verity {
                source:
                    dm_verity::Error::DataBlockCorrupt { .. }
                    | dm_verity::Error::HashBlockCorrupt { .. },
                ..
            } => {
                Some("the set's ROOT or HASH partition does not match its BOOT partition; write the set again".into())
            }
            LayoutMismatch { .. } => Some("this disk was not made by os-image (or its table was changed)".into()),
            InvalidRootJson { .. } => Some("pass the TUF root.json of the repository hosts will update from".into()),
            InvalidUpdogToml { .. } => Some("fix the file: every host built from this image would read it at each update".into()),
            _ => None,
        }
    }
}
