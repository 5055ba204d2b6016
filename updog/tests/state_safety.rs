//! updog's state on disk (issue 11): links and writable directories in the state directories are
//! refused without writing through them, and the trust datastore is never silently ignored.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The scene: 1.0.0 running, 1.1.0 offered over loopback HTTP.
type World = TwoReleases;

fn world() -> World {
    TwoReleases::new(MIB, MIB, 2, RoleVersions::all(1))
}

impl TwoReleases {
    fn state(&self) -> PathBuf {
        self.host.root.join("var/lib/updog")
    }

    /// A file outside the state that must never change.
    fn victim(&self) -> PathBuf {
        let p = self.dir.join("victim");
        std::fs::write(&p, b"precious bytes\n").unwrap();
        p
    }
}

fn assert_victim_intact(p: &Path) {
    assert_eq!(std::fs::read(p).unwrap(), b"precious bytes\n");
}

fn assert_empty_dir(p: &Path) {
    let n = std::fs::read_dir(p).unwrap().count();
    assert_eq!(n, 0, "{} must stay empty", p.display());
}

/// The error names `path`, says what is wrong and gives a hint.
fn assert_unsafe(stderr: &str, path: &Path, what: &str) {
    assert!(
        stderr.contains(&format!("error: {}", path.display())),
        "must name {}: {stderr}",
        path.display()
    );
    assert!(stderr.contains(what), "must say {what:?}: {stderr}");
    assert!(stderr.contains("hint: updog runs as root"), "{stderr}");
}

#[test]
fn linked_lock_file_is_refused_and_its_target_untouched() {
    if !tools() {
        return;
    }
    let w = world();
    let victim = w.victim();
    std::fs::create_dir_all(w.state()).unwrap();
    let lock = w.state().join("lock");
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let err = w.expect(&["check-update"], 19);
    assert_unsafe(&err, &lock, "is a symbolic link");
    assert_victim_intact(&victim);
}

#[test]
fn linked_state_directory_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    let elsewhere = w.dir.join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::create_dir_all(w.host.root.join("var/lib")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, w.state()).unwrap();
    let err = w.expect(&["check-update"], 19);
    assert_unsafe(&err, &w.state(), "is a symbolic link");
    assert_empty_dir(&elsewhere);
}

#[test]
fn world_writable_state_directory_is_refused() {
    if !tools() {
        return;
    }
    let w = world();
    std::fs::create_dir_all(w.state()).unwrap();
    std::fs::set_permissions(w.state(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = w.expect(&["check-update"], 19);
    assert_unsafe(&err, &w.state(), "world-writable");
    assert!(err.contains("mode 0777"), "{err}");
    assert_empty_dir(&w.state());
    // Fixed as the hint says, the same host works.
    std::fs::set_permissions(w.state(), std::fs::Permissions::from_mode(0o755)).unwrap();
    w.expect(&["check-update"], 0);
}

#[test]
fn linked_datastore_directory_and_file_are_refused() {
    if !tools() {
        return;
    }
    let w = world();
    w.expect(&["check-update"], 0);
    let tuf = w.state().join("tuf");

    // A file of the datastore linked to a victim.
    let victim = w.victim();
    let ts = tuf.join("timestamp.json");
    std::fs::remove_file(&ts).unwrap();
    std::os::unix::fs::symlink(&victim, &ts).unwrap();
    let err = w.expect(&["check-update"], 19);
    assert_unsafe(&err, &ts, "is a symbolic link");
    assert_victim_intact(&victim);

    // The whole datastore directory linked elsewhere.
    std::fs::remove_dir_all(&tuf).unwrap();
    let elsewhere = w.dir.join("elsewhere-tuf");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &tuf).unwrap();
    let err = w.expect(&["check-update"], 19);
    assert_unsafe(&err, &tuf, "is a symbolic link");
    assert_empty_dir(&elsewhere);
}

#[test]
fn linked_metadata_cache_resume_and_migration_dirs_are_refused() {
    if !tools() {
        return;
    }
    let w = world();
    w.expect(&["check-update"], 0);
    let victim = w.victim();

    // A cache file linked to a victim.
    let cache = w.state().join("metadata-cache");
    let entry = std::fs::read_dir(&cache)
        .unwrap()
        .next()
        .expect("a cached file")
        .unwrap()
        .path();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&victim, &entry).unwrap();
    let err = w.expect(&["check-update"], 19);
    assert_unsafe(&err, &entry, "is a symbolic link");
    assert_victim_intact(&victim);
    std::fs::remove_file(&entry).unwrap();

    // A resume record linked to a victim.
    let resume = w.state().join("resume");
    std::fs::create_dir_all(&resume).unwrap();
    let record = resume.join("root.json");
    std::os::unix::fs::symlink(&victim, &record).unwrap();
    let err = w.expect(&["update"], 19);
    assert_unsafe(&err, &record, "is a symbolic link");
    assert_victim_intact(&victim);
    std::fs::remove_file(&record).unwrap();

    // The migration cache directory linked elsewhere.
    let elsewhere = w.dir.join("elsewhere-migrations");
    std::fs::create_dir(&elsewhere).unwrap();
    let migrations = w.host.root.join("var/lib/bottlerocket-migrations");
    std::os::unix::fs::symlink(&elsewhere, &migrations).unwrap();
    let err = w.expect(&["update"], 19);
    assert_unsafe(&err, &migrations, "is a symbolic link");
    assert_empty_dir(&elsewhere);
    // The running set still boots next.
    assert_eq!(w.host.next_boot(), Some(signpost::SetName::A));

    // With the link gone, the update goes through.
    std::fs::remove_file(&migrations).unwrap();
    w.expect(&["update"], 0);
    assert_victim_intact(&victim);
}

