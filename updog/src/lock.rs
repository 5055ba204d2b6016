//! The update lock: one updog at a time per host (an advisory `flock` on the state directory's
//! `lock` file, released by the kernel when the process exits, even on kill -9).

use crate::error::{self, Result};
use crate::fsutil;
use snafu::ResultExt;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// A held lock; released on drop.
#[derive(Debug)]
pub struct UpdateLock {
    file: File,
    path: PathBuf,
}

impl UpdateLock {
    /// Takes the lock without waiting; fails with [`error::Error::LockHeld`] if another process
    /// holds it. The lock's directory is created (or checked) as a state directory and the file
    /// is opened without following a link (a linked lock file is refused, its target untouched).
    pub fn acquire(path: &Path) -> Result<UpdateLock> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            fsutil::ensure_state_dir(dir, dir)?;
        }
        let mut file = fsutil::open_state_file(path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder = text
                    .trim()
                    .parse::<u32>()
                    .map(|pid| format!(" by pid {pid}"))
                    .unwrap_or_default();
                return error::LockHeldSnafu { path, holder }.fail();
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).context(error::LockOpenSnafu { path });
            }
        }
        // Record who holds it (informational only; the flock is the lock).
        let _ = file.set_len(0);
        let _ = file.seek(SeekFrom::Start(0));
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(UpdateLock {
            file,
            path: path.to_path_buf(),
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for UpdateLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
mod test {
    use super::*;

    #[test]
    fn second_holder_is_refused_with_pid() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/lock");
        let first = UpdateLock::acquire(&path).unwrap();
        let err = UpdateLock::acquire(&path).unwrap_err();
        assert_eq!(err.exit_code(), crate::ExitStatus::LockHeld);
        assert!(
            err.to_string()
                .contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        UpdateLock::acquire(&path).unwrap();
    }

    #[test]
    fn linked_lock_file_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::os::unix::fs::symlink(&victim, state.join("lock")).unwrap();
        let err = UpdateLock::acquire(&state.join("lock")).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
