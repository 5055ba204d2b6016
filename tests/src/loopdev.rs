//! Loop devices for the tests and the benchmark that write to a real block device.

use std::path::{Path, PathBuf};
use std::process::Command;

/// True when this process runs as root.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// True as root; otherwise a recorded skip (a failure under CI, which runs tests as root).
pub fn need_root(what: &str) -> bool {
    if is_root() {
        return true;
    }
    let reason = format!("{what} needs root");
    assert!(!crate::in_ci(), "{reason}; CI runs tests as root");
    crate::skip(&reason);
    false
}

/// True when loop devices can be used; otherwise a recorded skip (a failure under CI).
pub fn need_loop_devices() -> bool {
    crate::require_tool("losetup") && crate::require_tool("partx") && need_root("a loop device")
}

/// A loop device over a file, detached when dropped.
#[derive(Debug)]
pub struct Loop {
    /// `/dev/loopN`.
    pub dev: PathBuf,
}

impl Loop {
    /// `losetup --find --show --partscan [extra] file`.
    pub fn attach(file: &Path, extra: &[&str]) -> Loop {
        let out = Command::new("losetup")
            .args(["--find", "--show", "--partscan"])
            .args(extra)
            .arg(file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let dev = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        Loop { dev }
    }

    /// The device node of partition `n`, created with `partx -a` when the kernel did not scan
    /// the table itself.
    pub fn partition(&self, n: u32) -> PathBuf {
        let p = PathBuf::from(format!("{}p{n}", self.dev.display()));
        if !p.exists() {
            let _ = Command::new("partx").arg("-a").arg(&self.dev).status();
        }
        for _ in 0..50 {
            if p.exists() {
                return p;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        panic!("{} did not appear", p.display());
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.dev).status();
    }
}
