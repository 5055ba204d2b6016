//! The checker and the merge against a real distribution kernel's config: Debian's current
//! `linux-image-6.1.0-*-amd64`, fetched with `apt-get download` into a cache directory
//! (`$XDG_CACHE_HOME` or `~/.cache`, under `ab-os/kernels/`) on first use.

use kernel_config::check::{Problem, Verdict, check};
use kernel_config::config::{Config, Value};
use kernel_config::fragment::{RootFs, Severity, builtin};
use kernel_config::merge::{ChangeKind, merge};
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn cache_dir() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("ab-os").join("kernels")
}

/// A visible, recorded SKIP (never a silent pass); under CI a failure.
fn skip_or_panic(reason: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{reason}");
    }
    test_support::skip(reason);
}

/// The Debian kernel's `.config`, downloaded and cached on first use; `None` (after a SKIP line)
/// when it cannot be fetched outside CI.
fn debian_config() -> Option<PathBuf> {
    for tool in ["apt-get", "apt-cache", "dpkg-deb"] {
        if !test_support::require_tool(tool) {
            return None;
        }
    }
    let depends = Command::new("apt-cache")
        .args(["depends", "linux-image-amd64"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&depends.stdout);
    let Some(package) = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Depends: "))
        .find(|p| p.starts_with("linux-image-6."))
        .map(str::to_string)
    else {
        skip_or_panic("apt-cache knows no linux-image-amd64 (run apt-get update)");
        return None;
    };
    let dir = cache_dir().join(&package);
    let config = dir.join("config");
    std::fs::create_dir_all(&dir).unwrap();
    // One download at a time (tests run in parallel, and other checkouts share the cache).
    let lock = std::fs::File::create(dir.join(".lock")).unwrap();
    lock.lock().unwrap();
    if config.is_file() {
        return Some(config);
    }
    let work = tempfile::tempdir_in(&dir).unwrap();
    let status = Command::new("apt-get")
        .args(["download", "-q", &package])
        .current_dir(work.path())
        .status()
        .unwrap();
    if !status.success() {
        skip_or_panic(&format!("apt-get download {package} failed (no network?)"));
        return None;
    }
    let deb = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "deb"))
        .unwrap();
    // Only ./boot/config-* is needed: stream the data tarball instead of `dpkg -x` of all modules.
    let mut child = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut found = false;
    {
        let mut archive = tar::Archive::new(child.stdout.take().unwrap());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let path = entry.path().unwrap().into_owned();
            if path
                .to_string_lossy()
                .trim_start_matches("./")
                .starts_with("boot/config-")
            {
                let tmp = work.path().join("config");
                entry.unpack(&tmp).unwrap();
                std::fs::rename(&tmp, &config).unwrap();
                found = true;
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(found, "no boot/config-* in {}", deb.display());
    Some(config)
}

#[test]
fn debian_kernel_needs_an_initramfs_for_our_image() {
    let Some(path) = debian_config() else { return };
    let config = Config::load(&path).unwrap();
    assert!(
        config.len() > 5000,
        "a real config has thousands of symbols"
    );
    let report = check(&config, &builtin(), RootFs::Ext4);
    assert_eq!(report.verdict, Verdict::CannotBoot);
    let required: Vec<(&str, Problem)> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Required)
        .map(|f| (f.symbol.as_str(), f.problem))
        .collect();
    // Debian builds device-mapper, verity, ext4 and virtio as modules and has no DM_INIT.
    for expected in [
        ("BLK_DEV_DM", Problem::ModuleOnly),
        ("DM_INIT", Problem::Missing),
        ("DM_VERITY", Problem::ModuleOnly),
        ("EXT4_FS", Problem::ModuleOnly),
        ("VIRTIO_BLK", Problem::ModuleOnly),
    ] {
        assert!(
            required.contains(&expected),
            "{expected:?} not in {required:?}"
        );
    }
    assert!(
        !required.iter().any(|(s, _)| *s == "DAX"),
        "DAX=y in Debian's config"
    );
    // A recommended security option Debian sets differently.
    assert!(
        report
            .findings
            .iter()
            .any(|f| f.symbol == "SECURITY_SELINUX_DEVELOP"
                && f.problem == Problem::Wrong
                && f.severity == Severity::Recommended)
    );
    // erofs root: EROFS_FS is required instead of EXT4_FS, and is also a module.
    let erofs = check(&config, &builtin(), RootFs::Erofs);
    assert!(
        erofs
            .findings
            .iter()
            .any(|f| f.symbol == "EROFS_FS" && f.problem == Problem::ModuleOnly)
    );
    assert!(!erofs.findings.iter().any(|f| f.symbol == "EXT4_FS"));
}

