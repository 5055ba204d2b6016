//! Exit statuses and messages of the failures an operator meets (issues 11 and 12): each names
//! what is wrong and where, with the documented exit code; one retry budget with a deadline.

mod common;

use common::*;
use std::io::Read;
use std::net::TcpListener;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use test_support::http::Fault;

/// The scene: 1.0.0 running, 1.1.0 offered over loopback HTTP.
type World = TwoReleases;

fn world() -> World {
    TwoReleases::new(MIB, MIB, 2, RoleVersions::all(1))
}

impl TwoReleases {
    fn requests_for(&self, suffix: &str) -> usize {
        self.server
            .requests()
            .iter()
            .filter(|r| r.path.ends_with(suffix))
            .count()
    }

    fn write_config(&self, text: &str) {
        std::fs::write(self.host.root.join("etc/updog.toml"), text).unwrap();
    }

    fn assert_running_set_safe(&self) {
        assert_eq!(self.host.next_boot(), Some(signpost::SetName::A));
    }
}

fn contains_all(haystack: &str, needles: &[&str]) {
    for n in needles {
        assert!(haystack.contains(n), "expected {n:?} in:\n{haystack}");
    }
}

// --- configuration ---------------------------------------------------------------------------

#[test]
fn broken_local_root_is_a_configuration_error_naming_the_file() {
    if !tools() {
        return;
    }
    let w = world();
    let root = w.host.root.join("usr/share/updog/root.json");
    let good = std::fs::read(&root).unwrap();
    std::fs::write(&root, b"{ not json").unwrap();
    let err = w.expect(&["check-update"], 2);
    contains_all(
        &err,
        &[
            &format!("error: the trusted root {} is not usable", root.display()),
            "hint:",
        ],
    );
    assert!(!err.contains("verification"), "{err}");
    // Valid JSON, but not signed by its own keys (a byte of the signed part changed).
    let text = String::from_utf8(good.clone()).unwrap();
    let tampered = text.replacen("\"version\": 1", "\"version\": 7", 1);
    assert_ne!(text, tampered);
    std::fs::write(&root, tampered).unwrap();
    let err = w.expect(&["check-update"], 2);
    contains_all(
        &err,
        &[
            &root.display().to_string(),
            "signatures do not verify against its own keys",
        ],
    );
    std::fs::write(&root, good).unwrap();
    w.expect(&["check-update"], 0);
}

#[test]
fn unsupported_url_scheme_is_a_configuration_error_naming_the_key() {
    if !tools() {
        return;
    }
    let w = world();
    w.host.set_config("ftp://updates.example/", "");
    let err = w.expect(&["check-update"], 2);
    contains_all(
        &err,
        &[
            "`metadata_base_url` = \"ftp://updates.example/metadata/\"",
            "scheme \"ftp\"",
            "hint: set `metadata_base_url`",
        ],
    );
    assert!(!err.contains("network"), "{err}");
    // Only the targets URL wrong: that key is named.
    let good = w.server.url();
    w.write_config(&format!(
        "metadata_base_url = \"{good}metadata/\"\ntargets_base_url = \"gopher://h/targets/\"\n\
         seed = 1\nretries = 0\n"
    ));
    let err = w.expect(&["check-update"], 2);
    contains_all(&err, &["`targets_base_url`", "scheme \"gopher\""]);
}

#[test]
fn repository_answering_not_found_everywhere_says_so_and_where() {
    if !tools() {
        return;
    }
    let w = world();
    let base = format!("{}nothing-here/", w.server.url());
    w.host.set_config(&base, "");
    let err = w.expect(&["check-update"], 15);
    contains_all(
        &err,
        &[
            &format!("no update repository at {base}metadata/"),
            &format!("{base}metadata/timestamp.json was not found"),
            "hint: check metadata_base_url",
        ],
    );
}

