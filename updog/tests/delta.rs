//! Delta (block-reuse) updates end to end (issue 16): releases published by the real `pubsys repo
//! --delta` (signed TUF repository with `<root>.index` and `<root>.chunks`), served over HTTP on
//! 127.0.0.1, applied by the real updog binary to a GPT disk image made by sgdisk, and checked
//! with `veritysetup verify` (independent of updog).
//!
//! The two releases share most of their root image: 1.1.0 changes a few 4 KiB blocks of
//! 1.0.0's root, so a delta downloads a small part of the full artifact. Tamper cases (chunk
//! file flipped, truncated or served without Range, index replaced, a signed index whose chunks
//! do not match) are refused or fall back to the full image; the running set is never touched and
//! nothing unverified is activated.
//!
//! Needs the `pubsys` binary next to updog's (`cargo build --workspace --bins`, as
//! scripts/test.sh does).

#![allow(clippy::print_stderr)]

mod common;

use common::*;
use serde_json::Value;
use signpost::SetName;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Output;
use test_support::http::{Fault, Server};

/// Root image length of both releases and the ROOT partitions' size.
const ROOT_LEN: u64 = 6 * MIB;
const ROOT_MIB: u64 = 8;

fn roots(dir: &Path, len: u64, changed: &[u64]) -> (PathBuf, PathBuf) {
    let old = content(len, 1);
    let mut new = old.clone();
    for &b in changed {
        let at = (b * 4096) as usize;
        let fresh = content(4096, 1000 + b);
        new[at..at + 4096].copy_from_slice(&fresh);
    }
    let (a, b) = (dir.join("old-root.ext4"), dir.join("new-root.ext4"));
    std::fs::write(&a, old).unwrap();
    std::fs::write(&b, new).unwrap();
    (a, b)
}

struct World {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    repo_dir: PathBuf,
    server: Server,
    old: Release,
    new: Release,
    host: Host,
    /// Set A's partitions as made.
    set_a: Vec<Vec<u8>>,
}

fn set_a(disk: &Path) -> Vec<Vec<u8>> {
    [BOOT_A, ROOT_A, HASH_A]
        .iter()
        .map(|&n| read_partition(disk, n, u64::MAX))
        .collect()
}

/// How 1.1.0 is published.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Publish {
    /// `pubsys repo --delta`.
    Delta,
    /// Without a delta.
    Full,
    /// Index and chunk file made here, one byte of the chunk holding block 700 flipped before
    /// pubsys signs both (`--extra-target`): signed, but the index and the chunks disagree.
    SignedMismatch,
}

/// 1.0.0 running on set A; 1.0.0 and 1.1.0 published by pubsys.
fn world_with(changed: &[u64], how: Publish) -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    // Keys and root from the test helper; pubsys publishes into its directory.
    let repo = Repo::new(&path);
    let (root_json, key) = (repo.root.clone(), repo.key.clone());
    let (a, b) = roots(&path, ROOT_LEN, changed);
    let old = make_release_from(&path, "1.0.0", &a, &["-B4"]);
    let new = make_release_from(&path, "1.1.0", &b, &["-B4"]);
    let repo_dir = repo.dir.clone();
    pubsys_publish(&repo_dir, &root_json, &key.path, &old, false, &[]);
    if how == Publish::SignedMismatch {
        let stage = path.join("stage");
        std::fs::create_dir_all(&stage).unwrap();
        let p = abos_delta::publish::publish_file(&new.root_img, &stage, &new.root_name).unwrap();
        let e = chunk_at(&p.index, 700 * 4096);
        let f = std::fs::OpenOptions::new()
            .write(true)
            .read(true)
            .open(&p.chunks_path)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, e.stored_offset).unwrap();
        f.write_all_at(&[b[0] ^ 1], e.stored_offset).unwrap();
        drop(f);
        pubsys_publish(
            &repo_dir,
            &root_json,
            &key.path,
            &new,
            false,
            &[&p.chunks_path, &p.index_path],
        );
    } else {
        pubsys_publish(
            &repo_dir,
            &root_json,
            &key.path,
            &new,
            how == Publish::Delta,
            &[],
        );
    }
    let server = Server::serve_dir(&repo_dir);
    let host = Host::new(&path, &repo, &server.url(), &old, ROOT_MIB, "");
    let w = World {
        _dir: dir,
        dir: path,
        repo_dir,
        server,
        old,
        new,
        host,
        set_a: Vec::new(),
    };
    w.config("");
    World {
        set_a: set_a(&w.host.disk),
        ..w
    }
}

