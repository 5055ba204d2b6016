//! Delta updates onto a real block device (issue 17): the releases are published by the real
//! `pubsys repo --delta` and served on 127.0.0.1, the host's GPT disk (made by sgdisk) is attached
//! as a loop device and the real updog binary writes the inactive ROOT partition from the delta
//! through it. Checked: the delta writes with `O_DIRECT` (`root_update.write_io`), a kill in the
//! middle of the root image and a rerun that resumes on the device, the resume re-reading the
//! device (a recorded chunk changed on the device under the loop device is found and rewritten,
//! not trusted), and `veritysetup verify` on the loop device's own partition devices; the
//! page-cache policy (`UPDOG_DIRECT_IO=off`) on the same device.
//!
//! Loop devices need root: without it the tests record a skip; under `CI=true` (where tests run as
//! root) they must run. Needs the `pubsys` binary next to updog's (`cargo build --workspace
//! --bins`, as scripts/test.sh does).

#![allow(clippy::print_stderr, clippy::print_stdout)]

mod common;

use common::*;
use serde_json::Value;
use signpost::SetName;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use test_support::http::Server;
use test_support::loopdev::{Loop, need_loop_devices};

/// Root image length of both releases and the ROOT partitions' size.
const ROOT_LEN: u64 = 6 * MIB;
const ROOT_MIB: u64 = 8;

/// 1.0.0 running on set A of a disk attached as a loop device; 1.1.0 (1.0.0 with every 97th
/// 4 KiB block rewritten, so fetches and the 1 MiB checkpoints interleave) published with a delta.
struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    repo_dir: PathBuf,
    _server: Server,
    new: Release,
    /// The host on the disk image file (for reading flags and partitions).
    file_host: Host,
    /// The same host on the loop device (what updog writes).
    host: Host,
    dev: Loop,
}

fn world() -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old_root = content(ROOT_LEN, 1);
    let mut new_root = old_root.clone();
    for b in (0..ROOT_LEN / 4096).step_by(97) {
        let at = (b * 4096) as usize;
        new_root[at..at + 4096].copy_from_slice(&content(4096, 1000 + b));
    }
    let (a, b) = (path.join("old-root.ext4"), path.join("new-root.ext4"));
    std::fs::write(&a, old_root).unwrap();
    std::fs::write(&b, new_root).unwrap();
    let old = make_release_from(&path, "1.0.0", &a, &["-B4"]);
    let new = make_release_from(&path, "1.1.0", &b, &["-B4"]);
    let repo_dir = repo.dir.clone();
    pubsys_publish(&repo_dir, &repo.root, &repo.key.path, &old, false, &[]);
    pubsys_publish(&repo_dir, &repo.root, &repo.key.path, &new, true, &[]);
    let server = Server::serve_dir(&repo_dir);
    let file_host = Host::new(&path, &repo, &server.url(), &old, ROOT_MIB, "");
    let base = server.url();
    std::fs::write(
        file_host.root.join("etc/updog.toml"),
        format!(
            "metadata_base_url = \"{base}metadata/{VARIANT}/{}/\"\n\
             targets_base_url = \"{base}targets/\"\nseed = 1234\nignore_waves = true\n\
             retries = 2\nretry_backoff_ms = 0\nread_timeout_secs = 5\ncheckpoint_mib = 1\n\
             reboot_command = [\"true\"]\n",
            arch()
        ),
    )
    .unwrap();
    let dev = Loop::attach(&file_host.disk, &[]);
    let host = Host {
        root: file_host.root.clone(),
        disk: dev.dev.clone(),
    };
    World {
        _dir: dir,
        dir: path,
        repo_dir,
        _server: server,
        new,
        file_host,
        host,
        dev,
    }
}

impl World {
    fn index(&self) -> abos_delta::Index {
        let name = format!(".{}.index", self.new.root_name);
        let path = std::fs::read_dir(self.repo_dir.join("targets"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.file_name().unwrap().to_string_lossy().ends_with(&name))
            .unwrap();
        abos_delta::Index::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn progress_path(&self) -> PathBuf {
        self.host
            .root
            .join("var/lib/updog/resume/delta-root.progress")
    }

    /// After a successful update: B verifies with `veritysetup verify` on the loop device's own
    /// partition devices, ROOT-B holds the new root and B boots next. Returns `root_update`.
    fn assert_updated(&self, out: &Output) -> Value {
        assert_eq!(out.status.code(), Some(0), "{}", show(out));
        let status = Command::new("veritysetup")
            .arg("verify")
            .arg(self.dev.partition(ROOT_B))
            .arg(self.dev.partition(HASH_B))
            .arg(&self.new.root_hash)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "veritysetup verify refused the written set"
        );
        let mut root = vec![0u8; ROOT_LEN as usize];
        std::fs::File::open(self.dev.partition(ROOT_B))
            .unwrap()
            .read_exact_at(&mut root, 0)
            .unwrap();
        assert!(
            root == std::fs::read(&self.new.root_img).unwrap(),
            "ROOT-B is not 1.1.0's root"
        );
        assert!(veritysetup_verify_b(
            &self.file_host.disk,
            &self.new,
            &self.dir
        ));
        assert_eq!(self.file_host.next_boot(), Some(SetName::B));
        let outcome: Value = serde_json::from_slice(&out.stdout).unwrap();
        let how = outcome["root_update"].clone();
        eprintln!("root_update: {how}");
        assert_eq!(how["method"], "delta", "{outcome}");
        how
    }
}

#[test]
fn a_delta_onto_a_loop_device_writes_directly_resumes_after_a_kill_and_verifies() {
    if !tools() || !need_loop_devices() {
        return;
    }
    let w = world();
    // The loop device stays open for the whole test, as a host's disk stays open under its
    // mounted partitions: its page cache is not dropped when updog exits, so a resume reading
    // through that cache would see what the killed run left there, not what the device holds.
    let _held = std::fs::File::open(&w.dev.dev).unwrap();
    // 1. Killed in the middle of the root image, after a checkpoint.
    assert!(
        run_and_kill(&w.host, &|e| {
            e["event"] == "image-progress" && e["image"] == "root" && u(&e["written"]) >= 3 * MIB
        }),
        "updog finished before the kill"
    );
    assert_eq!(w.file_host.next_boot(), Some(SetName::A));
    let record = std::fs::read_to_string(w.progress_path())
        .expect("no delta progress record after a checkpoint");
    let recorded: usize = record
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("progress record {record:?}"));
    assert!(recorded >= 4, "{record}");

