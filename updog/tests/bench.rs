//! Benchmark (ignored by default; prints, never asserts timings):
//!
//! ```text
//! cargo test --release -p updog --test bench -- --ignored --nocapture
//! ```
//!
//! Update of a 1 GiB root image (real files from /usr, `lz4 -9`) from loopback HTTP, with
//! throughput, CPU time and the peak RSS of the updog process (getrusage of the child, via
//! python3), next to the standard tools in the same run: `curl` download, `sha256sum`, `lz4 -d`,
//! `dd conv=fsync`; and a plain `dd conv=fsync` of the decompressed bytes. A 256 MiB run shows whether peak RSS
//! stays flat as the image grows. Each method writes into its own fresh sparse copy of the disk.
//!
//! Two targets: the disk image file, and (as root) a loop device over it, whose partitions the
//! standard tools write as devices (`losetup -P`, `partx -a`); there the plain dd is
//! `oflag=direct conv=fsync` and a `dd iflag=direct` read of the written bytes is timed too. Without
//! root the loop-device rows are skipped and the reason printed. Figures are medians of
//! `UPDOG_BENCH_ROUNDS` (default 3) rounds, the methods interleaved. `UPDOG_BENCH_BASELINE_EXE`
//! names another updog build to time on the same targets (e.g. the previous commit's).
//! `UPDOG_BENCH_TARGETS=file|loop` and `UPDOG_BENCH_METHODS` (comma list of updog, pipeline, dd,
//! small) narrow a run for profiling (e.g. a wrapper script under `perf record` as the baseline
//! executable with `UPDOG_BENCH_METHODS=none`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use test_support::http::Server;
use test_support::loopdev::{Loop, is_root};

/// A root image of `len` bytes cut from a tar of /usr (real files), cached between runs.
fn real_root(cache: &Path, len: u64) -> PathBuf {
    let path = cache.join(format!("usr-{}.img", len >> 20));
    if !path.exists() {
        let tmp = path.with_extension("tmp");
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "tar cf - -C / usr/lib usr/bin usr/share 2>/dev/null | head -c {len} > '{}'",
                tmp.display()
            ))
            .status()
            .unwrap();
        assert!(status.success());
        let f = std::fs::OpenOptions::new().write(true).open(&tmp).unwrap();
        f.set_len(len).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

/// Runs `cmd` under python3's getrusage: (exit ok, seconds, peak RSS of the child in KiB); the
/// child's CPU seconds (user + system) go to `CPU_SECONDS`.
fn measured(cmd: &[&str]) -> (bool, f64, u64) {
    let script = "import resource,subprocess,sys,time\n\
                  t=time.monotonic()\n\
                  r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL)\n\
                  e=time.monotonic()-t\n\
                  u=resource.getrusage(resource.RUSAGE_CHILDREN)\n\
                  print(r.returncode, e, u.ru_maxrss, u.ru_utime+u.ru_stime)";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(cmd)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut it = text.split_whitespace();
    let rc: i32 = it.next().unwrap().parse().unwrap();
    let secs: f64 = it.next().unwrap().parse().unwrap();
    let rss: u64 = it.next().unwrap().parse().unwrap();
    let cpu: f64 = it.next().unwrap().parse().unwrap();
    CPU_SECONDS.with(|c| c.set(cpu));
    // updog's log (step timings, peak RSS per step).
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    (rc == 0, secs, rss)
}

thread_local! {
    /// CPU seconds of the last [`measured`] command.
    static CPU_SECONDS: std::cell::Cell<f64> = const { std::cell::Cell::new(0.0) };
}

fn sync() {
    let _ = Command::new("sync").status();
}