fn world() -> World {
    world_with(&[40, 41, 700, 1200], Publish::Delta)
}

/// The index entry covering image byte `at`.
fn chunk_at(index: &abos_delta::Index, at: u64) -> abos_delta::index::Entry {
    *index
        .entries
        .iter()
        .find(|e| e.offset <= at && at < e.offset + u64::from(e.len))
        .unwrap()
}

impl World {
    fn index(&self) -> abos_delta::Index {
        let bytes = std::fs::read(self.served(&format!("{}.index", self.new.root_name))).unwrap();
        abos_delta::Index::from_slice(&bytes).unwrap()
    }

    /// Whether some Range request the server answered covered `start..end` of the chunk file.
    fn range_served(&self, start: u64, end: u64) -> bool {
        self.server.requests().iter().any(|r| {
            r.path.ends_with(".chunks")
                && r.status == 206
                && r.range
                    .as_deref()
                    .and_then(|v| v.strip_prefix("bytes="))
                    .and_then(|v| v.split_once('-'))
                    .and_then(|(a, b)| Some((a.parse::<u64>().ok()?, b.parse::<u64>().ok()?)))
                    .is_some_and(|(a, b)| a <= start && end <= b + 1)
        })
    }
}

impl World {
    /// updog.toml for pubsys's layout (metadata under `<variant>/<arch>/`).
    fn config(&self, extra: &str) {
        let base = self.server.url();
        std::fs::write(
            self.host.root.join("etc/updog.toml"),
            format!(
                "metadata_base_url = \"{base}metadata/{VARIANT}/{}/\"\n\
                 targets_base_url = \"{base}targets/\"\nseed = 1234\nignore_waves = true\n\
                 retries = 2\nretry_backoff_ms = 0\nread_timeout_secs = 5\ncheckpoint_mib = 1\n\
                 reboot_command = [\"true\"]\n{extra}",
                arch()
            ),
        )
        .unwrap();
    }

    fn targets(&self) -> PathBuf {
        self.repo_dir.join("targets")
    }

    /// The served file of target `name`.
    fn served(&self, name: &str) -> PathBuf {
        std::fs::read_dir(self.targets())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .ends_with(&format!(".{name}"))
            })
            .unwrap_or_else(|| panic!("no served target {name}"))
    }

    fn full_len(&self) -> u64 {
        std::fs::metadata(self.new.dir.join(&self.new.root_name))
            .unwrap()
            .len()
    }

    fn update(&self) -> Output {
        self.host.updog(&["--json", "update"])
    }

    /// The set A invariant: every byte of BOOT-A, ROOT-A and HASH-A as made, and A still boots.
    fn assert_a_untouched(&self, ctx: &str) {
        assert!(set_a(&self.host.disk) == self.set_a, "{ctx}: set A changed");
        assert!(self.host.flags(SetName::A).successful, "{ctx}");
    }

    /// After a refused update: nothing activated, set B not bootable.
    fn assert_nothing_activated(&self, ctx: &str) {
        self.assert_a_untouched(ctx);
        assert_eq!(self.host.next_boot(), Some(SetName::A), "{ctx}");
        assert_eq!(self.host.flags(SetName::B).tries_left, 0, "{ctx}");
        assert_eq!(self.host.flags(SetName::B).priority, 0, "{ctx}");
    }

    /// After a successful update: B verifies with veritysetup and boots next.
    fn assert_updated(&self, out: &Output) -> Value {
        assert_eq!(out.status.code(), Some(0), "{}", show(out));
        assert!(
            veritysetup_verify_b(&self.host.disk, &self.new, &self.dir),
            "set B does not verify"
        );
        assert_eq!(
            read_partition(&self.host.disk, ROOT_B, ROOT_LEN),
            std::fs::read(&self.new.root_img).unwrap(),
            "ROOT-B is not 1.1.0's root"
        );
        assert_eq!(self.host.next_boot(), Some(SetName::B));
        self.assert_a_untouched("after the update");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn root_written(outcome: &Value) -> &Value {
    outcome["written"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "root")
        .unwrap()
}

/// Range requests the server answered for the chunk file.
fn chunk_bytes_served(server: &Server) -> u64 {
    server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(".chunks"))
        .map(|r| r.bytes_sent)
        .sum()
}

