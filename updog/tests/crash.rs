//! Crash injection: SIGKILL the real updog binary during updates, at chosen steps of its plan and
//! at random points, many times.
//!
//! Chosen steps are recognised from updog's `--json` progress lines on stderr, read line by line;
//! the kill is sent as soon as the line arrives (updog reports a step when it begins, so
//! `fetch-migrations` means "the inactive set was just cleared", `mark-valid` "the set verified",
//! `activate` "the set is marked valid"). Random kills land at a uniform time within a measured
//! update, in runs of one to three kills before a run may complete.
//!
//! After every kill:
//! - set A, the running set, is unchanged: every byte of BOOT-A, ROOT-A and HASH-A and their
//!   entries in both GPT copies (read from the raw tables, not through signpost);
//! - the bootloader rule (signpost's `boot_select`, on a copy) finds a set to boot; if it is B, B
//!   verifies (`veritysetup verify`) and holds the new boot image;
//! - what the step guarantees holds (e.g. after `image-done` for root its durable record says
//!   complete; after `activate` set B has its one try).
//!
//! Every run that completes must resume exactly what earlier runs made durable: an image whose
//! resume record says complete is not written again, a partial one restarts at its checkpoint,
//! and without a record it starts at byte 0. Then set B verifies and boots next.
//!
//! Replay: the seed is printed; `UPDOG_CRASH_SEED=<seed>`. More: `UPDOG_CRASH_ROUNDS` (rounds of
//! chosen steps, default 2) and `UPDOG_CRASH_RANDOM_KILLS` (default 24).
//!
//! Also: a second updog is refused (exit 10) by the update lock while a first one holds it (the
//! test holds it, then a real updog stopped with SIGSTOP in the middle of writing its root image).

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use test_support::http::Server;

struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    _server: Server,
    new: Release,
    host: Host,
    /// Set A as made, before any update ran.
    set_a: SetSnapshot,
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
    let set_a = SetSnapshot::take(&host.disk, SetName::A);
    World {
        _dir: dir,
        dir: path,
        _server: server,
        new,
        host,
        set_a,
    }
}

use signpost::SetName;

// ------------------------------------------------------------------------------------------------
// Set A, from the raw GPT

const SECTOR: u64 = 512;

/// Byte offsets of the partition entry arrays of both GPT copies.
struct GptTables {
    primary_entries: u64,
    backup_entries: u64,
    entry_size: u64,
}

fn read_at(f: &std::fs::File, at: u64, len: u64) -> Vec<u8> {
    let mut v = vec![0; len as usize];
    f.read_exact_at(&mut v, at)
        .unwrap_or_else(|e| panic!("read {len} bytes at {at}: {e}"));
    v
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

impl GptTables {
    fn read(f: &std::fs::File) -> GptTables {
        let primary = read_at(f, SECTOR, SECTOR);
        assert_eq!(&primary[..8], b"EFI PART", "no primary GPT header");
        let backup_lba = u64_at(&primary, 32);
        let backup = read_at(f, backup_lba * SECTOR, SECTOR);
        assert_eq!(&backup[..8], b"EFI PART", "no backup GPT header");
        let entry_size = u64::from(u32::from_le_bytes(primary[84..88].try_into().unwrap()));
        GptTables {
            primary_entries: u64_at(&primary, 72) * SECTOR,
            backup_entries: u64_at(&backup, 72) * SECTOR,
            entry_size,
        }
    }
}

/// One set as the bootloader sees it: the raw GPT entries of its three partitions in both table
/// copies, and every byte of the three partitions.
#[derive(PartialEq, Eq)]
struct SetSnapshot {
    parts: Vec<PartSnapshot>,
}

#[derive(PartialEq, Eq)]
struct PartSnapshot {
    label: &'static str,
    primary_entry: Vec<u8>,
    backup_entry: Vec<u8>,
    bytes: Vec<u8>,
}

impl SetSnapshot {
    fn take(disk: &Path, set: SetName) -> SetSnapshot {
        let numbers = match set {
            SetName::A => [(BOOT_A, "BOOT-A"), (ROOT_A, "ROOT-A"), (HASH_A, "HASH-A")],
            SetName::B => [(BOOT_B, "BOOT-B"), (ROOT_B, "ROOT-B"), (HASH_B, "HASH-B")],
        };
        let f = std::fs::File::open(disk).unwrap();
        let gpt = GptTables::read(&f);
        let parts = numbers
            .iter()
            .map(|&(n, label)| {
                let at = u64::from(n - 1) * gpt.entry_size;
                let primary_entry = read_at(&f, gpt.primary_entries + at, gpt.entry_size);
                let backup_entry = read_at(&f, gpt.backup_entries + at, gpt.entry_size);
                let (first, last) = (u64_at(&primary_entry, 32), u64_at(&primary_entry, 40));
                assert!(first > 0 && last >= first, "{label}: empty entry");
                let bytes = read_at(&f, first * SECTOR, (last - first + 1) * SECTOR);
                PartSnapshot {
                    label,
                    primary_entry,
                    backup_entry,
                    bytes,
                }
            })
            .collect();
        SetSnapshot { parts }
    }

    /// Panics naming the first difference.
    fn assert_same(&self, now: &SetSnapshot, ctx: &str) {
        for (a, b) in self.parts.iter().zip(&now.parts) {
            assert!(
                a.primary_entry == b.primary_entry,
                "{ctx}: {}'s entry in the primary GPT changed",
                a.label
            );
            assert!(
                a.backup_entry == b.backup_entry,
                "{ctx}: {}'s entry in the backup GPT changed",
                a.label
            );
            if a.bytes != b.bytes {
                let at = a.bytes.iter().zip(&b.bytes).position(|(x, y)| x != y);
                panic!(
                    "{ctx}: {} changed (first different byte: {at:?}; length {} -> {})",
                    a.label,
                    a.bytes.len(),
                    b.bytes.len()
                );
            }
        }
    }
}

// ------------------------------------------------------------------------------------------------
// Progress events and resume records

/// The JSON progress events among updog's stderr lines (log lines are skipped).
fn events(stderr: &str) -> Vec<Value> {
    stderr.lines().filter_map(event).collect()
}

fn event(line: &str) -> Option<Value> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let v: Value = serde_json::from_str(line).ok()?;
    v.get("event").is_some().then_some(v)
}