#[test]
fn expired_root_names_the_real_repository_and_no_useless_command() {
    if !tools() {
        return;
    }
    let w = world();
    // This host ships a root (same keys) that expired in 2020; the repository has nothing newer.
    let shipped = w.host.root.join("usr/share/updog/root.json");
    test_support::tuf::write_root(
        &shipped,
        1,
        &[&w.repo.key],
        1,
        &[&w.repo.key],
        "2020-01-01T00:00:00Z".parse().unwrap(),
    );
    let err = w.expect(&["check-update"], 12);
    contains_all(
        &err,
        &[
            "this host's trusted root (version 1) expired at 2020-01-01T00:00:00Z",
            &format!("the repository at {}metadata/", w.server.url()),
            "hint: refreshing the repository's timestamp, snapshot or targets does not help",
            "N+1.root.json",
        ],
    );
    assert!(!err.contains("pubsys refresh-repo"), "{err}");
}

// --- verification, not network -----------------------------------------------------------------

/// Changes one character of a signature in a metadata file: same length, valid JSON, and the
/// signed content is unchanged, but the bytes no longer hash to what the referring role signed.
fn mix(path: &std::path::Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find("\"sig\"").expect("a signature") + 5;
    let rest = &text[at..];
    let q = rest.find('"').unwrap() + 1;
    let i = at + q;
    let c = text.as_bytes()[i];
    let swapped = if c == b'0' { '1' } else { '0' };
    let mut out = text[..i].to_owned();
    out.push(swapped);
    out.push_str(&text[i + 1..]);
    std::fs::write(path, out).unwrap();
}

#[test]
fn metadata_hash_mismatch_is_a_verification_failure() {
    if !tools() {
        return;
    }
    for role in ["snapshot.json", "targets.json"] {
        let w = world();
        let file = w.repo.metadata().join(format!("1.{role}"));
        mix(&file);
        let err = w.expect(&["update"], 11);
        assert!(!err.contains("proxy"), "{role}: no network advice: {err}");
        w.assert_running_set_safe();
    }
}

#[test]
fn target_served_shorter_than_signed_is_a_verification_failure_without_retries() {
    if !tools() {
        return;
    }
    let w = world();
    let file = w.repo.target_file(&w.new.root_name);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = w.expect(&["update"], 11);
    contains_all(
        &err,
        &[
            &format!("{}: ", w.new.root_name),
            &format!("but the signed length is {} bytes", bytes.len()),
            "hint: the repository's copy of the target is shorter",
        ],
    );
    // Asking again would get the same bytes: one request.
    assert_eq!(w.requests_for(&w.new.root_name), 1);
    w.assert_running_set_safe();
}

#[test]
fn short_local_target_is_a_verification_failure() {
    if !tools() {
        return;
    }
    let w = world();
    let file = w.repo.target_file(&w.new.boot_name);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() - 1]).unwrap();
    w.host
        .set_config(&format!("file://{}/", w.repo.dir.display()), "");
    let err = w.expect(&["update"], 11);
    contains_all(&err, &[&w.new.boot_name, "signed length"]);
    w.assert_running_set_safe();
}

#[test]
fn cut_connection_stays_a_network_failure() {
    if !tools() {
        return;
    }
    let w = world();
    w.server.set_fault(Fault::CutAfter {
        suffix: w.new.root_name.clone(),
        bytes: 0,
        times: 100,
    });
    let err = w.expect(&["update"], 15);
    contains_all(
        &err,
        &["download stopped at byte 0", "resumes where it stopped"],
    );
    // retries = 2 (the test default): 3 attempts.
    assert_eq!(w.requests_for(&w.new.root_name), 3);
}

// --- one retry budget ---------------------------------------------------------------------------

#[test]
fn retries_n_means_exactly_n_plus_one_attempts() {
    if !tools() {
        return;
    }
    for retries in [0u32, 3] {
        let w = world();
        w.host
            .set_config(&w.server.url(), &format!("retries = {retries}\n"));
        // An image target: the stream's retries no longer wrap the connection's.
        w.server.set_fault(Fault::Status {
            suffix: w.new.root_name.clone(),
            status: 503,
        });
        w.expect(&["update"], 15);
        assert_eq!(
            w.requests_for(&w.new.root_name),
            retries as usize + 1,
            "image, retries = {retries}"
        );
        // Metadata.
        w.server.clear_requests();
        w.server.set_fault(Fault::Status {
            suffix: "timestamp.json".into(),
            status: 503,
        });
        w.expect(&["check-update"], 15);
        assert_eq!(
            w.requests_for("timestamp.json"),
            retries as usize + 1,
            "metadata, retries = {retries}"
        );
    }
}

