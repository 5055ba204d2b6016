//! Crash injection: kill -9 the real updog binary at random points of an update, many times.
//! After every kill the disk must still boot the old set (checked with signpost's boot_select, the
//! bootloader rule, on a copy) unless the new set is complete and verifies; the running set is
//! never modified; the next run resumes instead of starting over; a final run completes.
//! Also: two updogs at once.

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use std::process::Stdio;
use std::time::{Duration, Instant};
use test_support::http::Server;

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    repo: Repo,
    _server: Server,
    new: Release,
    host: Host,
}

fn world() -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 2 * MIB, &["-B4"]);
    let new = make_release(&path, "1.1.0", 6 * MIB, &["-B4"]);
    repo.publish(
        &manifest(&[&old, &new]),
        &[old.target_files(), new.target_files()].concat(),
        RoleVersions::all(1),
    );
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 8, "");
    World {
        _dir: dir,
        dir: path,
        repo,
        _server: server,
        new,
        host,
    }
}

/// xorshift; the seed is printed so a failure can be replayed with UPDOG_CRASH_SEED.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn kill_9_at_random_points_never_breaks_the_running_set() {
    if !tools() {
        return;
    }
    let w = world();
    let pristine = w.dir.join("pristine.img");
    std::fs::copy(&w.host.disk, &pristine).unwrap();
    let a_root = read_partition(&w.host.disk, ROOT_A, 2 * MIB);
    let new_boot = std::fs::read(&w.new.boot_img).unwrap();
    let seed = std::env::var("UPDOG_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("crash test seed: {seed}");
    let mut rng = Rng(seed);
    let mut max_delay = Duration::from_millis(400);
    let (mut kills, mut completions, mut resumed, mut b_after_kill) = (0, 0, 0, 0);
    let started = Instant::now();
    while kills < 55 {
        let mut child = w
            .host
            .command(&["update"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = Instant::now();
        let delay = Duration::from_micros(rng.next() % max_delay.as_micros() as u64);
        std::thread::sleep(delay);
        let killed = match child.try_wait().unwrap() {
            None => {
                child.kill().unwrap(); // SIGKILL
                true
            }
            Some(_) => false,
        };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("resuming root image")
            || stderr.contains("already written by an earlier run")
        {
            resumed += 1;
        }
        if killed {
            kills += 1;
        } else {
            assert_eq!(out.status.code(), Some(0), "seed {seed}: {stderr}");
            completions += 1;
            // Kill earlier next time.
            max_delay = (t0.elapsed() * 9 / 10).max(Duration::from_millis(20));
        }
        // Invariants after every run.
        assert_eq!(
            read_partition(&w.host.disk, ROOT_A, 2 * MIB),
            a_root,
            "seed {seed}: running set modified"
        );
        match w.host.next_boot() {
            Some(signpost::SetName::A) => {}
            Some(signpost::SetName::B) => {
                // Only a complete, verified set may ever be next.
                assert!(
                    veritysetup_verify_b(&w.host.disk, &w.new, &w.dir),
                    "seed {seed}: B next but broken"
                );
                assert_eq!(
                    read_partition(&w.host.disk, BOOT_B, new_boot.len() as u64),
                    new_boot
                );
                if killed {
                    b_after_kill += 1;
                }
                // Start over from the old state to keep injecting crashes into updates.
                std::fs::copy(&pristine, &w.host.disk).unwrap();
                let _ = std::fs::remove_dir_all(w.host.root.join("var/lib/updog/resume"));
            }
            None => panic!("seed {seed}: nothing bootable after a kill"),
        }
    }
    eprintln!(
        "{kills} kills, {completions} completed runs, {resumed} runs resumed earlier work, {b_after_kill} kills after activation, {:?}",
        started.elapsed()
    );
    assert!(resumed > 0, "seed {seed}: no run ever resumed");
    // The final run completes.
    let out = w.host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
    let _ = &w.repo;
}

#[test]
fn a_second_updog_is_refused_while_one_runs() {
    if !tools() {
        return;
    }
    let w = world();
    // Deterministic: this test process holds the lock, as a running updog would.
    let lock = updog::lock::UpdateLock::acquire(&w.host.root.join("var/lib/updog/lock")).unwrap();
    let out = w.host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(10), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another updog is running")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    assert_eq!(w.host.flags(signpost::SetName::B).priority, 0);
    drop(lock);
    // Two real updogs started together: one updates, the other is refused or finds it done.
    let a = w
        .host
        .command(&["update"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let b = w
        .host
        .command(&["update"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (oa, ob) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let codes = [oa.status.code(), ob.status.code()];
    assert!(codes.contains(&Some(0)), "{}\n{}", show(&oa), show(&ob));
    assert!(
        codes.iter().all(|c| *c == Some(0) || *c == Some(10)),
        "{}\n{}",
        show(&oa),
        show(&ob)
    );
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
}
