//! Concurrent writers are serialised by the lock on the disk; a writer that cannot get it in
//! time fails with a clear error.

mod common;

use common::*;
use signpost::{Access, Disk, Error, SetName, Signpost};
use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn second_writer_fails_clearly_after_bounded_wait() {
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    let holder = Disk::open(&path).unwrap();
    let start = Instant::now();
    let err = Disk::open_with(
        &path,
        Access::ReadWrite {
            lock_wait: Duration::from_millis(300),
        },
    )
    .unwrap_err();
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(matches!(err, Error::DiskLocked { .. }), "{err:?}");
    let text = err.to_string();
    let me = std::process::id();
    assert!(
        text.contains("is locked by another signpost/updog")
            && text.contains(&format!("(pid {me}?)")),
        "{text}"
    );
    // Readers are not blocked.
    assert_eq!(
        Disk::open_read_only(&path)
            .unwrap()
            .flags(SetName::A)
            .unwrap()
            .priority,
        1
    );
    // The CLI: exit code 5, error and hint.
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .arg("--disk")
        .arg(&path)
        .args(["--active", "a", "--lock-timeout", "0.2", "clear-inactive"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("error: disk ")
            && stderr.contains("is locked by another signpost/updog"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: another update"), "{stderr}");
    drop(holder);
    Disk::open_with(
        &path,
        Access::ReadWrite {
            lock_wait: Duration::ZERO,
        },
    )
    .unwrap();
}

#[test]
fn waiting_writer_proceeds_when_lock_is_released() {
    let dir = test_support::tempdir();
    let path = native_image(dir.path(), Sets::Dual, 512);
    let mut first = Signpost::new(Disk::open(&path).unwrap(), SetName::A).unwrap();
    let p2 = path.clone();
    let second = std::thread::spawn(move || {
        let disk = Disk::open_with(
            &p2,
            Access::ReadWrite {
                lock_wait: Duration::from_secs(20),
            },
        )
        .unwrap();
        let mut sp = Signpost::new(disk, SetName::A).unwrap();
        // It must see the first writer's change: it read the table after taking the lock.
        assert!(sp.state().ever_booted);
        sp.mark_inactive_valid().unwrap();
        sp.state()
    });
    std::thread::sleep(Duration::from_millis(200));
    first.mark_successful_boot().unwrap();
    drop(first);
    let after = second.join().unwrap();
    assert!(after.ever_booted && after.a.successful && after.b.unwrap().tries_left == 1);
}

/// Many CLI processes changing different flags at the same time: no change is lost.
#[test]
fn concurrent_cli_processes_lose_no_update() {
    let dir = test_support::tempdir();
    let bin = env!("CARGO_BIN_EXE_signpost");
    for round in 0..5 {
        let path = native_image(dir.path(), Sets::Dual, 512);
        // Start from nothing set but A's priority (so every command has something to change).
        Disk::open(&path)
            .unwrap()
            .write_state(&signpost::DiskState {
                a: signpost::Flags {
                    priority: 1,
                    tries_left: 0,
                    successful: false,
                },
                b: Some(signpost::Flags::default()),
                ever_booted: false,
            })
            .unwrap();
        let spawn = |args: &[&str]| {
            Command::new(bin)
                .arg("--disk")
                .arg(&path)
                .args(args)
                .spawn()
                .unwrap()
        };
        let a = spawn(&["--active", "a", "mark-successful-boot"]);
        let b = spawn(&["--active", "a", "mark-inactive-valid"]);
        for mut c in [a, b] {
            assert!(c.wait().unwrap().success(), "round {round}");
        }
        let s = Disk::open_read_only(&path).unwrap().state();
        assert!(
            s.a.successful && s.ever_booted && s.b.unwrap().tries_left == 1,
            "round {round}: lost update {s:?}"
        );
    }
}