fn is_step(e: &Value, step: &str) -> bool {
    e["event"] == "step" && e["step"] == step
}

fn is_image(e: &Value, event: &str, image: &str) -> bool {
    e["event"] == event && e["image"] == image
}

/// A short name for where an event leaves the plan (to report where kills landed).
fn place(e: Option<&Value>) -> String {
    match e {
        None => "before any event".to_owned(),
        Some(e) if e["event"] == "step" => format!("step {}", e["step"].as_str().unwrap_or("?")),
        Some(e) => format!(
            "{} {}",
            e["event"].as_str().unwrap_or("?"),
            e["image"].as_str().unwrap_or("")
        ),
    }
}

const IMAGES: [&str; 3] = ["root", "boot", "hash"];

/// What updog's durable resume record says about one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Record {
    /// No record: the image starts at byte 0.
    None,
    /// A checkpoint at this compressed offset.
    Partial(u64),
    /// Written, flushed and its hash confirmed.
    Complete,
}

fn resume_dir(w: &World) -> PathBuf {
    updog::config::HostPaths::new(&w.host.root).resume_dir()
}

fn records(w: &World) -> BTreeMap<&'static str, Record> {
    let dir = resume_dir(w);
    IMAGES
        .iter()
        .map(|&image| {
            let path = dir.join(format!("{image}.json"));
            let record = match std::fs::read(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Record::None,
                Err(e) => panic!("{}: {e}", path.display()),
                Ok(bytes) => {
                    // Records are replaced atomically: a torn one is a defect.
                    let v: Value = serde_json::from_slice(&bytes)
                        .unwrap_or_else(|e| panic!("{}: unreadable record: {e}", path.display()));
                    if v["complete"] == true {
                        Record::Complete
                    } else {
                        Record::Partial(v["compressed_offset"].as_u64().unwrap())
                    }
                }
            };
            (image, record)
        })
        .collect()
}

// ------------------------------------------------------------------------------------------------
// Kills

/// Chosen points of the update plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    /// `step: fetch-migrations`: the inactive set was just cleared.
    AfterClearInactive,
    /// After `image-start` for root, as soon as a root checkpoint is durable.
    MidRootStream,
    /// `image-done` for root: root written, flushed, its complete record durable.
    AfterRootFsync,
    /// `step: verify`: every image written, nothing verified yet.
    BeforeVerify,
    /// `step: mark-valid`: the set verified.
    AfterVerify,
    /// `step: activate`: the set has its one try, not yet next to boot.
    AfterMarkValid,
    /// `step: activate` and then 0–1 ms: while the GPT is being rewritten, or just after.
    DuringActivation,
}

