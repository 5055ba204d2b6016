//! The tamper matrix: each attack or fault is refused with a clear error and a documented exit
//! code; the running set (A) is untouched and still the next to boot.

mod common;

use common::*;
use test_support::http::{Fault, Server};

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    repo: Repo,
    server: Server,
    old: Release,
    new: Release,
    host: Host,
    a_root: Vec<u8>,
}

fn world_with(versions: RoleVersions) -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 2 * MIB, &["-B4"]);
    let new = make_release(&path, "1.1.0", 3 * MIB, &["-B4"]);
    let files = [old.target_files(), new.target_files()].concat();
    repo.publish(&manifest(&[&old, &new]), &files, versions);
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 4, "");
    let a_root = read_partition(&host.disk, ROOT_A, 2 * MIB);
    World {
        _dir: dir,
        dir: path,
        repo,
        server,
        old,
        new,
        host,
        a_root,
    }
}

fn world() -> World {
    world_with(RoleVersions::all(1))
}

impl World {
    fn republish(&self, v: RoleVersions) {
        let files = [self.old.target_files(), self.new.target_files()].concat();
        self.repo
            .publish(&manifest(&[&self.old, &self.new]), &files, v);
    }

    /// Runs `update`, expects `code` and `needle` in stderr, and checks the running set.
    fn refused(&self, code: i32, needle: &str) -> String {
        let out = self.host.updog(&["update"]);
        assert_eq!(out.status.code(), Some(code), "{}", show(&out));
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            stderr.contains("error: ") && stderr.contains(needle),
            "expected {needle:?}: {}",
            show(&out)
        );
        self.assert_running_set_safe();
        stderr
    }

    fn assert_running_set_safe(&self) {
        assert_eq!(self.host.next_boot(), Some(signpost::SetName::A));
        assert_eq!(
            read_partition(&self.host.disk, ROOT_A, 2 * MIB),
            self.a_root
        );
        let a = self.host.flags(signpost::SetName::A);
        assert!(a.successful && a.priority >= 1, "{a:?}");
        let b = self.host.flags(signpost::SetName::B);
        assert!(
            !b.successful && (b.priority == 0 || b.tries_left == 0),
            "B must not be bootable: {b:?}"
        );
    }
}

fn flip(path: &std::path::Path, at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = at.min(bytes.len() - 1);
    bytes[at] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn flipped_target_byte_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    let file = w.repo.target_file(&w.new.root_name);
    let len = std::fs::metadata(&file).unwrap().len() as usize;
    flip(&file, len / 2);
    w.refused(11, &w.new.root_name);
    // A flipped byte in the (small) hash image is caught too (on a host that has not written
    // the hash image yet: it is written before the root).
    let w = world();
    let hash = w.repo.target_file(&w.new.hash_name);
    flip(&hash, 100);
    w.refused(11, &w.new.hash_name);
}

#[test]
fn bad_signature_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    let ts = w.repo.metadata().join("timestamp.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&ts).unwrap()).unwrap();
    let sig = v["signatures"][0]["sig"].as_str().unwrap().to_owned();
    let flipped = format!(
        "{}{}",
        if sig.starts_with('0') { "1" } else { "0" },
        &sig[1..]
    );
    v["signatures"][0]["sig"] = flipped.into();
    std::fs::write(&ts, serde_json::to_vec(&v).unwrap()).unwrap();
    w.refused(11, "failed to load the update repository");
}

#[test]
fn expired_timestamp_is_refused() {
    if !tools() {
        return;
    }
    let mut v = RoleVersions::all(1);
    v.timestamp_expires = "2020-01-01T00:00:00Z".parse().unwrap();
    let w = world_with(v);
    let err = w.refused(12, "failed to load the update repository");
    assert!(err.contains("expired"), "{err}");
}

