//! The `os-image` binary: exit codes, error rendering, JSON output, docs.

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_os-image"))
}

fn tools() -> bool {
    ["mkfs.ext4", "debugfs", "resize2fs", "dumpe2fs", "lz4"]
        .iter()
        .all(|t| test_support::require_tool(t))
}

fn build(rootfs: &Path, out: &Path, extra: &[&str]) -> Output {
    bin()
        .args([
            "build",
            "--variant",
            "aws-dev",
            "--arch",
            "x86_64",
            "--build-id",
            "c0ffee",
            "--small-layout",
        ])
        .arg("--rootfs")
        .arg(rootfs)
        .arg("--out")
        .arg(out)
        .args(extra)
        .env("SOURCE_DATE_EPOCH", "1650000000")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn build_verify_boot_check_and_tamper() {
    if !tools() {
        return;
    }
    let dir = test_support::tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/motd"), "hi\n").unwrap();
    let out = dir.path().join("out");
    let o = build(&root, &out, &["--version", "3.1.4", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["outcome"], "built");
    // Progress went to stderr as JSON lines.
    let first = text(&o.stderr).lines().next().unwrap().to_string();
    assert!(serde_json::from_str::<serde_json::Value>(&first).unwrap()["step"].is_string());
    let disk = out.join(
        json["description"]["disk_image"]["file_name"]
            .as_str()
            .unwrap(),
    );

    let o = bin().arg("verify").arg(&disk).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("set A: aws-dev 3.1.4 (c0ffee)"),
        "{}",
        text(&o.stdout)
    );
    assert!(text(&o.stdout).contains("set B: empty"));

    let o = bin()
        .args(["boot-check", "--json", "--set", "a", "--disk"])
        .arg(&disk)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["system"]["os_release"]["VERSION_ID"], "3.1.4");

    let o = bin()
        .args(["boot-check", "--set", "b", "--disk"])
        .arg(&disk)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o.stderr).contains("BOTTLEROCKET-BOOT-B holds no boot filesystem"),
        "{}",
        text(&o.stderr)
    );

    // Flip one byte of the hash tree's leaf level in HASH-A: verify fails with exit 1.
    let sp = signpost::Disk::open_read_only(&disk).unwrap();
    let hash = sp.set(signpost::SetName::A).unwrap().hash;
    drop(sp);
    {
        use std::io::{Read, Seek, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&disk)
            .unwrap();
        f.seek(std::io::SeekFrom::Start(hash.first_byte + 4096 + 3))
            .unwrap();
        let mut b = [0u8];
        f.read_exact(&mut b).unwrap();
        f.seek(std::io::SeekFrom::Start(hash.first_byte + 4096 + 3))
            .unwrap();
        f.write_all(&[b[0] ^ 1]).unwrap();
    }
    let o = bin().arg("verify").arg(&disk).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.starts_with("error: set A failed verification\n  Caused by: verity "),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
}

#[test]
fn usage_and_environment_errors() {
    let dir = test_support::tempdir();
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let out = dir.path().join("out");

    let o = build(&root, &out, &["--version", "1.two.3"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("invalid value '1.two.3' for '--version <SEMVER>'"),
        "{}",
        text(&o.stderr)
    );

    let o = build(&root, &out, &["--version", "1.0.0", "--build-id", "bad/id"]);
    assert_eq!(o.status.code(), Some(2));

    // lz4 lives in /usr/bin: with an empty PATH it is missing (the sbin tools are still found).
    let o = bin()
        .args([
            "build",
            "--variant",
            "v",
            "--arch",
            "x86_64",
            "--version",
            "1.0.0",
            "--build-id",
            "b",
            "--small-layout",
        ])
        .arg("--rootfs")
        .arg(&root)
        .arg("--out")
        .arg(&out)
        .env("PATH", dir.path().join("empty"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("error: missing tool `lz4` (install the Debian package `lz4`)"),
        "{err}"
    );
    assert!(
        err.contains("hint: apt-get install -y --no-install-recommends lz4"),
        "{err}"
    );
    assert!(!out.exists() || std::fs::read_dir(&out).unwrap().next().is_none());
}

#[test]
fn generate_docs_writes_pages_and_completions() {
    let dir = test_support::tempdir();
    let o = bin()
        .args(["generate-docs", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    for f in [
        "os-image.1",
        "os-image-build.1",
        "os-image-verify.1",
        "os-image-boot-check.1",
        "os-image.bash",
        "_os-image",
        "os-image.fish",
    ] {
        assert!(dir.path().join(f).metadata().unwrap().len() > 100, "{f}");
    }
}