/// The 1.1.0 release with a real-file root of `root_len` bytes, built once and kept in `cache`.
fn cached_release(cache: &Path, root_len: u64) -> Release {
    let dir = cache.join(format!("release-{}", root_len >> 20));
    let info = dir.join("release.json");
    if let Ok(text) = std::fs::read_to_string(&info) {
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        let rdir = PathBuf::from(s("dir"));
        return Release {
            version: "1.1.0".parse().unwrap(),
            root_img: rdir.join("root.ext4"),
            boot_img: rdir.join("boot.ext4"),
            hash_img: rdir.join("root.verity"),
            dir: rdir,
            root_name: s("root_name"),
            boot_name: s("boot_name"),
            hash_name: s("hash_name"),
            root_hash: s("root_hash"),
            salt: s("salt"),
        };
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("root-src.img");
    std::fs::copy(real_root(cache, root_len), &copy).unwrap();
    let t = Instant::now();
    let r = make_release_from(&dir, "1.1.0", &copy, &[]);
    eprintln!(
        "prepared {} MiB release (veritysetup + lz4 -9) in {:.1?}",
        root_len >> 20,
        t.elapsed()
    );
    let v = serde_json::json!({
        "dir": r.dir, "root_name": r.root_name, "boot_name": r.boot_name, "hash_name": r.hash_name,
        "root_hash": r.root_hash, "salt": r.salt,
    });
    std::fs::write(&info, v.to_string()).unwrap();
    r
}

struct Bench {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    _server: Server,
    url: String,
    new: Release,
    host: Host,
    pristine: PathBuf,
    root_len: u64,
}

fn setup(cache: &Path, root_len: u64) -> Bench {
    let dir = tempfile::Builder::new()
        .prefix("updog-bench-")
        .tempdir_in(cache)
        .unwrap();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 2 * MIB, &[]);
    let new = cached_release(cache, root_len);
    repo.publish(
        &manifest(&[&old, &new]),
        &[old.target_files(), new.target_files()].concat(),
        RoleVersions::all(1),
    );
    let server = Server::serve_dir(&repo.dir);
    let url = server.url();
    let host = Host::new(
        &path,
        &repo,
        &url,
        &old,
        (root_len >> 20) + 16,
        "checkpoint_mib = 32\n",
    );
    let pristine = path.join("pristine.img");
    assert!(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&host.disk)
            .arg(&pristine)
            .status()
            .unwrap()
            .success()
    );
    Bench {
        _dir: dir,
        dir: path,
        _server: server,
        url,
        new,
        host,
        pristine,
        root_len,
    }
}

/// Where one method writes: a fresh sparse copy of the pristine disk, and on the loop-device
/// target a loop device over that copy (its partitions as devices, via `partx`).
struct Target {
    file: PathBuf,
    lo: Option<Loop>,
    root_off: u64,
}

impl Target {
    /// The disk updog is given.
    fn disk(&self) -> PathBuf {
        self.lo
            .as_ref()
            .map_or(self.file.clone(), |l| l.dev.clone())
    }

    /// Where the root image goes for dd: (path, byte offset).
    fn root_dest(&self) -> (PathBuf, u64) {
        match &self.lo {
            Some(l) => (l.partition(ROOT_B), 0),
            None => (self.file.clone(), self.root_off),
        }
    }
}

fn fresh_target(b: &Bench, name: &str, on_loop: bool) -> Target {
    let file = b.dir.join(name);
    let _ = std::fs::remove_file(&file);
    assert!(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&b.pristine)
            .arg(&file)
            .status()
            .unwrap()
            .success()
    );
    let (root_off, _) = partition(&file, ROOT_B);
    sync();
    let lo = on_loop.then(|| {
        let l = Loop::attach(&file, &[]);
        l.partition(ROOT_B);
        l
    });
    Target { file, lo, root_off }
}