/// A server that serves the files under `root` but never answers a request whose path ends with
/// `stall` (it accepts, reads the request and holds the connection open).
fn stalling_server(root: PathBuf, stall: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let mut buf = vec![0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = head
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .split('?')
                .next()
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            if path.ends_with(stall) {
                held.push(s);
                continue;
            }
            let answer = match std::fs::read(root.join(&path)) {
                Ok(body) if !path.contains("..") => {
                    let mut a = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    a.extend_from_slice(&body);
                    a
                }
                _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = std::io::Write::write_all(&mut s, &answer);
        }
    });
    url
}

#[test]
fn a_stalling_server_ends_within_the_retry_deadline() {
    if !tools() {
        return;
    }
    let w = world();
    let tuning = "retries = 1000\nretry_backoff_ms = 0\nread_timeout_secs = 30\n\
                  connect_timeout_secs = 30\nretry_deadline_secs = 2\nseed = 1\n";
    // Metadata from a server that never answers.
    let stall = stalling_server(w.repo.dir.clone(), "");
    w.write_config(&format!(
        "metadata_base_url = \"{stall}metadata/\"\ntargets_base_url = \"{stall}targets/\"\n{tuning}"
    ));
    let started = Instant::now();
    let err = w.expect(&["check-update"], 15);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(err.contains("retry deadline of 2s"), "{err}");

    // The root image from a server that never answers (metadata and manifest fine).
    let root_name: &'static str = Box::leak(w.new.root_name.clone().into_boxed_str());
    let partial = stalling_server(w.repo.dir.clone(), root_name);
    w.write_config(&format!(
        "metadata_base_url = \"{partial}metadata/\"\ntargets_base_url = \"{partial}targets/\"\n\
         reboot_command = [\"true\"]\n{tuning}"
    ));
    let started = Instant::now();
    let err = w.expect(&["update"], 15);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}: {err}");
    assert!(err.contains("retry deadline of 2s"), "{err}");
    w.assert_running_set_safe();
}

// --- partition-table commands ----------------------------------------------------------------

fn gpt_bytes(disk: &std::path::Path) -> Vec<u8> {
    // Both tables: the first and the last MiB of the disk.
    let bytes = std::fs::read(disk).unwrap();
    [&bytes[..MIB as usize], &bytes[bytes.len() - MIB as usize..]].concat()
}

#[test]
fn update_revert_with_nothing_applied_says_so_and_leaves_the_table_alone() {
    if !tools() {
        return;
    }
    let w = world();
    let before = gpt_bytes(&w.host.disk);
    let err = w.expect(&["update-revert"], 18);
    contains_all(
        &err,
        &[
            "error: nothing to revert: no update is applied (set A already boots next)",
            "hint:",
        ],
    );
    assert!(!err.contains("cancelled"), "{err}");
    assert_eq!(
        gpt_bytes(&w.host.disk),
        before,
        "the GPT must not be rewritten"
    );
    // With an update applied, revert works and the running set boots next again.
    w.expect(&["update"], 0);
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::B));
    w.expect(&["update-revert"], 0);
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));
    let again = gpt_bytes(&w.host.disk);
    w.expect(&["update-revert"], 18);
    assert_eq!(gpt_bytes(&w.host.disk), again);
}

#[test]
fn update_apply_with_nothing_staged_gives_a_hint() {
    if !tools() {
        return;
    }
    let w = world();
    let err = w.expect(&["update-apply"], 18);
    contains_all(&err, &["hint: nothing is staged", "updog update-image"]);
}

#[test]
fn missing_disk_is_named_with_a_hint() {
    if !tools() {
        return;
    }
    let w = world();
    let missing = w.dir.join("no-such-disk.img");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_updog"))
        .arg("--host-root")
        .arg(&w.host.root)
        .arg("--disk")
        .arg(&missing)
        .args(["--active", "a", "update"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    contains_all(
        &err,
        &[
            &format!(
                "error: the disk {} given with --disk does not exist",
                missing.display()
            ),
            "hint: --disk takes",
        ],
    );
    assert!(!err.contains("on the OS disk"), "{err}");
}