#[test]
fn delta_update_fetches_less_than_the_full_image_and_verifies() {
    if !tools() {
        return;
    }
    let w = world();
    let full = w.full_len();

    // check-update shows the plan, and status remembers it.
    let out = w.host.updog(&["--json", "check-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check["version"], "1.1.0");
    let d = &check["delta"];
    assert_eq!(d["available"], true, "{check}");
    assert_eq!(u(&d["full_bytes"]), full);
    let planned = u(&d["planned_fetch_bytes"]);
    assert!(planned < full / 4, "planned {planned} of {full}");
    assert!(u(&d["reuse_bytes"]) >= ROOT_LEN - 1024 * 1024, "{d}");
    let out = w.host.updog(&["--json", "status"]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        status["delta"]["planned_fetch_bytes"],
        d["planned_fetch_bytes"]
    );
    // A second check reuses the figures (same signed index, same running root): no index
    // download, no Range request.
    w.server.clear_requests();
    let out = w.host.updog(&["--json", "check-update"]);
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["delta"], check["delta"]);
    assert!(
        !w.server
            .requests()
            .iter()
            .any(|r| r.path.ends_with(".index") || r.path.ends_with(".chunks")),
        "{:?}",
        w.server.requests()
    );
    let out = w.host.updog(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("delta:          1.1.0: available"),
        "{}",
        show(&out)
    );

    w.server.clear_requests();
    let out = w.update();
    let outcome = w.assert_updated(&out);
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "delta", "{outcome}");
    assert_eq!(how["refetched_chunks"], 0);
    // Truthful bytes: what the server sent for the root (index + ranges) is what updog reports,
    // and it is far less than the full artifact, which was never requested.
    let served_chunks = chunk_bytes_served(&w.server);
    let index_len = std::fs::metadata(w.served(&format!("{}.index", w.new.root_name)))
        .unwrap()
        .len();
    let downloaded = u(&root_written(&outcome)["downloaded"]);
    assert_eq!(downloaded, served_chunks + index_len, "{outcome}");
    assert_eq!(u(&how["delta_bytes"]), downloaded);
    assert!(
        downloaded <= planned + 1,
        "{downloaded} > planned {planned}"
    );
    assert!(downloaded < full / 4, "{downloaded} of {full}");
    assert!(
        !w.server
            .requests()
            .iter()
            .any(|r| r.path.ends_with(&w.new.root_name)),
        "the full root artifact was requested"
    );
    // The JSON progress counted real bytes (the last root progress event: what was fetched).
    let events: Vec<Value> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let delta_event = events.iter().find(|e| e["event"] == "delta").unwrap();
    assert_eq!(delta_event["method"], "delta");
    let last = events
        .iter()
        .rfind(|e| e["event"] == "image-progress" && e["image"] == "root")
        .unwrap();
    assert_eq!(u(&last["received"]), downloaded);
    assert!(u(&last["written"]) >= ROOT_LEN - MIB);
    // The resume directory is clean afterwards.
    let resume = w.host.root.join("var/lib/updog/resume");
    let left: Vec<_> = std::fs::read_dir(&resume)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_delta_from_a_file_repository() {
    if !tools() {
        return;
    }
    let w = world();
    let base = format!("file://{}/", w.repo_dir.display());
    std::fs::write(
        w.host.root.join("etc/updog.toml"),
        format!(
            "metadata_base_url = \"{base}metadata/{VARIANT}/{}/\"\n\
             targets_base_url = \"{base}targets/\"\nseed = 1234\nignore_waves = true\n\
             checkpoint_mib = 1\nreboot_command = [\"true\"]\n",
            arch()
        ),
    )
    .unwrap();
    let outcome = w.assert_updated(&w.update());
    let how = &outcome["root_update"];
    assert_eq!(how["method"], "delta", "{outcome}");
    assert!(u(&how["delta_bytes"]) < w.full_len() / 4, "{how}");
}

#[test]
fn delta_off_in_config_downloads_the_full_image() {
    if !tools() {
        return;
    }
    let w = world();
    w.config("delta = false\n");
    let out = w.host.updog(&["--json", "check-update"]);
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check["delta"]["available"], false);
    assert!(
        check["delta"]["reason"]
            .as_str()
            .unwrap()
            .contains("delta = false")
    );
    let outcome = w.assert_updated(&w.update());
    assert_eq!(outcome["root_update"]["method"], "full");
    assert_eq!(u(&root_written(&outcome)["downloaded"]), w.full_len());
}

