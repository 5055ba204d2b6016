//! The `waves` binary, run as a process.

use std::path::Path;
use std::process::{Command, Output};

fn waves(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_waves"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

const START: &str = "2025-08-25T17:00:00Z";

#[test]
fn schedule_table_for_builtin_policy() {
    let o = waves(&["schedule", "default", "--start", START]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for want in [
        "   0: 2025-08-25T18:00:00Z",
        "  20: 2025-08-25T21:00:00Z",
        "1843: 2025-08-31T17:00:00Z",
        "every host eligible by 2025-09-01T17:00:00Z",
        "0     0-20",
        "6     1844-2047",
        "100.0%",
    ] {
        assert!(out.contains(want), "missing {want:?} in\n{out}");
    }
}

#[test]
fn schedule_json_and_svg_for_policy_file() {
    let dir = tempfile::tempdir().unwrap();
    let svg = dir.path().join("chart.svg");
    let policy = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ohno.toml");
    let o = waves(&[
        "schedule",
        policy.to_str().unwrap(),
        "--start",
        START,
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["command"], "schedule");
    assert_eq!(v["waves"]["0"], "2025-08-25T17:30:00Z");
    assert_eq!(v["waves"]["102"], "2025-08-25T18:00:00Z");
    assert_eq!(v["waves"]["1843"], "2025-08-25T20:00:00Z");
    assert_eq!(v["end"], "2025-08-25T20:30:00Z");
    assert_eq!(v["rows"].as_array().unwrap().len(), 5);
    assert_eq!(v["rows"][4]["last_seed"], 2047);
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(
        text.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
        "{text}"
    );
    assert!(text.trim_end().ends_with("</svg>"));
    assert_eq!(text.matches("<polyline").count(), 2);
    assert!(text.contains("ohno.toml from 2025-08-25T17:00:00Z"));
}

#[test]
fn seed_command() {
    let o = waves(&[
        "seed",
        "default",
        "--start",
        START,
        "--seed",
        "20",
        "--now",
        "2025-08-25T21:00:00Z",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("seed 20 becomes eligible at 2025-08-25T21:00:00Z"),
        "{out}"
    );
    assert!(out.contains(": eligible"), "{out}");
    let o = waves(&["seed", "default", "--start", START, "--seed", "2048"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("error: seed 2048 is out of range"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn bad_policy_file_reports_file_field_value() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(
        &p,
        "[[waves]]\nstart_after = '2 fortnights'\nfleet_percentage = 100\n",
    )
    .unwrap();
    let o = waves(&["schedule", p.to_str().unwrap(), "--start", START]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("error: ")
            && err.contains("bad.toml: waves[0].start_after = \"2 fortnights\""),
        "{err}"
    );
    assert!(
        err.contains("  Caused by: bad offset \"2 fortnights\""),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert!(o.stdout.is_empty());
}

#[test]
fn missing_policy_is_io_error() {
    let o = waves(&["schedule", "/nonexistent/policy.toml", "--start", START]);
    assert_eq!(o.status.code(), Some(3));
    assert!(
        stderr(&o).contains("/nonexistent/policy.toml"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = waves(&["schedule", "default", "--start", "next tuesday"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("next tuesday"));
    let o = waves(&["--help"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains("schedule"));
}

#[test]
fn generate_docs_writes_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("docs");
    let o = waves(&["generate-docs", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in [
        "waves.1",
        "waves-schedule.1",
        "waves-seed.1",
        "waves.bash",
        "_waves",
        "waves.fish",
    ] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 100, "{f}");
    }
    let man = std::fs::read_to_string(out.join("waves-schedule.1")).unwrap();
    assert!(man.contains("start"), "{man}");
}

/// `waves seed` without `--now` answers for the current time, not for the release start (a
/// release that started in 2025 has long been open for every seed).
#[test]
fn seed_without_now_evaluates_at_the_current_time() {
    let o = waves(&["seed", "default", "--start", START, "--seed", "2047"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains(": eligible"), "{out}");
    assert!(!out.contains(&format!("at {START}")), "{out}");
}