const TRUST_FILES: [&str; 5] = [
    "root.json",
    "timestamp.json",
    "snapshot.json",
    "targets.json",
    "latest_known_time.json",
];

#[test]
fn damaged_trust_files_are_refused_with_how_to_recover() {
    if !tools() {
        return;
    }
    let w = world();
    w.expect(&["check-update"], 0);
    let tuf = w.state().join("tuf");
    for name in TRUST_FILES {
        let path = tuf.join(name);
        let good = std::fs::read(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
        // An interrupted truncate-then-write leaves an empty file; a damaged disk garbage.
        for bad in [&b""[..], &b"{\"signed\": 42"[..]] {
            std::fs::write(&path, bad).unwrap();
            let err = w.expect(&["check-update"], 11);
            assert!(
                err.contains(&format!(
                    "error: the trust state file {} is damaged",
                    path.display()
                )),
                "{name}: {err}"
            );
            assert!(
                err.contains("rollback, freeze and clock"),
                "{name} must say what it protects: {err}"
            );
            assert!(
                err.contains("hint: restore") && err.contains("delete it knowingly"),
                "{name} must say how to recover: {err}"
            );
            if bad.is_empty() {
                assert!(err.contains("the file is empty"), "{err}");
            }
            // Left as it was, for the operator to inspect.
            assert_eq!(std::fs::read(&path).unwrap(), bad, "{name}");
        }
        std::fs::write(&path, good).unwrap();
    }
    w.expect(&["check-update"], 0);
}

#[test]
fn rollback_is_still_refused_when_the_timestamp_file_is_damaged() {
    if !tools() {
        return;
    }
    let w = TwoReleases::new(MIB, MIB, 2, RoleVersions::all(5));
    w.expect(&["check-update"], 0);
    // The repository (or a mirror) goes back to version 3.
    w.republish(RoleVersions::all(3));
    let err = w.expect(&["check-update"], 13);
    assert!(err.contains("older") || err.contains("rollback"), "{err}");
    // A crash while the timestamp was rewritten: tough alone would read "no state" and accept
    // version 3. updog refuses.
    let ts = w.state().join("tuf/timestamp.json");
    let good = std::fs::read(&ts).unwrap();
    std::fs::write(&ts, b"").unwrap();
    w.expect(&["check-update"], 11);
    std::fs::write(&ts, &good).unwrap();
    w.expect(&["check-update"], 13);
}

#[test]
fn trust_state_is_replaced_atomically_and_leaves_no_temporary_files() {
    if !tools() {
        return;
    }
    let w = world();
    // A working copy left by a killed updog is cleaned up.
    std::fs::create_dir_all(w.state().join(".tuf-work-stale")).unwrap();
    std::fs::write(w.state().join(".tuf-work-stale/timestamp.json"), b"x").unwrap();
    w.expect(&["check-update"], 0);
    let tuf = w.state().join("tuf");
    let before = std::fs::metadata(tuf.join("latest_known_time.json")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    w.expect(&["check-update"], 0);
    let names: Vec<String> = std::fs::read_dir(w.state())
        .unwrap()
        .chain(std::fs::read_dir(&tuf).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.starts_with(".tmp-") && !n.starts_with(".tuf-work-")),
        "{names:?}"
    );
    for name in TRUST_FILES {
        assert!(tuf.join(name).is_file(), "{name} in {names:?}");
    }
    // The latest known time was replaced by a rename (a new inode), not rewritten in place.
    let after = std::fs::metadata(tuf.join("latest_known_time.json")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_ne!(before.ino(), after.ino());
}