#[test]
fn rolled_back_timestamp_across_runs_is_refused() {
    if !tools() {
        return;
    }
    let w = world_with(RoleVersions::all(5));
    let out = w.host.updog(&["check-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // The repository (or a mirror) goes back to version 3: the persisted datastore remembers 5.
    w.republish(RoleVersions::all(3));
    let err = w.refused(13, "failed to load the update repository");
    assert!(err.contains("older") || err.contains("rollback"), "{err}");
}

#[test]
fn clock_stepping_backwards_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    let out = w.host.updog(&["check-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // Pretend this host once saw a time far in the future.
    std::fs::write(
        w.host.root.join("var/lib/updog/tuf/latest_known_time.json"),
        "\"2099-01-01T00:00:00Z\"",
    )
    .unwrap();
    let err = w.refused(14, "failed to load the update repository");
    assert!(err.contains("hint: the system clock"), "{err}");
}

#[test]
fn endless_target_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    // Endless garbage: refused at once (not an LZ4 frame), nothing written beyond a block.
    w.server.set_fault(Fault::Endless {
        suffix: w.new.root_name.clone(),
    });
    let err = w.refused(11, &w.new.root_name);
    assert!(err.contains("Caused by: bad LZ4 magic"), "{err}");
    w.server.set_fault(Fault::None);
    // The real image followed by extra data: refused at the signed length.
    let file = w.repo.target_file(&w.new.root_name);
    let mut bytes = std::fs::read(&file).unwrap();
    bytes.extend_from_slice(&content(2 * MIB, 99));
    std::fs::write(&file, bytes).unwrap();
    w.refused(11, "more than the");
}

#[test]
fn truncated_stream_fails_then_resumes_on_the_next_run() {
    if !tools() {
        return;
    }
    let w = world();
    // No retries: the first drop ends the run (as a network outage longer than the retries would).
    w.host.set_config(&w.server.url(), "retries = 0\n");
    let file = w.repo.target_file(&w.new.root_name);
    let len = std::fs::metadata(&file).unwrap().len();
    w.server.set_fault(Fault::CutAfter {
        suffix: w.new.root_name.clone(),
        bytes: len * 6 / 10,
        times: 1,
    });
    w.refused(15, "download stopped at byte");
    let first: u64 = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with(&w.new.root_name))
        .map(|r| r.bytes_sent)
        .sum();
    w.server.set_fault(Fault::None);
    w.server.clear_requests();
    let out = w.host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resuming root image"),
        "{}",
        show(&out)
    );
    let reqs: Vec<_> = w
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&w.new.root_name))
        .collect();
    assert_eq!(reqs.len(), 1, "{reqs:#?}");
    let range = reqs[0].range.clone().expect("a Range request");
    let start: u64 = range
        .trim_start_matches("bytes=")
        .trim_end_matches('-')
        .parse()
        .unwrap();
    // Never more than the unfinished part plus one checkpoint interval (1 MiB decompressed).
    assert!(
        start > 0 && len - start <= len - len * 6 / 10 + MIB,
        "resumed at {start} of {len}"
    );
    assert_eq!(reqs[0].bytes_sent, len - start);
    assert!(first >= len * 6 / 10);
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
}

#[test]
fn server_ignoring_ranges_still_completes_correctly() {
    if !tools() {
        return;
    }
    let w = world();
    w.host.set_config(&w.server.url(), "retries = 0\n");
    let len = std::fs::metadata(w.repo.target_file(&w.new.root_name))
        .unwrap()
        .len();
    w.server.set_fault(Fault::CutAfter {
        suffix: w.new.root_name.clone(),
        bytes: len / 2,
        times: 1,
    });
    w.refused(15, "download stopped at byte");
    // The next run asks for a range, the server answers 200 with the whole file: the prefix is
    // skipped (and re-hashed nowhere: the hash state was restored from the record).
    w.server.set_fault(Fault::NoRanges);
    let out = w.host.updog(&["update", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    // The outcome counts what was really fetched: the whole file, prefix included.
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = j["written"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "root")
        .unwrap_or_else(|| panic!("no root image in {j}"));
    assert!(root["resumed_at"].as_u64().unwrap() > 0, "{root}");
    assert_eq!(root["downloaded"].as_u64(), Some(len), "{root}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("server ignored the Range request"),
        "{}",
        show(&out)
    );
    assert!(veritysetup_verify_b(&w.host.disk, &w.new, &w.dir));
}

#[test]
fn metadata_server_errors_are_network_failures() {
    if !tools() {
        return;
    }
    let w = world();
    w.server.set_fault(Fault::Status {
        suffix: "timestamp.json".into(),
        status: 503,
    });
    let err = w.refused(15, "failed to load the update repository");
    assert!(err.contains("503"), "{err}");
    // 1 try + 2 retries.
    let n = w
        .server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("timestamp.json"))
        .count();
    assert_eq!(n, 3);
}

#[test]
fn image_larger_than_its_partition_is_refused() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let old = make_release(&path, "1.0.0", 2 * MIB, &[]);
    let big = make_release(&path, "1.1.0", 5 * MIB, &[]);
    repo.publish(
        &manifest(&[&old, &big]),
        &[old.target_files(), big.target_files()].concat(),
        RoleVersions::all(1),
    );
    let server = Server::serve_dir(&repo.dir);
    let host = Host::new(&path, &repo, &server.url(), &old, 4, "");
    let out = host.updog(&["update"]);
    assert_eq!(out.status.code(), Some(17), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("exceeds the"),
        "{}",
        show(&out)
    );
    assert_eq!(host.next_boot(), Some(signpost::SetName::A));
}
