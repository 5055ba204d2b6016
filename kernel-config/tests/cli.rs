//! The `kernel-config` binary: fragments export, docs, a hand-made config through check.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kernel-config"))
}

/// This process's umask (the binary inherits it).
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let umask = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(umask.trim(), 8).unwrap()
}

#[test]
fn fragments_and_docs_are_written() {
    let dir = test_support::tempdir();
    let o = bin()
        .args(["fragments", "--out"])
        .arg(dir.path().join("frag"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let dm = std::fs::read_to_string(dir.path().join("frag/10-dm-verity.config")).unwrap();
    assert!(dm.contains("CONFIG_DM_INIT=y"));
    // 0666 less the umask (0644 under the usual 022), as `cp` would leave it, so a build that
    // runs as another user can read it; the temporary file's 0600 used to stay on the output.
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(dir.path().join("frag/10-dm-verity.config"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o7777, 0o666 & !umask(), "{mode:o}");
    let o = bin()
        .args(["generate-docs", "--out"])
        .arg(dir.path().join("docs"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    for f in [
        "kernel-config.1",
        "kernel-config-check.1",
        "kernel-config-merge.1",
        "kernel-config.bash",
        "_kernel-config",
        "kernel-config.fish",
    ] {
        assert!(
            dir.path().join("docs").join(f).metadata().unwrap().len() > 100,
            "{f}"
        );
    }
}

#[test]
fn exported_fragments_as_a_config_boot_and_erofs_needs_its_own() {
    let dir = test_support::tempdir();
    let frag = dir.path().join("frag");
    assert!(
        bin()
            .args(["fragments", "--out"])
            .arg(&frag)
            .status()
            .unwrap()
            .success()
    );
    // All fragments concatenated: a config that satisfies every rule for ext4 and erofs.
    let mut all = String::new();
    for e in std::fs::read_dir(&frag).unwrap() {
        all.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    let cfg = dir.path().join("all.config");
    std::fs::write(&cfg, &all).unwrap();
    for fs in ["ext4", "erofs"] {
        let o = bin()
            .args(["check", "--root-fs", fs, "--config"])
            .arg(&cfg)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{fs}: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    }
    // Without EROFS_FS, an erofs root cannot boot, an ext4 root can.
    std::fs::write(&cfg, all.replace("CONFIG_EROFS_FS=y", "CONFIG_EROFS_FS=m")).unwrap();
    let o = bin()
        .args(["check", "--root-fs", "erofs", "--json", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["report"]["verdict"], "needs-initramfs");
    assert_eq!(json["report"]["findings"][0]["symbol"], "EROFS_FS");
    assert_eq!(json["report"]["findings"][0]["problem"], "module-only");
    assert_eq!(
        bin()
            .args(["check", "--config"])
            .arg(&cfg)
            .status()
            .unwrap()
            .code(),
        Some(0)
    );
}