impl Point {
    const ALL: [Point; 7] = [
        Point::AfterClearInactive,
        Point::MidRootStream,
        Point::AfterRootFsync,
        Point::BeforeVerify,
        Point::AfterVerify,
        Point::AfterMarkValid,
        Point::DuringActivation,
    ];

    fn triggered_by(self, e: &Value) -> bool {
        match self {
            Point::AfterClearInactive => is_step(e, "fetch-migrations"),
            Point::MidRootStream => is_image(e, "image-start", "root"),
            Point::AfterRootFsync => is_image(e, "image-done", "root"),
            Point::BeforeVerify => is_step(e, "verify"),
            Point::AfterVerify => is_step(e, "mark-valid"),
            Point::AfterMarkValid | Point::DuringActivation => is_step(e, "activate"),
        }
    }

    /// What the step guarantees about the disk and the records, checked right after the kill.
    fn check(self, w: &World, ctx: &str) {
        let recs = records(w);
        let b = w.host.flags(SetName::B);
        match self {
            Point::AfterClearInactive => {
                assert!(
                    b.priority == 0 && b.tries_left == 0 && !b.successful,
                    "{ctx}: set B not cleared: {b:?}"
                );
                assert_eq!(w.host.next_boot(), Some(SetName::A), "{ctx}");
            }
            Point::MidRootStream => assert!(
                matches!(recs["root"], Record::Partial(n) if n > 0)
                    || recs["root"] == Record::Complete,
                "{ctx}: no root checkpoint: {recs:?}"
            ),
            Point::AfterRootFsync => {
                assert_eq!(recs["root"], Record::Complete, "{ctx}");
                assert_eq!(w.host.next_boot(), Some(SetName::A), "{ctx}");
            }
            Point::BeforeVerify | Point::AfterVerify => {
                // Records go only after activation (a loaded machine may let the run get that
                // far before the kill lands): complete records, or B activated.
                let complete = recs.values().all(|r| *r == Record::Complete);
                assert!(
                    complete
                        || (recs
                            .values()
                            .all(|r| matches!(r, Record::Complete | Record::None))
                            && b.priority == 2
                            && b.tries_left == 1),
                    "{ctx}: records {recs:?}, set B {b:?}"
                );
            }
            Point::AfterMarkValid | Point::DuringActivation => {
                assert_eq!(b.tries_left, 1, "{ctx}: B not marked valid: {b:?}");
            }
        }
    }
}

/// When to kill one run.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// When the point's event arrives, after `extra` more.
    At(Point, Duration),
    /// This long after the start.
    After(Duration),
}

struct Run {
    status: ExitStatus,
    stderr: String,
}

impl Run {
    fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }
    fn events(&self) -> Vec<Value> {
        events(&self.stderr)
    }
}

fn spawn_update(w: &World) -> Child {
    // Every run exercises the whole write path: without the status file a set staged by an
    // earlier run is not taken as already staged.
    let _ = std::fs::remove_file(w.host.root.join("var/lib/updog/status.json"));
    w.host
        .command(&["--json", "update"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Reads the rest of a child's stderr on a thread.
fn drain(stderr: ChildStderr) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(stderr).read_to_string(&mut s);
        s
    })
}

/// Waits (up to 20 s, while the child runs) for a partial root record with a checkpoint.
fn wait_for_root_checkpoint(w: &World, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
        if matches!(records(w)["root"], Record::Partial(n) if n > 0) {
            return;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// One `updog --json update`, killed (SIGKILL) as `kill` says unless it ends first.
fn run_killed(w: &World, kill: Kill) -> Run {
    let mut child = spawn_update(w);
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    match kill {
        Kill::After(delay) => {
            let reader = drain(stderr);
            let deadline = Instant::now() + delay;
            while child.try_wait().unwrap().is_none() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(left.min(Duration::from_micros(300)));
            }
            let status = child.wait().unwrap();
            seen = reader.join().unwrap();
            Run {
                status,
                stderr: seen,
            }
        }
        Kill::At(point, extra) => {
            let mut lines = BufReader::new(stderr);
            let mut line = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).unwrap() == 0 {
                    let status = child.wait().unwrap();
                    panic!("{point:?}: the run ended ({status}) before its event:\n{seen}");
                }
                seen.push_str(&line);
                if event(&line).is_some_and(|e| point.triggered_by(&e)) {
                    break;
                }
            }
            if point == Point::MidRootStream {
                wait_for_root_checkpoint(w, &mut child);
            }
            if !extra.is_zero() {
                std::thread::sleep(extra);
            }
            let _ = child.kill();
            let status = child.wait().unwrap();
            let _ = lines.read_to_string(&mut seen);
            Run {
                status,
                stderr: seen,
            }
        }
    }
}