#[test]
fn fragments_merged_onto_debian_make_it_bootable() {
    let Some(path) = debian_config() else { return };
    let base = Config::load(&path).unwrap();
    let fragments: Vec<_> = builtin()
        .into_iter()
        .filter(|f| f.applies(RootFs::Ext4))
        .collect();
    let merged = merge(&base, "debian", &fragments);
    assert_eq!(merged.conflicts().count(), 0);
    let dm = merged
        .changes
        .iter()
        .find(|c| c.symbol == "BLK_DEV_DM")
        .unwrap();
    assert_eq!(
        (dm.kind, dm.previous.clone(), dm.value.clone()),
        (ChangeKind::OverridesBase, Some(Value::Module), Value::Yes)
    );
    assert!(
        merged
            .changes
            .iter()
            .any(|c| c.symbol == "DM_INIT" && c.kind == ChangeKind::Added)
    );
    let report = check(&merged.config, &builtin(), RootFs::Ext4);
    assert_eq!(report.verdict, Verdict::Bootable, "{:?}", report.findings);
    assert!(report.findings.is_empty());
}

#[test]
fn binary_exit_codes_and_output() {
    let Some(path) = debian_config() else { return };
    let bin = env!("CARGO_BIN_EXE_kernel-config");
    let out = Command::new(bin)
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("CONFIG_DM_VERITY: module only (needs an initramfs): want y, found m"),
        "{text}"
    );
    assert!(
        text.contains("CONFIG_DM_INIT: missing: want y, found absent"),
        "{text}"
    );
    assert!(text.contains("verdict: the image cannot boot"), "{text}");

    let dir = test_support::tempdir();
    let merged = dir.path().join("merged.config");
    let out = Command::new(bin)
        .args(["merge", "--json", "--base"])
        .arg(&path)
        .arg("--out")
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["conflicts"], 0);
    let out = Command::new(bin)
        .args(["check", "--json", "--config"])
        .arg(&merged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["report"]["verdict"], "bootable");
}

#[test]
fn conflicting_fragments_and_bad_input() {
    let bin = env!("CARGO_BIN_EXE_kernel-config");
    let dir = test_support::tempdir();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let base = write("base", "CONFIG_A=m\n");
    let f1 = write("f1.config", "CONFIG_A=y\n");
    let f2 = write("f2.config", "# CONFIG_A is not set\n");
    let out_path = dir.path().join("out");
    let run = |extra: &[&str]| {
        Command::new(bin)
            .args(["merge", "--base"])
            .arg(&base)
            .arg("--fragment")
            .arg(&f1)
            .arg("--fragment")
            .arg(&f2)
            .arg("--out")
            .arg(&out_path)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("CONFLICT       CONFIG_A: y (f1.config) -> is not set (f2.config)")
    );
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "# CONFIG_A is not set\n"
    );
    // Issue 11: a refused merge leaves an existing output untouched and creates none.
    std::fs::write(&out_path, "CONFIG_PREVIOUS=y\n").unwrap();
    let out = run(&["--fail-on-conflict"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "CONFIG_PREVIOUS=y\n"
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "did not write {}: 1 conflicts between fragments (--fail-on-conflict)",
            out_path.display()
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    std::fs::remove_file(&out_path).unwrap();
    let out = run(&["--fail-on-conflict", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(!out_path.exists(), "a refused merge created its output");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["written"], false);
    assert_eq!(json["conflicts"], 1);

    let garbage = write("garbage", "CONFIG_A=y\nthis is not a config\n");
    let out = Command::new(bin)
        .args(["check", "--config"])
        .arg(&garbage)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "error: {}:2: not a kernel config line",
            garbage.display()
        )),
        "{err}"
    );
    let out = Command::new(bin)
        .args(["check", "--config"])
        .arg(dir.path().join("missing"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
