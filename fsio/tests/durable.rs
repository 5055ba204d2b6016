//! The shared behaviour on real files: links, failures, modes, concurrency.

use abos_fsio::{AtomicFile, Mode, Op, PRIVATE, PUBLIC};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Every name in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn no_temp_files(dir: &Path) {
    let n = names(dir);
    assert!(
        n.iter().all(|n| !n.starts_with(abos_fsio::TEMP_PREFIX)),
        "{n:?}"
    );
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

/// The effective uid, from /proc (the workspace forbids `unsafe`, so no `geteuid`).
fn euid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn replaces_a_symlink_instead_of_following_it() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = t.path().join("state.json");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    abos_fsio::write_atomic(&link, b"new", PRIVATE).unwrap();
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(std::fs::read(&link).unwrap(), b"new");
    assert_eq!(mode(&link), 0o600);
    // A dangling link is replaced too, and its target is not created.
    let dangling = t.path().join("dangling");
    std::os::unix::fs::symlink(t.path().join("nowhere"), &dangling).unwrap();
    abos_fsio::write_atomic(&dangling, b"x", PUBLIC).unwrap();
    assert!(!t.path().join("nowhere").exists());
    assert!(std::fs::symlink_metadata(&dangling).unwrap().is_file());
    no_temp_files(t.path());
}

#[test]
fn a_destination_that_is_a_directory_fails_and_leaves_no_temp_file() {
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("inside"), b"kept").unwrap();
    let e = abos_fsio::write_atomic(&dest, b"new", PUBLIC).unwrap_err();
    assert_eq!(e.op(), Op::Rename, "{e}");
    assert_eq!(e.path(), dest);
    assert!(e.to_string().contains("out"), "{e}");
    assert_eq!(names(t.path()), ["out"]);
    assert_eq!(std::fs::read(dest.join("inside")).unwrap(), b"kept");
}

#[test]
fn a_read_only_directory_fails_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("ro");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("f"), b"old").unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let result = abos_fsio::write_atomic(&dir.join("f"), b"new", PUBLIC);
    if euid() == 0 {
        // Root writes anyway: then the write must be complete and clean.
        result.unwrap();
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"new");
    } else {
        let e = result.unwrap_err();
        assert_eq!(e.op(), Op::CreateTemp, "{e}");
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"old");
    }
    assert_eq!(names(&dir), ["f"]);
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn a_missing_directory_is_named() {
    let t = tempfile::tempdir().unwrap();
    let e = abos_fsio::write_atomic(&t.path().join("no/such/file"), b"x", PUBLIC).unwrap_err();
    assert_eq!(e.op(), Op::OpenDir);
    assert_eq!(e.path(), t.path().join("no/such"));
    assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
}

#[test]
fn a_dropped_atomic_file_leaves_the_old_content_and_no_temp_file() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("big");
    std::fs::write(&path, b"old").unwrap();
    let mut f = AtomicFile::create(&path, PUBLIC).unwrap();
    assert!(f.temp_path().exists());
    f.write_all(&[7u8; 100_000]).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    drop(f);
    assert_eq!(names(t.path()), ["big"]);
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
}

#[test]
fn the_content_is_complete_after_the_rename() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("image");
    let content: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut f = AtomicFile::create(&path, PUBLIC).unwrap();
    for chunk in content.chunks(65_537) {
        f.write_all(chunk).unwrap();
    }
    assert!(!path.exists(), "visible before commit");
    f.commit().unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), content);
    abos_fsio::write_atomic(&path, b"short", PUBLIC).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"short");
    no_temp_files(t.path());
}

/// Runs in a child process started under a given umask by
/// [`exact_modes_ignore_the_umask_and_umask_modes_follow_it`] (ignored on its own).
#[test]
#[ignore = "the child process of exact_modes_ignore_the_umask_and_umask_modes_follow_it"]
fn umask_child() {
    // Run alone (`--include-ignored`), there is nothing to do.
    let Ok(dir) = std::env::var("ABOS_FSIO_UMASK_CHILD") else {
        return;
    };
    let dir = Path::new(&dir);
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap()
        .trim()
        .to_owned();
    std::fs::write(dir.join("umask"), &umask).unwrap();
    for m in [0o644, 0o600, 0o640, 0o755, 0o666] {
        for (kind, mode) in [("exact", Mode::Exact(m)), ("umask", Mode::Umask(m))] {
            let p = dir.join(format!("{kind}-atomic-{m:o}"));
            abos_fsio::write_atomic(&p, b"x", mode).unwrap();
            let q = dir.join(format!("{kind}-new-{m:o}"));
            abos_fsio::create_new(&q, mode).unwrap();
            let r = dir.join(format!("{kind}-wnew-{m:o}"));
            abos_fsio::write_new(&r, b"x", mode).unwrap();
            let s = dir.join(format!("{kind}-stream-{m:o}"));
            AtomicFile::create(&s, mode).unwrap().commit().unwrap();
        }
    }
}

