//! Health checks run after a boot into a new set, before the boot is marked successful
//! (greenboot's model): every executable regular file in `/etc/updog/health.d/`, in file-name
//! order, each with a timeout. A check passes when it exits 0 in time. A check that overruns is
//! killed with its whole process group.

use crate::error::{self, Result};
use crate::status;
use serde::Serialize;
use snafu::ResultExt;
use std::io::{Read, Seek};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// File name in the check directory.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// Exit code, if it exited.
    pub exit_code: Option<i32>,
    /// Whether it was killed for overrunning its timeout.
    pub timed_out: bool,
    /// Milliseconds it ran.
    pub millis: u64,
    /// The tail of its combined stdout and stderr (only for a failed check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

impl CheckResult {
    /// Why it failed, in words.
    pub fn reason(&self, timeout: Duration) -> String {
        if self.timed_out {
            format!(
                "health check {} did not finish within {}s and was killed",
                self.name,
                timeout.as_secs()
            )
        } else {
            match self.exit_code {
                Some(c) => format!("health check {} exited with status {c}", self.name),
                None => format!("health check {} was killed by a signal", self.name),
            }
        }
    }
}

/// The checks in `dir`, sorted by file name: executable regular files (following links, as
/// `/etc` is configuration, not updog's state). A missing directory holds no checks.
pub fn list(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(error::ReadFileSnafu { path: dir }),
    };
    let mut checks = Vec::new();
    for entry in entries {
        let entry = entry.context(error::ReadFileSnafu { path: dir })?;
        let path = entry.path();
        let Ok(meta) = std::fs::metadata(&path) else {
            tracing::warn!("skipping {}: cannot be read", path.display());
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        if meta.permissions().mode() & 0o111 == 0 {
            tracing::warn!("skipping {}: not executable", path.display());
            continue;
        }
        checks.push(path);
    }
    checks.sort();
    Ok(checks)
}

/// Runs one check with `timeout`; its stdin is empty, its output captured (the tail kept).
/// `UPDOG_HOST_ROOT` tells it which directory stands for `/`.
pub fn run(path: &Path, timeout: Duration, host_root: &Path) -> Result<CheckResult> {
    let ctx = || error::HealthCheckRunSnafu { path };
    let mut out = tempfile::tempfile().context(ctx())?;
    let started = Instant::now();
    let mut child = std::process::Command::new(path)
        .stdin(Stdio::null())
        .stdout(out.try_clone().context(ctx())?)
        .stderr(out.try_clone().context(ctx())?)
        .env("UPDOG_HOST_ROOT", host_root)
        .process_group(0)
        .spawn()
        .context(ctx())?;
    let deadline = started + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().context(ctx())? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            // The whole group: a check's children must not outlive it.
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let millis = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let passed = status.is_some_and(|s| s.success());
    let output = if passed {
        None
    } else {
        let mut bytes = Vec::new();
        out.rewind().context(ctx())?;
        out.read_to_end(&mut bytes).context(ctx())?;
        Some(status::tail(
            &String::from_utf8_lossy(&bytes),
            status::MAX_OUTPUT_BYTES,
        ))
    };
    Ok(CheckResult {
        name: path
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        passed,
        exit_code: status.and_then(|s| s.code()),
        timed_out: status.is_none(),
        millis,
        output,
    })
}

#[cfg(test)]
mod test {
    use super::*;

    fn script(dir: &Path, name: &str, body: &str, mode: u32) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn lists_executables_in_order_and_runs_them() {
        let t = tempfile::tempdir().unwrap();
        assert!(list(&t.path().join("missing")).unwrap().is_empty());
        script(t.path(), "20-fail", "echo broken >&2; exit 3", 0o755);
        script(t.path(), "10-ok", "echo fine", 0o755);
        script(t.path(), "30-not-executable", "exit 1", 0o644);
        let checks = list(t.path()).unwrap();
        let names: Vec<_> = checks.iter().map(|p| p.file_name().unwrap()).collect();
        assert_eq!(names, ["10-ok", "20-fail"]);
        let ok = run(&checks[0], Duration::from_secs(10), t.path()).unwrap();
        assert!(ok.passed && ok.output.is_none(), "{ok:?}");
        let bad = run(&checks[1], Duration::from_secs(10), t.path()).unwrap();
        assert_eq!((bad.passed, bad.exit_code), (false, Some(3)));
        assert_eq!(bad.output.as_deref(), Some("broken\n"));
    }

    #[test]
    fn an_overrunning_check_and_its_children_are_killed() {
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("survived");
        let p = script(
            t.path(),
            "slow",
            &format!("(sleep 2; touch {}) & sleep 30", marker.display()),
            0o755,
        );
        let started = Instant::now();
        let r = run(&p, Duration::from_millis(300), t.path()).unwrap();
        assert!(r.timed_out && !r.passed, "{r:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(2500));
        assert!(!marker.exists(), "a child of the killed check ran on");
    }
}
