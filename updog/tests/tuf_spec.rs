//! updog through tuf-client (issue 13): the TUF client workflow's rules, checked end to end on
//! the real updog binary (or its library, where the binary has no way to reach a case) against
//! real signed repositories served over HTTP on 127.0.0.1:0. Each test names the rule; each
//! failed against the tough-based updog that came before.
//!
//! Repositories are built as JSON and signed at test time with tuf-client's test builder
//! (`tuf-client/tests/support`), which can produce what tough's editor cannot: SHA-512-only
//! hashes, equal versions with different content, entries outside a delegated role's paths.

mod common;
#[path = "../../tuf-client/tests/support/mod.rs"]
mod tuf_repo;

use common::*;
use serde_json::json;
use std::path::PathBuf;
use std::process::Output;
use test_support::http::{Fault, Server};

/// 1.0.0 running, 1.0.0 and 1.1.0 published (manifest.json and the six images) in a repository
/// built by the JSON builder, served over loopback HTTP.
struct Scene {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    repo: tuf_repo::Repo,
    server: Server,
    new: Release,
    host: Host,
}

/// How the scene's targets are signed.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// Everything in the top-level targets role, SHA-256 only.
    Plain,
    /// manifest.json with SHA-512 only, images with SHA-256 and SHA-512.
    Sha512,
    /// manifest.json in `targets`; the images in a delegated role `images` (paths
    /// `bottlerocket-*`) that also lists an entry outside its paths.
    Delegated,
}