#[test]
fn without_a_published_delta_check_update_keeps_bottlerocket_shape() {
    if !tools() {
        return;
    }
    let w = world_with(&[3], Publish::Full);
    let out = w.host.updog(&["--json", "check-update"]);
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys: Vec<&String> = check.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "variant",
            "arch",
            "version",
            "max_version",
            "waves",
            "images",
            "plan"
        ],
        "no \"delta\" key without a published delta"
    );
    let outcome = w.assert_updated(&w.update());
    assert_eq!(outcome["root_update"]["method"], "full");
    assert!(
        outcome["root_update"]["reason"]
            .as_str()
            .unwrap()
            .contains("no delta is published")
    );
}

/// Flips one byte of the served chunk file inside the chunk holding block 700 (changed: fetched).
fn flip_fetched_chunk(w: &World, chunks: &Path) {
    let e = chunk_at(&w.index(), 700 * 4096);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(chunks)
        .unwrap();
    let mut b = [0u8; 1];
    let at = e.stored_offset + u64::from(e.stored_len) / 2;
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x40], at).unwrap();
}

#[test]
fn a_chunk_flipped_on_the_server_falls_back_to_the_full_image() {
    if !tools() {
        return;
    }
    let w = world();
    let chunks = w.served(&format!("{}.chunks", w.new.root_name));
    flip_fetched_chunk(&w, &chunks);
    let outcome = w.assert_updated(&w.update());
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "full", "{outcome}");
    assert!(how["reason"].as_str().unwrap().contains("SHA-256"), "{how}");
    // Truthful: the full artifact plus what the failed delta fetched.
    let downloaded = u(&root_written(&outcome)["downloaded"]);
    assert_eq!(downloaded, w.full_len() + u(&how["delta_bytes"]));
    assert!(u(&how["delta_bytes"]) > 0);
}

#[test]
fn a_signed_index_whose_chunks_do_not_match_falls_back() {
    if !tools() {
        return;
    }
    let w = world_with(&[40, 41, 700, 1200], Publish::SignedMismatch);
    let outcome = w.assert_updated(&w.update());
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "full", "{outcome}");
    assert!(how["reason"].as_str().unwrap().contains("chunk"), "{how}");
}

#[test]
fn a_replaced_index_is_refused_with_the_verification_status() {
    if !tools() {
        return;
    }
    let w = world();
    let index = w.served(&format!("{}.index", w.new.root_name));
    let mut bytes = std::fs::read(&index).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&index, &bytes).unwrap();
    let out = w.update();
    assert_eq!(out.status.code(), Some(11), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".index"), "{err}");
    w.assert_nothing_activated("index replaced");
    // check-update says why, and does not fail.
    let out = w.host.updog(&["--json", "check-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let check: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(check["delta"]["available"], false, "{check}");
}

#[test]
fn an_index_entry_with_a_broken_signature_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    // Change the index's signed SHA-256 in targets metadata without re-signing it.
    let meta = w.repo_dir.join(format!("metadata/{VARIANT}/{}", arch()));
    let targets = std::fs::read_dir(&meta)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".targets.json"))
        .max()
        .unwrap();
    let index_file = w.served(&format!("{}.index", w.new.root_name));
    let name = index_file
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let sha = name.split('.').next().unwrap().to_owned();
    let text = std::fs::read_to_string(&targets).unwrap();
    assert!(
        text.contains(&sha),
        "the index's hash is not in {}",
        targets.display()
    );
    let forged = format!(
        "{}{}",
        &sha[..63],
        if sha.ends_with('0') { "1" } else { "0" }
    );
    std::fs::write(&targets, text.replace(&sha, &forged)).unwrap();
    let out = w.update();
    assert_eq!(out.status.code(), Some(11), "{}", show(&out));
    w.assert_nothing_activated("targets metadata forged");
}

#[test]
fn a_truncated_chunk_file_falls_back() {
    if !tools() {
        return;
    }
    let w = world();
    let chunks = w.served(&format!("{}.chunks", w.new.root_name));
    let len = std::fs::metadata(&chunks).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&chunks)
        .unwrap()
        .set_len(len / 3)
        .unwrap();
    let outcome = w.assert_updated(&w.update());
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "full", "{outcome}");
    assert!(
        how["reason"].as_str().unwrap().contains("delta failed"),
        "{how}"
    );
}

