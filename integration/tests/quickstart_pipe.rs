//! `quickstart | head` (stdout a closed pipe): the story still runs to its end and the binary
//! exits 0, quietly, instead of panicking on the first line of narration.

use std::process::{Command, Stdio};

#[test]
fn quickstart_into_a_closed_pipe_runs_to_the_end() {
    for tool in ["mkfs.ext4", "debugfs", "sgdisk", "lz4"] {
        if !test_support::require_tool(tool) {
            return;
        }
    }
    let dir = test_support::tempdir();
    let out = dir.path().join("quickstart");
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let run = Command::new(env!("CARGO_BIN_EXE_quickstart"))
        .arg(&out)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(run.status.code(), Some(0), "{stderr}");
    // The story did run: its repository and mirror are there.
    assert!(out.join("mirror").is_dir(), "{stderr}");
}