#[test]
fn exact_modes_ignore_the_umask_and_umask_modes_follow_it() {
    let exe = std::env::current_exe().unwrap();
    for umask in ["077", "000", "027"] {
        let t = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(r#"umask {umask} && exec "$0" "$@""#))
            .arg(&exe)
            .args(["--exact", "umask_child", "--ignored", "--test-threads=1"])
            .stdout(std::process::Stdio::null())
            .env("ABOS_FSIO_UMASK_CHILD", t.path())
            .status()
            .unwrap();
        assert!(status.success());
        // The child really ran under that umask.
        let seen = std::fs::read_to_string(t.path().join("umask")).unwrap();
        assert_eq!(seen.trim_start_matches('0'), umask.trim_start_matches('0'));
        let mask = u32::from_str_radix(umask, 8).unwrap();
        for m in [0o644, 0o600, 0o640, 0o755, 0o666] {
            for kind in ["atomic", "new", "wnew", "stream"] {
                let p = t.path().join(format!("exact-{kind}-{m:o}"));
                assert_eq!(mode(&p), m, "{} under umask {umask}", p.display());
                let p = t.path().join(format!("umask-{kind}-{m:o}"));
                assert_eq!(mode(&p), m & !mask, "{} under umask {umask}", p.display());
            }
        }
    }
}

#[test]
fn concurrent_writers_each_leave_one_complete_file() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("timestamp.json");
    let contents: Vec<Vec<u8>> = (0..4u8).map(|i| vec![b'a' + i; 256 * 1024]).collect();
    std::fs::write(&path, &contents[0]).unwrap();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = std::fs::read(&path).unwrap();
                assert!(contents.contains(&got), "a mixed or short file");
                reads += 1;
            }
            reads
        });
        let writers: Vec<_> = contents
            .iter()
            .map(|c| {
                let path = &path;
                s.spawn(move || {
                    for _ in 0..20 {
                        abos_fsio::write_atomic(path, c, PUBLIC).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
    });
    assert!(contents.contains(&std::fs::read(&path).unwrap()));
    assert_eq!(names(t.path()), ["timestamp.json"]);
}

#[test]
fn concurrent_processes_leave_one_complete_file() {
    // Threads above race inside one process; here a second process (this test binary again,
    // running `writer_child`) races this one.
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("f");
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(&exe)
        .args(["--exact", "writer_child", "--ignored", "--test-threads=1"])
        .env("ABOS_FSIO_WRITER_CHILD", &path)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mine = vec![b'p'; 300_000];
    for _ in 0..30 {
        abos_fsio::write_atomic(&path, &mine, PUBLIC).unwrap();
    }
    assert!(child.wait().unwrap().success());
    let got = std::fs::read(&path).unwrap();
    assert!(got == mine || got == vec![b'c'; 300_000]);
    assert_eq!(names(t.path()), ["f"]);
}

/// The other process of [`concurrent_processes_leave_one_complete_file`] (ignored on its own).
#[test]
#[ignore = "the child process of concurrent_processes_leave_one_complete_file"]
fn writer_child() {
    let Ok(path) = std::env::var("ABOS_FSIO_WRITER_CHILD") else {
        return;
    };
    for _ in 0..30 {
        abos_fsio::write_atomic(Path::new(&path), &vec![b'c'; 300_000], PUBLIC).unwrap();
    }
}

#[test]
fn create_new_refuses_an_existing_path() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("key.pem");
    let mut f = abos_fsio::create_new(&path, PRIVATE).unwrap();
    f.write_all(b"secret").unwrap();
    drop(f);
    let e = abos_fsio::create_new(&path, PRIVATE).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(e.op(), Op::Create);
    assert_eq!(std::fs::read(&path).unwrap(), b"secret");
    // A dangling link is an existing entry: neither followed nor replaced.
    let link = t.path().join("link");
    std::os::unix::fs::symlink(t.path().join("target"), &link).unwrap();
    let e = abos_fsio::create_new(&link, PRIVATE).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert!(!t.path().join("target").exists());
    assert_eq!(names(t.path()), ["key.pem", "link"]);
}

#[test]
fn write_new_refuses_an_existing_path_and_leaves_no_temp_file() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("root.json");
    abos_fsio::write_new(&path, b"first", PUBLIC).unwrap();
    let e = abos_fsio::write_new(&path, b"second", PUBLIC).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(std::fs::read(&path).unwrap(), b"first");
    let link = t.path().join("link");
    std::os::unix::fs::symlink(t.path().join("target"), &link).unwrap();
    let e = abos_fsio::write_new(&link, b"x", PUBLIC).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
    assert_eq!(names(t.path()), ["link", "root.json"]);
}

#[test]
fn remove_takes_the_link_not_its_target_and_tolerates_absence() {
    let t = tempfile::tempdir().unwrap();
    let victim = t.path().join("victim");
    std::fs::write(&victim, b"precious").unwrap();
    let link = t.path().join("link");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    assert!(abos_fsio::remove(&link).unwrap());
    assert!(!abos_fsio::remove(&link).unwrap());
    assert!(!abos_fsio::remove(&t.path().join("no/such")).unwrap());
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    std::fs::create_dir(t.path().join("d")).unwrap();
    let e = abos_fsio::remove(&t.path().join("d")).unwrap_err();
    assert_eq!(e.op(), Op::Remove);
}

#[test]
fn sync_helpers_do_not_follow_links() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(t.path().join("a/b")).unwrap();
    std::fs::write(t.path().join("a/b/f"), b"x").unwrap();
    std::os::unix::fs::symlink("/nonexistent", t.path().join("a/dangling")).unwrap();
    std::os::unix::fs::symlink(t.path().join("a/b/f"), t.path().join("a/l")).unwrap();
    abos_fsio::sync_tree(t.path()).unwrap();
    let e = abos_fsio::sync_file(&t.path().join("a/l")).unwrap_err();
    assert_eq!(e.op(), Op::Open);
    abos_fsio::sync_file(&t.path().join("a/b/f")).unwrap();
    abos_fsio::sync_dir(&t.path().join("a")).unwrap();
}