#[test]
fn a_server_ignoring_range_gets_the_full_image() {
    if !tools() {
        return;
    }
    let w = world();
    w.server.set_fault(Fault::NoRanges);
    let outcome = w.assert_updated(&w.update());
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "full", "{outcome}");
    assert!(how["reason"].as_str().unwrap().contains("Range"), "{how}");
}

#[test]
fn a_flipped_block_on_the_running_root_is_fetched_not_copied() {
    if !tools() {
        return;
    }
    let w = world();
    // Plan first (check-update scans the clean root), then a block of ROOT-A flips: the copy
    // that the plan counted on no longer matches its hash.
    let (first, _) = partition(&w.host.disk, ROOT_A);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .read(true)
        .open(&w.host.disk)
        .unwrap();
    let at = first + 300 * 4096 + 17;
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, at).unwrap();
    f.write_all_at(&[b[0] ^ 0x08], at).unwrap();
    drop(f);
    let w = World {
        set_a: set_a(&w.host.disk),
        ..w
    };
    let outcome = w.assert_updated(&w.update());
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "delta", "{outcome}");
    // The flipped chunk's hash is not the index's: it was fetched from the server.
    let e = chunk_at(&w.index(), 300 * 4096);
    assert!(
        w.range_served(e.stored_offset, e.stored_end()),
        "the chunk of the flipped block was not fetched: {:?}",
        w.server.requests()
    );
}

#[test]
fn a_block_flipped_between_scan_and_copy_is_refetched() {
    // The executor re-hashes every copy: simulate a block that flips after the plan was made
    // by running the library directly with a plan from the clean root.
    if !tools() {
        return;
    }
    let w = world();
    let index = w.index();
    let old = std::fs::read(&w.old.root_img).unwrap();
    let mut local = abos_delta::LocalIndex::new();
    local
        .add_source(&old[..], index.header.chunking, "old")
        .unwrap();
    let plan = abos_delta::Plan::new(&index, &local, Default::default());
    let mut flipped = old.clone();
    flipped[300 * 4096 + 17] ^= 0x08;
    let src = w.dir.join("flipped-root");
    std::fs::write(&src, &flipped).unwrap();
    let chunks = w.served(&format!("{}.chunks", w.new.root_name));
    let mut fetch = abos_delta::fetch::FileFetch::open(&chunks).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    let o = rt()
        .block_on(abos_delta::execute::execute(
            &index,
            &plan,
            &[std::fs::File::open(&src).unwrap()],
            &mut fetch,
            &mut out,
            None,
        ))
        .unwrap();
    assert_eq!(o.refetched_chunks, 1);
    assert_eq!(out.into_inner(), std::fs::read(&w.new.root_img).unwrap());
}

#[test]
fn a_killed_delta_update_resumes_and_the_running_set_stays_untouched() {
    if !tools() {
        return;
    }
    // More changed blocks, spread out, so fetches and checkpoints (every 1 MiB) interleave.
    let changed: Vec<u64> = (0..ROOT_LEN / 4096).step_by(97).collect();
    let w = world_with(&changed, Publish::Delta);
    let progress = w.host.root.join("var/lib/updog/resume/delta-root.progress");
    // 1. Killed just after the delta was decided (nothing written yet).
    assert!(run_and_kill(&w.host, &|e| e["event"] == "delta"));
    w.assert_nothing_activated("killed after the delta decision");
    // 2. Killed in the middle of the root image, after a checkpoint.
    let killed = run_and_kill(&w.host, &|e| {
        e["event"] == "image-progress" && e["image"] == "root" && u(&e["written"]) >= 3 * MIB
    });
    assert!(killed, "updog finished before the kill");
    w.assert_nothing_activated("killed while writing the root");
    assert!(
        progress.exists(),
        "no delta progress record after a checkpoint"
    );
    // 3. Killed at the verify step (root done; boot and hash were written before it).
    assert!(
        run_and_kill(&w.host, &|e| e["event"] == "step" && e["step"] == "verify"),
        "updog finished before the kill"
    );
    w.assert_nothing_activated("killed after the root");
    // 4. The rerun resumes: the chunks written before are verified, not fetched again.
    let out = w.update();
    let outcome = w.assert_updated(&out);
    let how = &outcome["root_update"];
    eprintln!("root_update: {how}");
    assert_eq!(how["method"], "delta", "{outcome}");
    assert!(u(&how["resumed_chunks"]) > 0, "{how}");
    assert!(!progress.exists());
}