/// One updog update (fresh disk and state), checked with `veritysetup verify` afterwards.
/// Returns (wall seconds, peak RSS KiB, CPU seconds).
fn run_updog(b: &Bench, exe: &str, on_loop: bool) -> (f64, u64, f64) {
    let t = fresh_target(b, "disk-updog.img", on_loop);
    let _ = std::fs::remove_dir_all(b.host.root.join("var/lib/updog"));
    sync();
    let root = b.host.root.display().to_string();
    let disk = t.disk().display().to_string();
    let (ok, secs, rss) = measured(&[
        exe,
        "--host-root",
        &root,
        "--disk",
        &disk,
        "--active",
        "a",
        "update-image",
        "--now",
    ]);
    assert!(ok, "updog failed");
    let verified = match &t.lo {
        Some(l) => Command::new("veritysetup")
            .arg("verify")
            .arg(l.partition(ROOT_B))
            .arg(l.partition(HASH_B))
            .arg(&b.new.root_hash)
            .status()
            .unwrap()
            .success(),
        None => veritysetup_verify_b(&t.file, &b.new, &b.dir),
    };
    assert!(verified, "written set does not verify");
    eprintln!(
        "{exe}: {secs:.2} s, {:.2} CPU s, peak RSS {rss} KiB",
        CPU_SECONDS.with(std::cell::Cell::get)
    );
    (secs, rss, CPU_SECONDS.with(std::cell::Cell::get))
}

fn sh(script: &str) -> f64 {
    let t = Instant::now();
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .status()
            .unwrap()
            .success(),
        "{script}"
    );
    t.elapsed().as_secs_f64()
}

/// The standard tools: download, sha256sum, lz4 -d | dd with fsync into the root partition.
fn run_pipeline(b: &Bench, on_loop: bool) -> f64 {
    let t = fresh_target(b, "disk-std.img", on_loop);
    let target = b
        .dir
        .join("repo/targets")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(&b.new.root_name))
        .unwrap();
    let dl = b.dir.join("download.lz4");
    let (dest, seek) = t.root_dest();
    sh(&format!(
        "set -e; curl -sf -o '{dl}' '{url}targets/{target}'; sha256sum '{dl}' >/dev/null; \
         lz4 -d -c '{dl}' | dd of='{dest}' bs=4M seek={seek} oflag=seek_bytes conv=notrunc,fsync status=none",
        dl = dl.display(),
        url = b.url,
        dest = dest.display()
    ))
}

