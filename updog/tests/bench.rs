//! Benchmark (ignored by default; prints, never asserts timings):
//!
//! ```text
//! cargo test --release -p updog --test bench -- --ignored --nocapture
//! ```
//!
//! Update of a 1 GiB root image (real files from /usr, `lz4 -9`) from loopback HTTP into a disk
//! image file, with throughput and the peak RSS of the updog process (getrusage of the child, via
//! python3), next to the standard tools in the same run: `curl` download, `sha256sum`, `lz4 -d`,
//! `dd conv=fsync`; and a plain `dd conv=fsync` of the decompressed bytes. A 256 MiB run shows
//! whether peak RSS stays flat as the image grows. Each method writes into its own fresh sparse
//! copy of the disk.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;
use test_support::http::Server;

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

/// Runs `cmd` under python3's getrusage: (exit ok, seconds, peak RSS of the child in KiB).
fn measured(cmd: &[&str]) -> (bool, f64, u64) {
    let script = "import resource,subprocess,sys,time\n\
                  t=time.monotonic()\n\
                  r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL)\n\
                  e=time.monotonic()-t\n\
                  print(r.returncode, e, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
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
    // updog's log (step timings, peak RSS per step).
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    (rc == 0, secs, rss)
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

fn fresh_disk(b: &Bench, name: &str) -> PathBuf {
    let p = b.dir.join(name);
    assert!(
        Command::new("cp")
            .arg("--sparse=always")
            .arg(&b.pristine)
            .arg(&p)
            .status()
            .unwrap()
            .success()
    );
    sync();
    p
}

fn run_updog(b: &Bench) -> (f64, u64) {
    // Fresh disk and state each time.
    std::fs::copy(&b.pristine, &b.host.disk).unwrap();
    let _ = std::fs::remove_dir_all(b.host.root.join("var/lib/updog"));
    sync();
    let exe = env!("CARGO_BIN_EXE_updog");
    let root = b.host.root.display().to_string();
    let disk = b.host.disk.display().to_string();
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
    assert!(
        veritysetup_verify_b(&b.host.disk, &b.new, &b.dir),
        "written set does not verify"
    );
    (secs, rss)
}

#[test]
#[ignore = "benchmark: run with --release -- --ignored --nocapture"]
fn bench_update_1gib_against_standard_tools() {
    if !tools() || !test_support::require_tool("curl") || !test_support::require_tool("python3") {
        return;
    }
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("updog-bench");
    std::fs::create_dir_all(&cache).unwrap();
    let gib = 1024 * MIB;

    // Flatness: the same pipeline on a 256 MiB image.
    let small = setup(&cache, 256 * MIB);
    let (small_secs, small_rss) = run_updog(&small);
    drop(small);

    let b = setup(&cache, gib);
    let compressed = std::fs::metadata(b.new.dir.join(&b.new.root_name))
        .unwrap()
        .len();
    let (up_secs, up_rss) = run_updog(&b);
    let (root_off, _) = partition(&b.host.disk, ROOT_B);

    // Standard tools: download, sha256sum, lz4 -d, dd with fsync.
    let disk2 = fresh_disk(&b, "disk-std.img");
    let target = b
        .dir
        .join("repo/targets")
        .read_dir()
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(&b.new.root_name))
        .unwrap();
    let dl = b.dir.join("download.lz4");
    let script = format!(
        "set -e; curl -sf -o '{dl}' '{url}targets/{target}'; sha256sum '{dl}' >/dev/null; \
         lz4 -d -c '{dl}' | dd of='{disk}' bs=4M seek={root_off} oflag=seek_bytes conv=notrunc,fsync status=none",
        dl = dl.display(),
        url = b.url,
        disk = disk2.display()
    );
    let t = Instant::now();
    assert!(
        Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap()
            .success()
    );
    let std_secs = t.elapsed().as_secs_f64();

    // Plain dd of the decompressed bytes.
    let disk3 = fresh_disk(&b, "disk-dd.img");
    let t = Instant::now();
    assert!(
        Command::new("dd")
            .arg(format!("if={}", b.new.root_img.display()))
            .arg(format!("of={}", disk3.display()))
            .args([
                "bs=4M",
                &format!("seek={root_off}"),
                "oflag=seek_bytes",
                "conv=notrunc,fsync",
                "status=none"
            ])
            .status()
            .unwrap()
            .success()
    );
    let dd_secs = t.elapsed().as_secs_f64();

    let mibs = |bytes: u64, s: f64| bytes as f64 / MIB as f64 / s;
    println!();
    println!(
        "updog benchmark: {} MiB root image, lz4 -9 -> {} MiB, loopback HTTP, disk image file",
        b.root_len >> 20,
        compressed >> 20
    );
    println!(
        "{:<58} {:>8} {:>10} {:>12}",
        "method", "seconds", "MiB/s", "peak RSS"
    );
    println!(
        "{:<58} {:>8.2} {:>10.0} {:>9} KiB",
        "updog update-image (TUF, stream, write, fsync, verity verify)",
        up_secs,
        mibs(b.root_len, up_secs),
        up_rss
    );
    println!(
        "{:<58} {:>8.2} {:>10.0} {:>12}",
        "curl + sha256sum + lz4 -d | dd conv=fsync",
        std_secs,
        mibs(b.root_len, std_secs),
        "-"
    );
    println!(
        "{:<58} {:>8.2} {:>10.0} {:>12}",
        "dd conv=fsync of the decompressed image",
        dd_secs,
        mibs(b.root_len, dd_secs),
        "-"
    );
    println!(
        "ratio updog / standard pipeline: {:.2}x; updog / plain dd: {:.2}x",
        std_secs / up_secs,
        dd_secs / up_secs
    );
    println!(
        "peak RSS: {} KiB at 256 MiB ({small_secs:.2} s), {} KiB at 1024 MiB",
        small_rss, up_rss
    );
    use test_support::bench::{Better, row};
    let up = mibs(b.root_len, up_secs);
    row(
        "updog: 1 GiB lz4 -9 root over HTTP to disk (MiB/s)",
        up,
        "MiB/s",
        "curl+sha256sum+lz4 -d|dd fsync",
        mibs(b.root_len, std_secs),
        Better::Higher,
    );
    row(
        "updog: 1 GiB update vs plain dd fsync (MiB/s)",
        up,
        "MiB/s",
        "dd conv=fsync (decompressed)",
        mibs(b.root_len, dd_secs),
        Better::Higher,
    );
    row(
        "updog: peak RSS, 1 GiB image (KiB)",
        up_rss as f64,
        "KiB",
        "target 24 MiB",
        24.0 * 1024.0,
        Better::Lower,
    );
    row(
        "updog: peak RSS, 1 GiB vs 256 MiB image (KiB)",
        up_rss as f64,
        "KiB",
        "same at 256 MiB",
        small_rss as f64,
        Better::Lower,
    );
}
