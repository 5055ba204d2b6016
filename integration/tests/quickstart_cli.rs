//! The quickstart binary as a new user meets it: `--help`, and a directory it did not make.

use std::process::Command;

fn quickstart() -> Command {
    Command::new(env!("CARGO_BIN_EXE_quickstart"))
}

#[test]
fn help_prints_usage_and_runs_nothing() {
    let cwd = test_support::tempdir();
    for flag in ["--help", "-h"] {
        let o = quickstart()
            .arg(flag)
            .current_dir(cwd.path())
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.starts_with("usage: quickstart [DIR]"), "{out}");
        assert!(
            !cwd.path().join(flag).exists(),
            "{flag} must not become a run directory"
        );
    }
    let o = quickstart()
        .arg("--frobnicate")
        .current_dir(cwd.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown option --frobnicate"));
    assert_eq!(
        std::fs::read_dir(cwd.path()).unwrap().count(),
        0,
        "nothing created"
    );
}

#[test]
fn refuses_a_non_empty_directory_it_did_not_make() {
    let dir = test_support::tempdir();
    let precious = dir.path().join("thesis.tex");
    std::fs::write(&precious, "years of work").unwrap();
    let o = quickstart().arg(dir.path()).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("not made by the quickstart"), "{err}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "years of work");
}

#[test]
fn run_dir_rules() {
    let base = test_support::tempdir();
    // New: created and marked.
    let new = base.path().join("new");
    integration::prepare_run_dir(&new).unwrap();
    assert!(new.join(integration::RUN_DIR_MARKER).is_file());
    // Ours from an earlier run: emptied.
    std::fs::write(new.join("old-disk.img"), "x").unwrap();
    integration::prepare_run_dir(&new).unwrap();
    assert!(!new.join("old-disk.img").exists());
    // Empty: used.
    let empty = base.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    integration::prepare_run_dir(&empty).unwrap();
    // Foreign, non-empty: refused and untouched; a file: refused.
    let foreign = base.path().join("foreign");
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("keep"), "k").unwrap();
    assert!(integration::prepare_run_dir(&foreign).is_err());
    assert!(foreign.join("keep").is_file());
    let file = base.path().join("file");
    std::fs::write(&file, "f").unwrap();
    assert!(integration::prepare_run_dir(&file).is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "f");
}