    // 2. A chunk the record covers changes on the device (written into the loop device's
    // backing file, so no page cache of the loop device holds the new bytes): the rerun must
    // read the device, find it, and write it (and what follows) again.
    let index = w.index();
    let bad = recorded / 2;
    let e = index.entries[bad];
    let (root_b, _) = partition(&w.file_host.disk, ROOT_B);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&w.file_host.disk)
        .unwrap();
    let at = root_b + e.offset + u64::from(e.len) / 2;
    let mut byte = [0u8; 1];
    f.read_exact_at(&mut byte, at).unwrap();
    f.write_all_at(&[byte[0] ^ 0x40], at).unwrap();
    f.sync_all().unwrap();
    drop(f);

    // 3. The rerun resumes on the device, with direct I/O, and the set verifies.
    let out = w.host.updog(&["--json", "update"]);
    let how = w.assert_updated(&out);
    assert_eq!(how["write_io"], "direct", "{how}");
    // The delta's writes are checked behind the writer too (the resumed chunks read back first).
    assert_eq!(how["verified"], "while-writing", "{how}");
    assert_eq!(
        u(&how["resumed_chunks"]),
        bad as u64,
        "resume must stop at the chunk changed on the device: {how}"
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(!log.contains("refuse"), "{log}");
    assert!(!w.progress_path().exists());
}

#[test]
fn a_delta_onto_a_loop_device_with_direct_io_off_uses_the_page_cache_and_verifies() {
    if !tools() || !need_loop_devices() {
        return;
    }
    let w = world();
    let out = w
        .host
        .command(&["--json", "update"])
        .env("UPDOG_DIRECT_IO", "off")
        .output()
        .unwrap();
    let how = w.assert_updated(&out);
    assert_eq!(how["write_io"], "buffered", "{how}");
    // Reading back right after a write through the page cache would read the cache: the root
    // is checked in the pass after the flush, which drops the cache first.
    assert_eq!(how["verified"], "after-writing", "{how}");
    assert_eq!(u(&how["resumed_chunks"]), 0, "{how}");
}

/// Benchmark (ignored; prints, never asserts timings): a delta update of a root of real files
/// (`UPDOG_DELTA_BENCH_MIB`, default 256; 2 % of its blocks rewritten in runs of 8) onto a loop
/// device, with direct I/O (the default) and with `UPDOG_DIRECT_IO=off`, each from the same fresh
/// disk. `cargo test -p updog --test delta_blockdev -- --ignored --nocapture` (as root).
#[test]
#[ignore = "benchmark: builds a 256 MiB release twice; run with --ignored --nocapture as root"]
fn bench_delta_onto_a_loop_device_direct_against_page_cache() {
    if !tools() || !need_loop_devices() {
        return;
    }
    let scene = DeltaBenchScene::new("updog-delta-blockdev-bench");
    let (mib, file_host) = (scene.mib, &scene.host);
    for direct in ["auto", "off"] {
        scene.reset("");
        let dev = Loop::attach(&file_host.disk, &[]);
        let host = Host {
            root: file_host.root.clone(),
            disk: dev.dev.clone(),
        };
        let Measured {
            ok,
            secs,
            rss_kib: rss,
            stdout: text,
            stderr: log,
        } = measured(
            host.command(&["--json", "update-image"])
                .env("UPDOG_DIRECT_IO", direct),
        );
        assert!(ok, "updog failed: {text}");
        drop(dev);
        assert!(veritysetup_verify_b(
            &file_host.disk,
            &scene.new,
            &scene.path
        ));
        let outcome: Value = serde_json::from_str(&text).unwrap();
        let how = &outcome["root_update"];
        assert_eq!(how["method"], "delta", "{how}");
        println!(
            "delta onto a loop device, {mib} MiB root, UPDOG_DIRECT_IO={direct}: {secs:.2} s, \
             peak RSS {rss} KiB; {how}"
        );
        for l in log
            .lines()
            .filter(|l| l.contains("delta:") || l.contains("image written"))
        {
            println!("  {l}");
        }
    }
}