/// One `updog --json update` left to finish.
fn run_to_end(w: &World) -> Run {
    run_killed(w, Kill::After(Duration::from_secs(600)))
}

/// Invariants after every run, killed or not.
fn check_disk(w: &World, ctx: &str) -> SetName {
    w.set_a
        .assert_same(&SetSnapshot::take(&w.host.disk, SetName::A), ctx);
    match w.host.next_boot() {
        Some(SetName::A) => SetName::A,
        Some(SetName::B) => {
            assert!(
                veritysetup_verify_b(&w.host.disk, &w.new, &w.dir),
                "{ctx}: B boots next but does not verify"
            );
            let boot = std::fs::read(&w.new.boot_img).unwrap();
            assert!(
                read_partition(&w.host.disk, BOOT_B, boot.len() as u64) == boot,
                "{ctx}: B boots next but BOOT-B is not the new boot image"
            );
            SetName::B
        }
        None => panic!("{ctx}: nothing bootable"),
    }
}

/// A run that completed: it resumed exactly what `before` (the records when it started) said,
/// and set B verifies and boots next.
fn check_completed(w: &World, run: &Run, before: &BTreeMap<&str, Record>, ctx: &str) {
    assert_eq!(run.status.code(), Some(0), "{ctx}: {}", run.stderr);
    let events = run.events();
    for (image, record) in before {
        let start = events.iter().find(|e| is_image(e, "image-start", image));
        let done = events.iter().any(|e| is_image(e, "image-done", image));
        assert!(done, "{ctx}: no image-done for {image}:\n{}", run.stderr);
        match (record, start) {
            (Record::Complete, None) => {}
            (Record::Complete, Some(_)) => {
                panic!(
                    "{ctx}: {image} was complete on disk but written again:\n{}",
                    run.stderr
                )
            }
            (Record::Partial(at), Some(s)) => assert_eq!(
                s["resumed_at"].as_u64(),
                Some(*at),
                "{ctx}: {image} did not resume at its checkpoint:\n{}",
                run.stderr
            ),
            (Record::None, Some(s)) => assert_eq!(
                s["resumed_at"].as_u64(),
                Some(0),
                "{ctx}: {image} resumed without a record:\n{}",
                run.stderr
            ),
            (_, None) => panic!("{ctx}: {image} never started:\n{}", run.stderr),
        }
    }
    assert_eq!(
        check_disk(w, ctx),
        SetName::B,
        "{ctx}: B does not boot next"
    );
    assert!(
        records(w).values().all(|r| *r == Record::None),
        "{ctx}: records left after completion"
    );
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
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn env_count(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

#[test]
fn kill_9_at_chosen_steps_and_at_random_never_breaks_the_running_set() {
    if !tools() {
        return;
    }
    let w = world();
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
    let started = Instant::now();

    // A complete update first: its duration spreads the random kills, and the chosen kills start
    // from a disk whose set B is a bootable earlier update (so clear-inactive has work to do).
    let t0 = Instant::now();
    let before = records(&w);
    let first = run_to_end(&w);
    let full = t0.elapsed();
    check_completed(&w, &first, &before, &format!("seed {seed}: first update"));

    // Chosen steps.
    let rounds = env_count("UPDOG_CRASH_ROUNDS", 2);
    let mut landed: BTreeMap<String, u32> = BTreeMap::new();
    let (mut chosen, mut late, mut mid_root_partial) = (0, 0, 0);
    for round in 0..rounds {
        for point in Point::ALL {
            // The last steps leave the run little to do: on a loaded machine it may finish
            // before the kill lands. Such a run is checked as a completion and the kill retried.
            let mut attempt = 0;
            let ctx = loop {
                attempt += 1;
                let extra = match point {
                    Point::DuringActivation => Duration::from_micros(rng.below(1000)),
                    _ => Duration::ZERO,
                };
                let ctx = format!(
                    "seed {seed}: round {round}, kill at {point:?} (+{extra:?}, attempt {attempt})"
                );
                let before = records(&w);
                let run = run_killed(&w, Kill::At(point, extra));
                if run.killed() {
                    break ctx;
                }
                assert!(
                    attempt < 5,
                    "{ctx}: the run finished before the kill landed, 5 times:\n{}",
                    run.stderr
                );
                check_completed(&w, &run, &before, &ctx);
                late += 1;
            };
            chosen += 1;
            check_disk(&w, &ctx);
            point.check(&w, &ctx);
            if point == Point::MidRootStream && matches!(records(&w)["root"], Record::Partial(_)) {
                mid_root_partial += 1;
            }
            let before = records(&w);
            let next = run_to_end(&w);
            check_completed(&w, &next, &before, &format!("{ctx}, next run"));
        }
    }

    // Random kills: one to three in a row, then a run that may complete.
    let random_kills = env_count("UPDOG_CRASH_RANDOM_KILLS", 24);
    let window = full.as_micros() as u64 * 6 / 5;
    let (mut kills, mut completions, mut resumed) = (0, 0, 0);
    while kills < random_kills {
        let in_a_row = 1 + rng.below(3);
        for _ in 0..in_a_row {
            let delay = Duration::from_micros(rng.below(window));
            let ctx = format!("seed {seed}: random kill {kills} after {delay:?}");
            let before = records(&w);
            let run = run_killed(&w, Kill::After(delay));
            if run.killed() {
                kills += 1;
                let events = run.events();
                *landed.entry(place(events.last())).or_default() += 1;
                check_disk(&w, &ctx);
            } else {
                completions += 1;
                check_completed(&w, &run, &before, &ctx);
            }
        }
        let before = records(&w);
        if before.values().any(|r| *r != Record::None) {
            resumed += 1;
        }
        let run = run_to_end(&w);
        check_completed(
            &w,
            &run,
            &before,
            &format!("seed {seed}: after random kills"),
        );
        completions += 1;
    }
    assert!(
        mid_root_partial > 0 || rounds == 0,
        "seed {seed}: no kill at MidRootStream landed before the root image was complete"
    );
    eprintln!(
        "{chosen} kills at chosen steps ({late} runs finished before the kill and were retried, \
         {mid_root_partial} mid-root kills left a partial root), {kills} random kills (window {:?}), {completions} \
         completed runs, {resumed} of them resumed earlier work, {:?}",
        Duration::from_micros(window),
        started.elapsed()
    );
    eprintln!("random kills landed after: {landed:?}");
}

/// Sends a signal with kill(1).
fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{sig} {pid}");
}

/// Waits (up to 10 s) until every thread of `pid` is stopped: a stop signal reaches the threads
/// one after another.
fn wait_until_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut states = Vec::new();
    while Instant::now() < deadline {
        states = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("stat")).ok())
            .filter_map(|stat| stat.rsplit_once(") ")?.1.chars().next())
            .collect::<Vec<char>>();
        if !states.is_empty() && states.iter().all(|c| *c == 'T' || *c == 't') {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("pid {pid} not stopped: thread states {states:?}");
}

