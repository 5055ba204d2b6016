//! The whole story across the real binaries, shared by the quickstart (`quickstart` binary) and
//! the integration tests (`tests/`).
//!
//! Every step runs a real binary (`os-image`, `repo-tools`, `pubsys`, `updog`, `signpost`) as an
//! operator would, on real files: disk images, signed repositories served on `127.0.0.1:0` or
//! read over `file://`. Binaries are found in `ABOS_BIN_DIR` or beside the running executable
//! (`target/<profile>/`); `scripts/test.sh` and `scripts/quickstart.sh` build them first.
#![deny(missing_docs)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod story;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where the workspace binaries are.
#[derive(Debug, Clone)]
pub struct Bins {
    dir: PathBuf,
}

impl Bins {
    /// `ABOS_BIN_DIR`, else the profile directory of the running executable
    /// (`target/debug/deps/x` → `target/debug`, `target/release/quickstart` → `target/release`).
    pub fn locate() -> Result<Bins, String> {
        let dir = match std::env::var_os("ABOS_BIN_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => {
                let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
                let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
                if dir.ends_with("deps") {
                    dir.pop();
                }
                dir
            }
        };
        let bins = Bins { dir };
        for name in ["os-image", "repo-tools", "pubsys", "updog", "signpost"] {
            let path = bins.path(name);
            if !path.is_file() {
                return Err(format!(
                    "{} not found; build the binaries first: cargo build --workspace --bins \
                     (scripts/test.sh and scripts/quickstart.sh do), or set ABOS_BIN_DIR",
                    path.display()
                ));
            }
        }
        Ok(bins)
    }

    /// Path of binary `name`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// A command for binary `name`.
    pub fn cmd(&self, name: &str) -> Command {
        Command::new(self.path(name))
    }
}

/// The captured result of one command.
#[derive(Debug, Clone)]
pub struct Run {
    /// The command line, for messages.
    pub line: String,
    /// Exit code (-1 if killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Parse stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "{}: stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.line, self.stdout, self.stderr
            )
        })
    }

    /// Panic with the whole output unless the exit code is `code`.
    pub fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code, code,
            "{} exited {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.line, self.code, self.stdout, self.stderr
        );
        self
    }

    /// Panic unless the command succeeded.
    pub fn ok(self) -> Run {
        self.expect_code(0)
    }
}

/// Run a command to completion, capturing its output.
pub fn run(mut cmd: Command) -> Run {
    let line = std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(shell_word)
        .collect::<Vec<_>>()
        .join(" ");
    let Output {
        status,
        stdout,
        stderr,
    } = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {line}: {e}"));
    Run {
        line,
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

fn shell_word(arg: &OsStr) -> String {
    let s = arg.to_string_lossy();
    let name = Path::new(s.as_ref() as &str)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    // Show binaries by name, not by their long target path.
    if s.contains("/target/")
        && let Some(name) = name
    {
        return name;
    }
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./=:,".contains(c))
    {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
