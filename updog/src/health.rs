//! Health checks run after a boot into a new set, before the boot is marked successful
//! (greenboot's model): first every systemd unit of `health_units` must be active (`systemctl
//! is-active -- UNIT` exits 0), then every executable regular file in `/etc/updog/health.d/`, in
//! file-name order. Each check has the same timeout. A check passes when it exits 0 in time. A
//! check that overruns is killed with its whole process group. A unit check whose `systemctl`
//! cannot be started fails (the unit could not be shown active).

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

/// What a check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// An executable in the check directory.
    Executable,
    /// A systemd unit of `health_units` that must be active.
    Unit,
}

/// The result of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// File name in the check directory, or the unit's name.
    pub name: String,
    /// Executable or unit.
    pub kind: CheckKind,
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
        if self.kind == CheckKind::Unit {
            return if self.timed_out {
                format!(
                    "health check: `systemctl is-active {}` did not answer within {}s and was killed",
                    self.name,
                    timeout.as_secs()
                )
            } else {
                let why = match self.exit_code {
                    Some(c) => format!("`systemctl is-active` exited with status {c}"),
                    None => "`systemctl is-active` could not run or was killed".to_owned(),
                };
                format!("health check: unit {} is not active ({why})", self.name)
            };
        }
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

/// Every check, units first, stopping at the first failure: the results so far, and the failed
/// one (also the last of the results) if any.
pub fn run_all(
    units: &[String],
    dir: &Path,
    timeout: Duration,
    host_root: &Path,
) -> Result<(Vec<CheckResult>, Option<CheckResult>)> {
    let mut results = Vec::new();
    for unit in units {
        tracing::info!("health check: unit {unit} must be active");
        let r = run_unit(unit, timeout)?;
        results.push(r.clone());
        if !r.passed {
            return Ok((results, Some(r)));
        }
    }
    for path in list(dir)? {
        tracing::info!("health check {}", path.display());
        let r = run(&path, timeout, host_root)?;
        results.push(r.clone());
        if !r.passed {
            return Ok((results, Some(r)));
        }
    }
    Ok((results, None))
}

/// Checks that systemd unit `unit` is active: `systemctl is-active -- UNIT` (from `PATH`) exits
/// 0 within `timeout`. Its answer (`inactive`, `failed`, or why systemctl could not tell) is the
/// output of a failed check; a `systemctl` that cannot be started fails the check.
pub fn run_unit(unit: &str, timeout: Duration) -> Result<CheckResult> {
    let mut cmd = std::process::Command::new("systemctl");
    cmd.args(["is-active", "--", unit]);
    match supervise(cmd, Path::new("systemctl"), timeout) {
        Ok(mut r) => {
            r.name = unit.to_owned();
            r.kind = CheckKind::Unit;
            Ok(r)
        }
        Err(crate::Error::HealthCheckRun { source, .. }) => Ok(CheckResult {
            name: unit.to_owned(),
            kind: CheckKind::Unit,
            passed: false,
            exit_code: None,
            timed_out: false,
            millis: 0,
            output: Some(format!("cannot run systemctl: {source}")),
        }),
        Err(e) => Err(e),
    }
}

/// Runs one check with `timeout`; its stdin is empty, its output captured (the tail kept).
/// `UPDOG_HOST_ROOT` tells it which directory stands for `/`.
pub fn run(path: &Path, timeout: Duration, host_root: &Path) -> Result<CheckResult> {
    let mut cmd = std::process::Command::new(path);
    cmd.env("UPDOG_HOST_ROOT", host_root);
    supervise(cmd, path, timeout)
}

/// Runs `cmd` in its own process group with `timeout` (the group is killed when it overruns).
fn supervise(
    mut cmd: std::process::Command,
    path: &Path,
    timeout: Duration,
) -> Result<CheckResult> {
    let ctx = || error::HealthCheckRunSnafu { path };
    let mut out = tempfile::tempfile().context(ctx())?;
    let started = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone().context(ctx())?)
        .stderr(out.try_clone().context(ctx())?)
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
        kind: CheckKind::Executable,
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

    /// The failing path for real: `systemctl is-active` on a unit that exists nowhere answers
    /// `inactive` (exit 3) on a systemd host, and without systemd as PID 1 (containers, this
    /// sandbox) it cannot reach the manager and exits 1. Either way the check fails with
    /// systemctl's own answer as its output.
    #[test]
    fn a_unit_that_is_not_active_fails_with_systemctls_answer() {
        if !test_support::require_tool("systemctl") {
            return;
        }
        let unit = "abos-surely-absent-unit.service";
        let r = run_unit(unit, Duration::from_secs(20)).unwrap();
        assert!(!r.passed && !r.timed_out, "{r:?}");
        assert_eq!(r.kind, CheckKind::Unit);
        assert!(matches!(r.exit_code, Some(1 | 3 | 4)), "{r:?}");
        let out = r.output.clone().unwrap_or_default();
        assert!(
            out.contains("inactive") || out.contains("systemd") || out.contains("bus"),
            "{r:?}"
        );
        let reason = r.reason(Duration::from_secs(20));
        assert!(
            reason.contains(unit) && reason.contains("is not active"),
            "{reason}"
        );
        // Units run first: a failing unit stops the run before any executable.
        let t = tempfile::tempdir().unwrap();
        let marker = t.path().join("ran");
        script(
            t.path(),
            "10-ok",
            &format!("touch {}", marker.display()),
            0o755,
        );
        let (all, failed) = run_all(
            &[unit.to_owned()],
            t.path(),
            Duration::from_secs(20),
            t.path(),
        )
        .unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(failed.map(|f| f.name), Some(unit.to_owned()));
        assert!(!marker.exists());
    }

    /// The passing path needs a running systemd (PID 1): the root mount `-.mount` is active on
    /// every such host. Elsewhere (containers, this sandbox) it is a recorded skip.
    #[test]
    fn an_active_unit_passes_under_systemd() {
        if !test_support::require_tool("systemctl") {
            return;
        }
        if !Path::new("/run/systemd/system").is_dir() {
            test_support::skip("systemd is not PID 1 here: no unit can be active");
            return;
        }
        let r = run_unit("-.mount", Duration::from_secs(20)).unwrap();
        assert!(r.passed, "{r:?}");
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