/// dd of the decompressed root image with fsync (`oflag=direct` on the loop device); then, on
/// the loop device, a direct read of the same bytes. Returns (write, read) seconds.
fn run_dd(b: &Bench, on_loop: bool) -> (f64, f64) {
    let t = fresh_target(b, "disk-dd.img", on_loop);
    let (dest, seek) = t.root_dest();
    let flags = if on_loop {
        "oflag=direct,seek_bytes"
    } else {
        "oflag=seek_bytes"
    };
    let write = sh(&format!(
        "dd if='{src}' of='{dest}' bs=4M seek={seek} {flags} conv=notrunc,fsync status=none",
        src = b.new.root_img.display(),
        dest = dest.display()
    ));
    let read = if on_loop {
        sh(&format!(
            "dd if='{dest}' of=/dev/null bs=4M count={n} iflag=direct status=none",
            dest = dest.display(),
            n = b.root_len.div_ceil(4 * MIB)
        ))
    } else {
        0.0
    };
    (write, read)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[derive(Default)]
struct Figures {
    updog: Vec<f64>,
    rss: Vec<f64>,
    baseline_exe: Vec<f64>,
    baseline_rss: Vec<f64>,
    cpu: Vec<f64>,
    baseline_cpu: Vec<f64>,
    pipeline: Vec<f64>,
    dd: Vec<f64>,
    read: Vec<f64>,
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_update_1gib_against_standard_tools() {
    if !tools() || !test_support::require_tool("curl") || !test_support::require_tool("python3") {
        return;
    }
    // The loop-device rows need root (losetup); otherwise they are skipped, with the reason.
    let on_loop = is_root() && test_support::find_on_path("losetup").is_some();
    if !on_loop {
        println!("loop-device rows skipped: losetup needs root (running as a normal user)");
    }
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("updog-bench");
    std::fs::create_dir_all(&cache).unwrap();
    let gib = 1024 * MIB;
    let exe = env!("CARGO_BIN_EXE_updog");
    // Another updog build to compare with (e.g. the previous commit's), if given.
    let baseline_exe = std::env::var("UPDOG_BENCH_BASELINE_EXE").ok();
    let rounds: usize = std::env::var("UPDOG_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // For profiling one part: `UPDOG_BENCH_TARGETS=file|loop` and `UPDOG_BENCH_METHODS` (a comma
    // list of updog, pipeline, dd; default all) narrow the run (the table then shows 0 for what
    // was not run).
    let only_target = std::env::var("UPDOG_BENCH_TARGETS").ok();
    let methods =
        std::env::var("UPDOG_BENCH_METHODS").unwrap_or_else(|_| "updog,pipeline,dd,small".into());
    let method = |m: &str| methods.split(',').any(|x| x == m);
    let all: &[bool] = if on_loop { &[false, true] } else { &[false] };
    let targets: Vec<bool> = all
        .iter()
        .copied()
        .filter(|l| match only_target.as_deref() {
            Some("file") => !l,
            Some("loop") => *l,
            _ => true,
        })
        .collect();

    // Flatness: the same update of a 256 MiB image.
    let small_rss: Vec<(f64, u64)> = if method("small") {
        let small = setup(&cache, 256 * MIB);
        targets
            .iter()
            .map(|l| {
                let (s, r, _) = run_updog(&small, exe, *l);
                (s, r)
            })
            .collect()
    } else {
        targets.iter().map(|_| (0.0, 0)).collect()
    };

    let b = setup(&cache, gib);
    let compressed = std::fs::metadata(b.new.dir.join(&b.new.root_name))
        .unwrap()
        .len();
    let mut figs: Vec<Figures> = targets.iter().map(|_| Figures::default()).collect();
    let targets = &targets[..];
    for round in 0..rounds {
        for (i, l) in targets.iter().enumerate() {
            eprintln!("round {round}, {}", if *l { "loop device" } else { "file" });
            let f = &mut figs[i];
            let (secs, rss, cpu) = if method("updog") {
                run_updog(&b, exe, *l)
            } else {
                (0.0, 0, 0.0)
            };
            f.updog.push(secs);
            f.rss.push(rss as f64);
            f.cpu.push(cpu);
            if let Some(base) = &baseline_exe {
                let (s, r, c) = run_updog(&b, base, *l);
                f.baseline_exe.push(s);
                f.baseline_rss.push(r as f64);
                f.baseline_cpu.push(c);
            }
            f.pipeline.push(if method("pipeline") {
                run_pipeline(&b, *l)
            } else {
                0.0
            });
            let (w, r) = if method("dd") {
                run_dd(&b, *l)
            } else {
                (0.0, 0.0)
            };
            f.dd.push(w);
            f.read.push(r);
        }
    }

    let mibs = |s: f64| b.root_len as f64 / MIB as f64 / s;
    println!();
    println!(
        "updog benchmark: {} MiB root image, lz4 -9 -> {} MiB, loopback HTTP, medians of {rounds}",
        b.root_len >> 20,
        compressed >> 20
    );
    println!(
        "{:<13} {:<58} {:>8} {:>10} {:>12}",
        "target", "method", "seconds", "MiB/s", "peak RSS"
    );
    use test_support::bench::{Better, row};
    for (i, l) in targets.iter().enumerate() {
        let f = &figs[i];
        let where_ = if *l { "loop device" } else { "disk file" };
        let up = median(f.updog.clone());
        let rss = median(f.rss.clone());
        let pipe = median(f.pipeline.clone());
        let dd = median(f.dd.clone());
        let line = |m: &str, s: f64, rss: String| {
            println!("{where_:<13} {m:<58} {s:>8.2} {:>10.0} {rss:>12}", mibs(s));
        };
        line(
            "updog update-image (TUF, stream, write, fsync, verify)",
            up,
            format!("{rss:.0} KiB"),
        );
        println!(
            "{where_:<13} {:<58} {:>8.2} CPU s",
            "  of it on the CPU (user + system)",
            median(f.cpu.clone())
        );
        if !f.baseline_exe.is_empty() {
            line(
                "updog (UPDOG_BENCH_BASELINE_EXE)",
                median(f.baseline_exe.clone()),
                format!("{:.0} KiB", median(f.baseline_rss.clone())),
            );
            println!(
                "{where_:<13} {:<58} {:>8.2} CPU s",
                "  of it on the CPU (user + system)",
                median(f.baseline_cpu.clone())
            );
        }
        line(
            "curl + sha256sum + lz4 -d | dd conv=fsync (root partition)",
            pipe,
            "-".into(),
        );
        let dd_name = if *l {
            "dd oflag=direct conv=fsync of the decompressed image"
        } else {
            "dd conv=fsync of the decompressed image"
        };
        line(dd_name, dd, "-".into());
        let (small_secs, small_kib) = small_rss[i];
        if *l {
            let read = median(f.read.clone());
            line(
                "dd iflag=direct read of the written image",
                read,
                "-".into(),
            );
            println!(
                "loop device: updog / pipeline {:.2}x faster (target >= 2); updog / (direct write \
                 + direct read) {:.2}x (target <= 1.5)",
                pipe / up,
                up / (dd + read)
            );
            row(
                "updog: 1 GiB update to a loop device (MiB/s)",
                mibs(up),
                "MiB/s",
                "curl+sha256sum+lz4 -d|dd fsync (partition)",
                mibs(pipe),
                Better::Higher,
            );
            row(
                "updog: loop device vs dd direct write + direct read (MiB/s)",
                mibs(up),
                "MiB/s",
                "dd oflag=direct + dd iflag=direct",
                mibs(dd + read),
                Better::Higher,
            );
            row(
                "updog: loop device, peak RSS 1 GiB image (KiB)",
                rss,
                "KiB",
                "target 24 MiB",
                24.0 * 1024.0,
                Better::Lower,
            );
            row(
                "updog: loop device, peak RSS 1 GiB vs 256 MiB (KiB)",
                rss,
                "KiB",
                "same at 256 MiB",
                small_kib as f64,
                Better::Lower,
            );
            if !f.baseline_exe.is_empty() {
                row(
                    "updog: loop device vs the baseline build (MiB/s)",
                    mibs(up),
                    "MiB/s",
                    "UPDOG_BENCH_BASELINE_EXE",
                    mibs(median(f.baseline_exe.clone())),
                    Better::Higher,
                );
                row(
                    "updog: loop device, CPU seconds (user + system)",
                    median(f.cpu.clone()),
                    "s",
                    "UPDOG_BENCH_BASELINE_EXE",
                    median(f.baseline_cpu.clone()),
                    Better::Lower,
                );
            }
        } else {
            row(
                "updog: 1 GiB lz4 -9 root over HTTP to disk (MiB/s)",
                mibs(up),
                "MiB/s",
                "curl+sha256sum+lz4 -d|dd fsync",
                mibs(pipe),
                Better::Higher,
            );
            row(
                "updog: 1 GiB update vs plain dd fsync (MiB/s)",
                mibs(up),
                "MiB/s",
                "dd conv=fsync (decompressed)",
                mibs(dd),
                Better::Higher,
            );
            row(
                "updog: peak RSS, 1 GiB image (KiB)",
                rss,
                "KiB",
                "target 24 MiB",
                24.0 * 1024.0,
                Better::Lower,
            );
            row(
                "updog: peak RSS, 1 GiB vs 256 MiB image (KiB)",
                rss,
                "KiB",
                "same at 256 MiB",
                small_kib as f64,
                Better::Lower,
            );
            if !f.baseline_exe.is_empty() {
                row(
                    "updog: disk file vs the baseline build (MiB/s)",
                    mibs(up),
                    "MiB/s",
                    "UPDOG_BENCH_BASELINE_EXE",
                    mibs(median(f.baseline_exe.clone())),
                    Better::Higher,
                );
            }
        }
        println!("{where_}: 256 MiB update {small_secs:.2} s, peak RSS {small_kib} KiB");
    }
}