impl Scene {
    fn new(layout: Layout) -> Scene {
        let dir = test_support::tempdir();
        let path = dir.path().to_path_buf();
        let old = make_release(&path, "1.0.0", MIB, &["-B4"]);
        let new = make_release(&path, "1.1.0", MIB, &["-B4"]);
        let mut repo = tuf_repo::Repo::new();
        let manifest = manifest(&[&old, &new]).to_vec_pretty();
        let images: Vec<PathBuf> = [old.target_files(), new.target_files()].concat();
        let image_role = if layout == Layout::Delegated {
            repo.delegate(
                "targets",
                "images",
                json!({"paths": ["bottlerocket-*"]}),
                false,
            );
            // Signed by the delegated key, but outside the role's paths: never trusted, and it
            // must not block anything else.
            repo.add_target("images", "not-an-image.txt", b"outside the delegated paths");
            "images"
        } else {
            "targets"
        };
        match layout {
            Layout::Sha512 => {
                repo.add_target_with("targets", "manifest.json", &manifest, &["sha512"])
            }
            _ => repo.add_target("targets", "manifest.json", &manifest),
        }
        for f in &images {
            let name = f.file_name().unwrap().to_string_lossy().into_owned();
            let bytes = std::fs::read(f).unwrap();
            match layout {
                Layout::Sha512 => {
                    repo.add_target_with(image_role, &name, &bytes, &["sha256", "sha512"]);
                }
                _ => repo.add_target(image_role, &name, &bytes),
            }
        }
        repo.publish();
        let server = Server::serve_dir(repo.dir.path());
        // common::Host copies the shipped root from a `common::Repo`'s root.
        let root_json = path.join("shipped-root.json");
        std::fs::write(&root_json, &repo.shipped_root).unwrap();
        let key = repo.keys["root"][0].clone();
        let shim = Repo {
            signed: test_support::tuf::SignedRepo {
                dir: repo.dir.path().to_path_buf(),
                root: root_json,
                keys: vec![key.path.clone()],
            },
            key,
        };
        let host = Host::new(&path, &shim, &server.url(), &old, 2, "");
        Scene {
            _dir: dir,
            dir: path,
            repo,
            server,
            new,
            host,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        self.host.updog(args)
    }

    fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(out.status.code(), Some(code), "{}", show(&out));
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// `updog <args>` under libfaketime with `spec` (e.g. "-2m", "@2030-01-01 00:00:00").
    fn faketime(&self, spec: &str, args: &[&str]) -> Output {
        let mut cmd = std::process::Command::new("faketime");
        cmd.args(["-f", spec])
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1")
            .env("TZ", "UTC")
            .arg(env!("CARGO_BIN_EXE_updog"))
            .arg("--host-root")
            .arg(&self.host.root)
            .arg("--disk")
            .arg(&self.host.disk)
            .args(["--active", "a"])
            .args(args);
        cmd.output().unwrap()
    }

    fn datastore(&self, file: &str) -> serde_json::Value {
        let path = self.host.root.join("var/lib/updog/tuf").join(file);
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap()
    }

    fn trusted_version(&self, role: &str) -> u64 {
        self.datastore(&format!("{role}.json"))["signed"]["version"]
            .as_u64()
            .unwrap()
    }

    fn requested(&self) -> Vec<String> {
        self.server
            .requests()
            .iter()
            .map(|r| r.path.clone())
            .collect()
    }

    /// Whether a request matching `pred` was answered (the server logs a request once it has
    /// answered it, so its thread gets up to 5 s).
    fn saw(&self, pred: impl Fn(&str) -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            if self.requested().iter().any(|p| pred(p)) {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// §5.4.3.1: a timestamp with the trusted version but different content (here naming snapshot
/// version 100) is discarded without error; the host keeps working with the trusted metadata and
/// accepts the repository's next legitimate timestamp. (tough persisted it, followed snapshot 100
/// and then refused timestamp 2 as a snapshot rollback: one bad timestamp froze the host.)
#[test]
fn spec_5_4_3_1_same_version_timestamp_with_different_content_is_discarded() {
    if !tools() {
        return;
    }
    let mut s = Scene::new(Layout::Plain);
    s.expect(&["check-update"], 0);
    let (ts, snap) = (s.repo.timestamp_version, s.repo.snapshot_version);
    assert_eq!(s.trusted_version("timestamp"), ts);
    let trusted_ts = std::fs::read(s.host.root.join("var/lib/updog/tuf/timestamp.json")).unwrap();

    // The same timestamp version again, now naming snapshot 100 (which exists and is signed).
    s.repo.snapshot_version = 100;
    s.repo.write_snapshot();
    s.repo.write_timestamp();
    assert_ne!(s.repo.read_meta("timestamp.json"), trusted_ts);
    s.server.clear_requests();
    let out = s.expect(&["check-update"], 0);
    assert!(out.contains("1.1.0"), "the host keeps working: {out}");
    assert!(
        !s.requested()
            .iter()
            .any(|p| p.ends_with("100.snapshot.json")),
        "the discarded timestamp's snapshot is not followed: {:?}",
        s.requested()
    );
    // The trusted timestamp is kept byte for byte.
    assert_eq!(
        std::fs::read(s.host.root.join("var/lib/updog/tuf/timestamp.json")).unwrap(),
        trusted_ts
    );
    assert_eq!(s.trusted_version("snapshot"), snap);
    assert!(out.contains("discarded"), "the discard is logged: {out}");

    // The repository's next legitimate publication (timestamp and snapshot + 1) is accepted.
    s.repo.snapshot_version = snap;
    s.repo.publish();
    s.expect(&["check-update"], 0);
    assert_eq!(s.trusted_version("timestamp"), ts + 1);
    assert_eq!(s.trusted_version("snapshot"), snap + 1);
    // And the whole update goes through.
    s.expect(&["update"], 0);
    assert!(veritysetup_verify_b(&s.host.disk, &s.new, &s.dir));
}

/// §5.7.3: with consistent snapshots, target `dir/sub/file.bin` is fetched from
/// `dir/sub/<sha256>.file.bin` (tough and the old updog built `<sha256>.dir/sub/file.bin`).
/// Manifest target names cannot hold a `/`, so this goes through updog's library: the URL the
/// image writer is given, and the stream it reads from there.
#[test]
fn spec_5_7_3_target_in_a_subdirectory_is_fetched_from_dir_hash_dot_file() {
    if !tools() {
        return;
    }
    let mut s = Scene::new(Layout::Plain);
    let body = b"a target below two directories".repeat(100);
    s.repo.add_target("targets", "dir/sub/file.bin", &body);
    s.repo.publish();
    // Only the consistent-snapshot file is served (no plain copy to fall back on).
    std::fs::remove_file(s.repo.targets_dir().join("dir/sub/file.bin")).unwrap();
    let hash = tuf_repo::sha256_hex(&body);

    let paths = updog::config::HostPaths::new(&s.host.root);
    let config = updog::config::Config::load(&paths.config()).unwrap();
    let http = updog::transport::HttpClient::new(
        config.network.clone(),
        updog::transport::QueryParams::default(),
        std::sync::Arc::new(updog::NullReporter),
    )
    .unwrap();
    rt().block_on(async {
        let loaded = updog::repo::load(&paths, &config, &http).await.unwrap();
        let info = loaded.target("dir/sub/file.bin").await.unwrap();
        assert_eq!(
            info.url.as_str(),
            format!("{}targets/dir/sub/{hash}.file.bin", s.server.url())
        );
        assert_eq!(info.length, body.len() as u64);
        let mut stream = updog::transport::TargetStream::open(&http, &info.url, 0)
            .await
            .unwrap();
        let mut got = Vec::new();
        while let Some(chunk) = stream.next().await.unwrap() {
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, body);
    });
    let want = format!("/targets/dir/sub/{hash}.file.bin");
    assert!(s.saw(|p| p == want), "{:?}", s.requested());
}

/// §4.5: any non-empty set of hashes. manifest.json listing only SHA-512 is downloaded and
/// checked; images listing SHA-256 and SHA-512 are written (the resumable writer checks the
/// SHA-256). tough refused the whole targets role ("missing field sha256").
#[test]
fn spec_4_5_targets_listing_sha512_are_usable() {
    if !tools() {
        return;
    }
    let s = Scene::new(Layout::Sha512);
    let out = s.expect(&["check-update"], 0);
    assert!(out.contains("1.1.0"), "{out}");
    // Fetched under its first listed hash: the SHA-512.
    assert!(
        s.saw(|p| p.starts_with("/targets/")
            && p.len() > 128 + 10
            && p.ends_with(".manifest.json")),
        "{:?}",
        s.requested()
    );
    s.expect(&["update"], 0);
    assert!(veritysetup_verify_b(&s.host.disk, &s.new, &s.dir));

    // A manifest.json whose SHA-512 does not match is refused as a verification failure.
    let s = Scene::new(Layout::Sha512);
    for e in std::fs::read_dir(s.repo.targets_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().ends_with("manifest.json") {
            let mut b = std::fs::read(&p).unwrap();
            let last = b.len() - 2;
            b[last] ^= 1;
            std::fs::write(&p, b).unwrap();
        }
    }
    let err = s.expect(&["check-update"], 11);
    assert!(err.contains("manifest.json"), "{err}");
}

/// §5.6.7: targets are found by the delegation search; an entry a delegated role lists outside
/// its `paths` is simply not trusted and does not block the update of the other targets (tough
/// failed the whole load with "Target file not delegated").
#[test]
fn spec_5_6_7_delegated_entry_outside_its_paths_does_not_block_other_targets() {
    if !tools() {
        return;
    }
    let s = Scene::new(Layout::Delegated);
    let out = s.expect(&["check-update"], 0);
    assert!(out.contains("1.1.0"), "{out}");
    s.expect(&["update"], 0);
    assert!(veritysetup_verify_b(&s.host.disk, &s.new, &s.dir));
    assert!(
        s.saw(|p| p.ends_with(".images.json")),
        "the images come from the delegated role: {:?}",
        s.requested()
    );
    // The migrator's copy of the metadata: the verified bytes under their published names,
    // the delegated role included.
    let cache = s.host.root.join("var/cache/bottlerocket-metadata");
    for file in ["timestamp.json", "1.root.json", "1.images.json"] {
        let published = s.repo.read_meta(file);
        assert_eq!(
            std::fs::read(cache.join(file)).unwrap(),
            published,
            "{file}"
        );
    }
}

/// §5.1: one fixed update start time per run, and the clock-went-backwards check with a
/// tolerance: a clock a little behind the previous run works (tough refused any step back), a
/// clock far behind is refused with exit 14. Metadata that expires while a run is under way is
/// judged at the run's start time; once the start time is past the expiry, it is refused (12).
#[test]
fn spec_5_1_fixed_start_time_and_clock_tolerance() {
    if !tools() || !test_support::require_tool("faketime") {
        return;
    }
    let mut s = Scene::new(Layout::Plain);
    s.expect(&["check-update"], 0);
    let clock = s.host.root.join("var/lib/updog/tuf/latest_known_time.json");
    let recorded = std::fs::read(&clock).unwrap();

    // Two minutes behind the last run: within the tolerance, accepted, the record not lowered.
    let out = s.faketime("-2m", &["check-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert_eq!(std::fs::read(&clock).unwrap(), recorded);

    // A day behind: refused before any request.
    s.server.clear_requests();
    let out = s.faketime("-1d", &["check-update"]);
    assert_eq!(out.status.code(), Some(14), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the clock went backwards"), "{err}");
    assert!(s.requested().is_empty(), "{:?}", s.requested());

    // A timestamp that expires one hour from now (whole seconds); a run that starts 2 s before
    // that and gets the timestamp 3 s later (one cut request, 3 s backoff) judges it at its start.
    let expires = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second() + 3600).unwrap();
    s.repo.timestamp_expires = expires.to_string();
    s.repo.publish();
    s.host
        .set_config(&s.server.url(), "retry_backoff_ms = 3000\n");
    s.server.set_fault(Fault::CutAfter {
        suffix: "timestamp.json".into(),
        bytes: 0,
        times: 1,
    });
    let start = expires
        .checked_sub(jiff::SignedDuration::from_secs(2))
        .unwrap();
    let at = |t: jiff::Timestamp| format!("@{}", t.strftime("%Y-%m-%d %H:%M:%S"));
    let began = std::time::Instant::now();
    let out = s.faketime(&at(start), &["check-update"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    assert!(began.elapsed() >= std::time::Duration::from_secs(3));
    assert_eq!(s.trusted_version("timestamp"), s.repo.timestamp_version);

    // A run that starts after the expiry refuses it.
    let out = s.faketime(
        &at(expires
            .checked_add(jiff::SignedDuration::from_secs(10))
            .unwrap()),
        &["check-update"],
    );
    assert_eq!(out.status.code(), Some(12), "{}", show(&out));
}

/// A host upgraded from the tough-based updog keeps its trust state: tough's datastore (its
/// re-serialised root, timestamp, snapshot and targets, and `latest_known_time.json`) is read by
/// tuf-client as it is, so a repository rolled back below what tough trusted is refused (13), and
/// the clock record still counts.
#[test]
fn tough_written_datastore_keeps_rollback_and_clock_protection() {
    if !tools() {
        return;
    }
    let w = TwoReleases::new(MIB, MIB, 2, RoleVersions::all(5));
    let tuf = w.host.root.join("var/lib/updog/tuf");
    std::fs::create_dir_all(&tuf).unwrap();
    let root = std::fs::read(w.host.root.join("usr/share/updog/root.json")).unwrap();
    let meta: url::Url = format!("{}metadata/", w.server.url()).parse().unwrap();
    let targets: url::Url = format!("{}targets/", w.server.url()).parse().unwrap();
    // What the previous updog left: tough's RepositoryLoader with the datastore in place.
    rt().block_on(async {
        tough::RepositoryLoader::new(&root, meta, targets)
            .datastore(&tuf)
            .load()
            .await
            .unwrap();
    });
    for f in [
        "root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "latest_known_time.json",
    ] {
        assert!(tuf.join(f).is_file(), "tough wrote {f}");
    }
    let tough_ts = std::fs::read(tuf.join("timestamp.json")).unwrap();

    // The repository (or a mirror) goes back to version 3: refused on the first run.
    w.republish(RoleVersions::all(3));
    let err = w.expect(&["check-update"], 13);
    assert!(err.contains("lower than the trusted"), "{err}");
    assert_eq!(std::fs::read(tuf.join("timestamp.json")).unwrap(), tough_ts);

    // Back at version 6: accepted, and from now on the datastore holds the bytes served.
    w.republish(RoleVersions::all(6));
    w.expect(&["check-update"], 0);
    assert_eq!(
        std::fs::read(tuf.join("timestamp.json")).unwrap(),
        std::fs::read(w.repo.metadata().join("timestamp.json")).unwrap()
    );

    // tough's clock record format still counts.
    std::fs::write(
        tuf.join("latest_known_time.json"),
        "\"2099-01-01T00:00:00Z\"",
    )
    .unwrap();
    let err = w.expect(&["check-update"], 14);
    assert!(err.contains("the clock went backwards"), "{err}");
}