/// Kills the child if the test fails while it is stopped.
struct Reap(Child);
impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_second_updog_is_refused_while_one_runs() {
    if !tools() {
        return;
    }
    let w = world();
    let lock_path = updog::config::HostPaths::new(&w.host.root).lock_file();
    // This test process holds the lock, as a running updog would.
    let lock = updog::lock::UpdateLock::acquire(&lock_path).unwrap();
    let out = w.host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(10), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("another updog is running")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    assert_eq!(w.host.flags(SetName::B).priority, 0);
    drop(lock);

    // Two real updogs: the first is stopped (SIGSTOP) in the middle of writing the root image,
    // holding the lock; the second must be refused and must not touch the disk.
    let mut first = Reap(spawn_update(&w));
    let pid = first.0.id();
    let mut lines = BufReader::new(first.0.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            lines.read_line(&mut line).unwrap() > 0,
            "first updog ended early:\n{seen}"
        );
        seen.push_str(&line);
        if event(&line).is_some_and(|e| is_image(&e, "image-start", "root")) {
            break;
        }
    }
    signal(pid, "STOP");
    wait_until_stopped(pid);
    let disk_before = std::fs::read(&w.host.disk).unwrap();
    let second = w.host.updog(&["update"]);
    assert_eq!(
        second.status.code(),
        Some(10),
        "the second updog was not refused while the first holds the lock: {}",
        show(&second)
    );
    // Refused by the update lock itself, not only by signpost's lock on the disk (which would
    // also refuse it, with "disk … is locked", while the first has the disk open).
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("another updog is running") && stderr.contains(&format!("pid {pid}")),
        "{stderr}"
    );
    assert!(
        std::fs::read(&w.host.disk).unwrap() == disk_before,
        "the refused updog changed the disk"
    );
    signal(pid, "CONT");
    let _ = lines.read_to_string(&mut seen);
    let status = first.0.wait().unwrap();
    assert_eq!(status.code(), Some(0), "first updog:\n{seen}");
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(w.host.next_boot(), Some(SetName::B));
}
