//! Issue 11: updog applies `Manifest::validate`'s rules (the ones `pubsys manifest validate`
//! enforces) entry by entry. A broken entry for another variant or arch is skipped, with a
//! warning; a broken entry for this host is refused, and the disk is not touched.

mod common;

use common::*;
use test_support::http::Server;
use update_metadata::Manifest;

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    repo: Repo,
    _server: Server,
    url: String,
    rel: Vec<Release>,
}

fn world() -> World {
    let dir = test_support::tempdir();
    let path = dir.path().to_path_buf();
    let repo = Repo::new(&path);
    let server = Server::serve_dir(&repo.dir);
    let url = server.url();
    let rel = ["1.0.0", "1.1.0"]
        .iter()
        .map(|v| make_release(&path, v, MIB, &[]))
        .collect();
    World {
        _dir: dir,
        dir: path,
        repo,
        _server: server,
        url,
        rel,
    }
}

impl World {
    fn files(&self) -> Vec<std::path::PathBuf> {
        self.rel.iter().flat_map(|r| r.target_files()).collect()
    }
    fn host(&self) -> Host {
        Host::new(&self.dir, &self.repo, &self.url, &self.rel[0], 4, "")
    }
    fn good(&self) -> Manifest {
        manifest(&[&self.rel[0], &self.rel[1]])
    }
}

fn code(out: &std::process::Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

/// An entry for another arch than any we know, and one for another variant whose waves are out
/// of order: the host updates as if they were not there, and says it skipped them.
#[test]
fn broken_entries_of_other_hosts_are_skipped() {
    if !tools() {
        return;
    }
    let w = world();
    let mut doc: serde_json::Value = serde_json::from_slice(&w.good().to_vec_pretty()).unwrap();
    let mut riscv = doc["updates"][1].clone();
    riscv["arch"] = "riscv64".into();
    let mut other = doc["updates"][1].clone();
    other["variant"] = "other-variant".into();
    other["waves"] =
        serde_json::json!({"0": "2030-01-02T00:00:00Z", "100": "2030-01-01T00:00:00Z"});
    let updates = doc["updates"].as_array_mut().unwrap();
    updates.push(riscv);
    updates.push(other);
    w.repo.publish_bytes(
        &serde_json::to_vec_pretty(&doc).unwrap(),
        &w.files(),
        RoleVersions::all(1),
    );
    let host = w.host();

    let out = host.updog(&["check-update"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{VARIANT} 1.1.0")
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("skipping updates[2]") && err.contains("riscv64"),
        "{}",
        show(&out)
    );
    assert!(
        err.contains("skipping updates[3]") && err.contains("other-variant"),
        "{}",
        show(&out)
    );

    let out = host.updog(&["update", "--now"]);
    assert_eq!(code(&out), 0, "{}", show(&out));
    assert_eq!(host.next_boot(), Some(signpost::SetName::B));
}

/// The host's own newest entry breaks a rule: no update is chosen (not even the older, valid
/// entry), the error names the entry and the rule, and the disk is not touched.
#[test]
fn a_broken_entry_for_this_host_is_refused() {
    if !tools() {
        return;
    }
    type Break = fn(&mut Manifest);
    let cases: [(&str, Break, &str); 3] = [
        (
            "waves out of order",
            |m| {
                m.updates[1].waves.insert(0, ts("2030-01-02T00:00:00Z"));
                m.updates[1].waves.insert(100, ts("2030-01-01T00:00:00Z"));
            },
            "waves",
        ),
        (
            "duplicate entry",
            |m| {
                let dup = m.updates[1].clone();
                m.updates.push(dup);
            },
            "duplicate update",
        ),
        (
            "wave key above 2048",
            |m| {
                m.updates[1].waves.insert(0, ts("2020-01-01T00:00:00Z"));
                m.updates[1].waves.insert(4096, ts("2020-01-02T00:00:00Z"));
            },
            "\"4096\" is above 2048",
        ),
    ];
    for (name, breaker, rule) in cases {
        let w = world();
        let mut m = w.good();
        breaker(&mut m);
        w.repo.publish(&m, &w.files(), RoleVersions::all(1));
        let host = w.host();
        let before = std::fs::read(&host.disk).unwrap();
        for args in [&["check-update"][..], &["update", "--now"][..]] {
            let out = host.updog(args);
            assert_eq!(code(&out), 11, "{name}: {args:?}: {}", show(&out));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains(&format!("this host ({VARIANT} {})", arch()))
                    && err.contains("updates[1]")
                    && err.contains(rule),
                "{name}: {}",
                show(&out)
            );
        }
        assert!(
            std::fs::read(&host.disk).unwrap() == before,
            "{name}: the disk changed"
        );
    }
}
