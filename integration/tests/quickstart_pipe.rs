//! `quickstart | head` (stdout a closed pipe): the story still runs to its end and the binary
//! exits 0, quietly, instead of panicking on the first line of narration.

use std::process::{Command, Stdio};

#[test]
fn quickstart_into_a_closed_pipe_runs_to_the_end() {
    for tool in ["mkfs.ext4", "debugfs", "sgdisk", "lz4", "etcd"] {
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
    // And its fleet chapter to the end: every host healthy on the fixed 1.2.0 (status files),
    // after f1 alone went into the halted 1.1.0 and back, then one host at a time (audit trail).
    for host in ["f1", "f2", "f3"] {
        let path = out.join(format!("fleet/host-{host}/var/lib/updog/status.json"));
        let st: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(st["state"], "healthy", "{host}: {st}");
        assert_eq!(st["running_version"], "1.2.0", "{host}: {st}");
    }
    let audit = std::fs::read_to_string(out.join("fleet/audit")).unwrap();
    let trail: Vec<(&str, &str)> = audit
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], f[1])
        })
        .collect();
    assert_eq!(
        trail,
        [
            ("reboot-start", "f1"),
            ("reboot-start", "f1"),
            ("reboot-start", "f1"),
            ("healthy", "f1"),
            ("reboot-start", "f2"),
            ("healthy", "f2"),
            ("reboot-start", "f3"),
            ("healthy", "f3"),
        ],
        "{audit}"
    );
}
