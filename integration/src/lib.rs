//! The whole story across the real binaries, shared by the quickstart (`quickstart` binary) and
//! the integration tests (`tests/`).
//!
//! Every step runs a real binary (`os-image`, `repo-tools`, `pubsys`, `updog`, `signpost`) as an
//! operator would, on real files: disk images, signed repositories served on `127.0.0.1:0` or
//! read over `file://`. Binaries are found in `ABOS_BIN_DIR` or beside the running executable
//! (`target/<profile>/`); `scripts/test.sh` and `scripts/quickstart.sh` build them first.
#![deny(missing_docs)]
#![allow(clippy::print_stdout, clippy::print_stderr)]

pub mod fleet;
pub mod story;

/// The file that marks a directory as one the quickstart made (and may empty again).
pub const RUN_DIR_MARKER: &str = ".abos-quickstart";

/// Makes `dir` ready for a quickstart run: creates it if missing; empties it only if an earlier
/// run made it (it holds [`RUN_DIR_MARKER`]) or it is empty; refuses any other directory or a
/// file, so a mistyped argument never deletes somebody's files.
pub fn prepare_run_dir(dir: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot inspect {}: {e}", dir.display())),
        Ok(meta) if !meta.is_dir() => {
            return Err(format!(
                "{} exists and is not a directory; give a new or empty directory",
                dir.display()
            ));
        }
        Ok(_) => {
            let ours = dir.join(RUN_DIR_MARKER).is_file();
            let empty = std::fs::read_dir(dir)
                .map_err(|e| format!("cannot read {}: {e}", dir.display()))?
                .next()
                .is_none();
            if !ours && !empty {
                return Err(format!(
                    "{} is not empty and was not made by the quickstart (no {RUN_DIR_MARKER} in it); \
                     refusing to delete its files: give a new or empty directory",
                    dir.display()
                ));
            }
            if ours {
                std::fs::remove_dir_all(dir)
                    .map_err(|e| format!("cannot empty {}: {e}", dir.display()))?;
            }
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    std::fs::write(
        dir.join(RUN_DIR_MARKER),
        "made by abos' quickstart; it empties this directory on its next run\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", dir.join(RUN_DIR_MARKER).display()))
}

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
        for name in [
            "os-image",
            "repo-tools",
            "pubsys",
            "updog",
            "signpost",
            "fleetctl",
        ] {
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
